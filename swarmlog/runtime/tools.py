"""The tools agents may use: write files inside the work folder, run the configured tests.

Each tool is refused (``ToolError``, whose message the task's failure records) when it would
escape the work folder, or when the role's ``[agents.ROLE]`` table denies it: named in
``tools_deny``, or missing from a non-empty ``tools_allow``. A tool answers to its own name and
to the broader names that grant it (the seed's "all file/code tools": ``code`` includes running
the tests).
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from swarmlog.errors import SwarmlogError

__all__ = [
    "FILE_WRITE",
    "TEST_RUNNER",
    "ToolError",
    "check_tool",
    "resolve_inside",
    "run_tests",
    "write_files",
]

_OUTPUT_LIMIT = 4000

FILE_WRITE = "file_write"
TEST_RUNNER = "test_runner"
# The names in tools_allow / tools_deny that cover each tool, its own name first.
_NAMES = {FILE_WRITE: (FILE_WRITE,), TEST_RUNNER: (TEST_RUNNER, "code")}


class ToolError(SwarmlogError):
    """Raised when an agent asks a tool for something it may not do."""


def check_tool(tool: str, policy: Mapping[str, Any] | None, role: str = "") -> None:
    """Raise ToolError when ``[agents.ROLE]`` (``policy``: its table) does not let the role use
    ``tool``; None (no table) allows every tool."""
    if not policy:
        return
    names = _NAMES.get(tool, (tool,))
    who = f"[agents.{role}]" if role else "the role's [agents.*] table"
    deny = [str(n) for n in policy.get("tools_deny") or ()]
    denied = next((n for n in names if n in deny), None)
    if denied is not None:
        raise ToolError(
            f"refused tool {tool!r}: {who}.tools_deny lists {denied!r}; "
            f"do the task without it (or ask the Director to change the config)"
        )
    allow = [str(n) for n in policy.get("tools_allow") or ()]
    if allow and not any(n in allow for n in names):
        raise ToolError(
            f"refused tool {tool!r}: not in {who}.tools_allow ({', '.join(allow)}); "
            f"do the task with those tools only"
        )


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


def write_files(
    work_dir: Path,
    files: Mapping[str, str],
    *,
    policy: Mapping[str, Any] | None = None,
    role: str = "",
) -> list[str]:
    """Write every file (the role's permission and all paths checked first, so a refusal writes
    nothing)."""
    check_tool(FILE_WRITE, policy, role)
    targets = {rel: resolve_inside(work_dir, rel) for rel in files}
    for rel, target in targets.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(files[rel])
    return list(files)


def run_tests(
    run_config: Mapping[str, Any],
    work_dir: Path,
    *,
    policy: Mapping[str, Any] | None = None,
    role: str = "",
) -> dict[str, Any]:
    """Run the configured test command in the work folder with a timeout; capture its output.

    Raises ToolError when the role may not run tests (``policy``: its ``[agents.ROLE]`` table).
    """
    check_tool(TEST_RUNNER, policy, role)
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
