"""``python -m swarmlog.demo DIR``: a short demonstration in a fresh workspace folder."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from swarmlog.cli import main as cli

__all__ = ["run_demo"]


def run_demo(folder: Path) -> int:
    """Create a fresh workspace in ``folder`` and exercise the log commands."""
    if folder.exists():
        shutil.rmtree(folder)
    steps = [
        ["init"],
        ["note", "the night begins"],
        ["append", "task_submitted", '{"task_id": "t1", "title": "lint the auth module"}'],
        ["verify"],
        ["log"],
    ]
    for step in steps:
        print(f"$ swarmlog {' '.join(step)}", flush=True)
        code = cli(["--dir", str(folder), *step])
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(run_demo(Path(sys.argv[1] if len(sys.argv) > 1 else "demo-run")))
