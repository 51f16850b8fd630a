"""`swarmlog log --follow` stopped with SIGTERM (systemd, a supervisor, `kill`): README promises
exit 143 after stopping cleanly, as Ctrl-C gives 130. It died of the signal (no exit status; a
shell shows 143, a supervising program sees 'killed by SIGTERM')."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.cli_helpers import swarmlog_in, swarmlog_popen


def test_sigterm_ends_log_follow_with_143(tmp_path: Path) -> None:
    ws = tmp_path / "night"
    for argv in (["init", "--no-detect"], ["note", "backlog"]):
        assert swarmlog_in(ws, *argv).returncode == 0
    follow = swarmlog_popen(ws, "log", "--follow")
    try:
        assert follow.stdout is not None
        assert "backlog" in follow.stdout.readline()
        live = swarmlog_in(ws, "note", "live")
        assert live.returncode == 0
        assert "live" in follow.stdout.readline()  # following: waiting in the file watch
        follow.send_signal(signal.SIGTERM)
        out, err = follow.communicate(timeout=60)
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
    assert follow.returncode == 143
    assert (out, err) == ("", "")
