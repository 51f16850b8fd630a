"""``python -m swarmlog.demo [DIR]``: the whole team on the simulated servers, in a fresh folder.

This is what ``make demo`` runs. The folder (default ``demo-run/``, ignored by git) is emptied
first, so the committed example history under ``memory/`` and ``alerts/`` is never touched.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from swarmlog.cli import main as cli

__all__ = ["run_demo"]


def run_demo(folder: Path, scenario: str = "demo") -> int:
    """Run ``scenario`` in a fresh workspace ``folder``; print what to read afterwards."""
    if folder.exists():
        shutil.rmtree(folder)
    print(f"$ swarmlog --dir {folder} run --sim {scenario}", flush=True)
    code = cli(["--dir", str(folder), "run", "--sim", scenario])
    if code:
        return code
    cli(["--dir", str(folder), "verify"])
    rows = [
        (folder / "memory" / "team-state.md", "phase, agents, trust, decisions, blockers"),
        (folder / "memory" / "report.md", "the morning report (Mermaid timeline)"),
        (folder / "memory" / "decisions.md", "the Director's decision log"),
        (f"{folder / 'alerts'}/", "one ALERT-*.md per alert (none on a good night)"),
    ]
    width = max(len(str(path)) for path, _ in rows)
    print("\nOpen these to see what the team did tonight:")
    for path, what in rows:
        print(f"  {path!s:<{width}}  {what}")
    print(
        f"Post-mortem: swarmlog --dir {folder} replay --verify\n"
        f"             swarmlog --dir {folder} replay --explain w-auth",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(run_demo(Path(args[0] if args else "demo-run"), *(args[1:2] or ["demo"])))
