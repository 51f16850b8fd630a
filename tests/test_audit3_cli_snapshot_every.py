"""`render --follow --snapshot-every` took 0 and negative numbers and ran with them. Now a usage
error on one line unless it is a whole number, 1 or more."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_helpers import one_error_line, swarmlog_process


@pytest.mark.parametrize("value", ["0", "-5", "1.5", "many"])
def test_render_snapshot_every_out_of_range(tmp_path: Path, value: str) -> None:
    argv = ["render", "--follow", "--snapshot-every", value, "--dir", str(tmp_path)]
    done = swarmlog_process(*argv, timeout=30)
    assert done.returncode == 2, done
    assert done.stdout == ""
    err = one_error_line(done.stderr)
    assert f"--snapshot-every: {value!r}" in err and "1 or more" in err, err
