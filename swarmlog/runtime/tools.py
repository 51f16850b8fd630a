"""The tools agents may use: write files inside the work folder, run the configured tests."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from swarmlog.errors import SwarmlogError

__all__ = ["ToolError", "resolve_inside", "run_tests", "write_files"]

_OUTPUT_LIMIT = 4000


class ToolError(SwarmlogError):
    """Raised when an agent asks a tool for something it may not do."""


def resolve_inside(work_dir: Path, relative: str) -> Path:
    """Resolve ``relative`` under ``work_dir``; refuse paths that escape it."""
    root = work_dir.resolve()
    target = (root / relative).resolve()
    if target != root and root not in target.parents:
        raise ToolError(
            f"refused to write {relative!r}: it resolves outside the work folder {work_dir}; "
            f"use a path relative to the work folder"
        )
    return target


def write_files(work_dir: Path, files: Mapping[str, str]) -> list[str]:
    """Write every file (all paths checked first, so a bad path writes nothing)."""
    targets = {rel: resolve_inside(work_dir, rel) for rel in files}
    for rel, target in targets.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(files[rel])
    return list(files)


def run_tests(run_config: Mapping[str, Any], work_dir: Path) -> dict[str, Any]:
    """Run the configured test command in the work folder with a timeout; capture its output."""
    command = run_config.get("test_command")
    if not command:
        return {"ran": False, "reason": "no [run].test_command configured"}
    timeout = float(run_config.get("test_timeout_s", 300))
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.run(
            command,
            shell=True,
            cwd=work_dir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"ran": True, "passed": False, "exit": None, "output": f"timed out after {timeout}s"}
    output = (proc.stdout + proc.stderr)[-_OUTPUT_LIMIT:]
    return {"ran": True, "passed": proc.returncode == 0, "exit": proc.returncode, "output": output}
