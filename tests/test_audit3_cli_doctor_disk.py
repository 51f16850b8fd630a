"""`doctor --min-disk-gb` took any float: -1 passed every disk, nan failed every disk ('need > nan
GB'), inf too. Now a usage error on one line unless it is a finite number, 0 or more."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_helpers import one_error_line
from tests.cli_helpers import swarmlog_in as _swarmlog


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "1e400", "lots"])
def test_doctor_min_disk_gb_out_of_range(tmp_path: Path, value: str) -> None:
    done = _swarmlog(tmp_path, "doctor", "--min-disk-gb", value)
    assert done.returncode == 2, done
    assert done.stdout == ""
    err = one_error_line(done.stderr)
    assert f"--min-disk-gb: {value!r}" in err and "0 or more" in err, err


def test_doctor_min_disk_gb_zero_is_fine(tmp_path: Path) -> None:
    assert _swarmlog(tmp_path, "init", "--no-detect").returncode == 0
    done = _swarmlog(tmp_path, "doctor", "--min-disk-gb", "0", "--timeout", "0.2")
    assert "disk free" in done.stdout and "need > 0 GB" in done.stdout, done
