"""Where a workspace's files live, and how the workspace folder is chosen."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from swarmlog.errors import SwarmlogError

__all__ = ["Workspace", "WriteError", "remove_file", "resolve_workspace", "write_atomic"]


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


class WriteError(OSError, SwarmlogError):
    """Raised when a derived file (rendered Markdown, a snapshot) cannot be written or removed.

    Still an ``OSError`` (``errno``, ``strerror``, ``filename`` as the system gave them), and a
    ``SwarmlogError`` whose message names the file and what to do, on one line.
    """

    def __init__(self, path: Path, exc: OSError, action: str = "write") -> None:
        super().__init__(exc.errno, exc.strerror, exc.filename or str(path))
        self.path = path
        folder = path.parent
        if exc.errno in (errno.EACCES, errno.EPERM):
            todo = f"make {folder} writable for this user (check its owner and mode) and retry"
        elif exc.errno == errno.EROFS:
            todo = f"{folder} is on a read-only file system: remount it, or use another --dir"
        elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
            todo = "free disk space and retry"
        elif exc.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
            todo = (
                "something else is in the way there (a file for a folder or the reverse): move it"
            )
        else:
            todo = "fix that and retry"
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
        self.message = f"cannot {action} {path}: {exc.strerror}{where}; {todo}"

    def __str__(self) -> str:
        return self.message


def write_atomic(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename) unless it is unchanged.

    Returns True when the file was written. Raises ``WriteError`` (an ``OSError``) saying what
    to do when it cannot be.
    """
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno != errno.EISDIR:
            raise WriteError(path, exc) from exc
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
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
    except OSError as exc:
        raise WriteError(path, exc) from exc
    return True


def remove_file(path: Path) -> bool:
    """Remove a derived file if it is there; True when it was. Raises ``WriteError``."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise WriteError(path, exc, "remove") from exc
    return True
