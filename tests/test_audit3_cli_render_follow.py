"""`swarmlog render --follow` stopped with Ctrl-C: it exits 130 like `log --follow` (README,
Commands), with nothing on stderr. It exited 0 and printed the file watcher's own
'KeyboardInterrupt caught, stopping watch'."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.cli_helpers import REPO


def test_render_follow_stopped_by_ctrl_c(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("SWARMLOG_HOME", None)
    ws = tmp_path / "night"
    base = [sys.executable, "-m", "swarmlog"]
    assert subprocess.run([*base, "init", "--no-detect", "--dir", str(ws)], env=env).returncode == 0
    follow = subprocess.Popen(
        [*base, "render", "--follow", "--dir", str(ws)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
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
