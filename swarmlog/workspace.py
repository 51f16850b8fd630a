"""Where a workspace's files live, and how the workspace folder is chosen."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["Workspace", "resolve_workspace", "write_atomic"]


class Workspace:
    """The paths of one workspace folder (DESIGN.md §4)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def config(self) -> Path:
        return self.root / "swarmlog.toml"

    @property
    def memory(self) -> Path:
        return self.root / "memory"

    @property
    def events(self) -> Path:
        return self.memory / "events"

    @property
    def snapshots(self) -> Path:
        return self.memory / "snapshots"

    @property
    def alerts(self) -> Path:
        return self.root / "alerts"

    @property
    def templates(self) -> Path:
        return self.root / "templates"


def resolve_workspace(explicit: str | os.PathLike[str] | None = None) -> Workspace:
    """Pick the workspace: an explicit ``--dir`` wins, then ``SWARMLOG_HOME``, then the cwd."""
    if explicit is not None:
        return Workspace(Path(explicit))
    env = os.environ.get("SWARMLOG_HOME")
    return Workspace(Path(env) if env else Path.cwd())


def write_atomic(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename) unless it is unchanged.

    Returns True when the file was written.
    """
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return True
