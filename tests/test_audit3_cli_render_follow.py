"""`swarmlog render --follow` stopped with Ctrl-C: it exits 130 like `log --follow` (README,
Commands), with nothing on stderr. It exited 0 and printed the file watcher's own
'KeyboardInterrupt caught, stopping watch'."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tests.cli_helpers import swarmlog_in, swarmlog_popen


def test_render_follow_stopped_by_ctrl_c(tmp_path: Path) -> None:
    ws = tmp_path / "night"
    assert swarmlog_in(ws, "init", "--no-detect").returncode == 0
    follow = swarmlog_popen(ws, "render", "--follow")
    try:
        assert follow.stdout is not None
        first = follow.stdout.readline()  # the first render: it is following now
        assert first.startswith("seq 0:"), first
        time.sleep(1.0)  # into the wait for the next append
        follow.send_signal(signal.SIGINT)
        out, err = follow.communicate(timeout=30)
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
    assert follow.returncode == 130, (out, err)
    assert err == ""
