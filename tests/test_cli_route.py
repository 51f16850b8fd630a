"""``swarmlog route`` as a user runs it against a workspace whose log is damaged."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmlog.cli import main
from swarmlog.log import list_segments


def test_route_on_a_damaged_log_routes_from_the_config_and_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    assert main(["init", "--dir", str(tmp_path)]) == 0
    for text in ("a", "b", "c"):
        assert main(["note", text, "--dir", str(tmp_path)]) == 0
    seg = list_segments(tmp_path / "memory" / "events")[-1][1]
    data = bytearray(seg.read_bytes())
    data[data.index(b"\n") + 12] ^= 0x04  # a checksum error on line 2
    seg.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["route", "--dir", str(tmp_path), "--task-kind", "lint"]) == 0
    captured = capsys.readouterr()
    assert "route cli-task -> " in captured.out
    assert captured.err.count("\n") == 1 and captured.err.startswith("swarmlog: warning: ")
    assert f"{seg}:2: checksum mismatch" in captured.err
    assert "from the config only" in captured.err


def test_route_without_a_log_stays_quiet(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["route", "--dir", str(tmp_path), "--task-kind", "lint"]) == 0
    assert capsys.readouterr().err == ""
