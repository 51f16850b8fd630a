"""Choose the event log: a folder path or a ``nats://`` URL, from the option, env or config.

Precedence (an explicit choice always wins): ``--log`` (``explicit``), then ``SWARMLOG_LOG``, then
``[log]`` in the workspace's ``swarmlog.toml``, else the file log in ``<workspace>/memory/events``.

```toml
[log]
backend = "nats"                          # or "file" (the default)
url = "nats://10.0.0.5:4222,10.0.0.6:4222/NIGHT"
replicas = 3                              # for a stream this log creates
```
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from swarmlog.errors import ConfigError
from swarmlog.log.file import FileLog
from swarmlog.workspace import Workspace

if TYPE_CHECKING:
    from swarmlog.log.nats import NatsLog

__all__ = [
    "LOG_ENV",
    "archive_stream",
    "choose_log",
    "is_nats_url",
    "log_from_config",
    "log_from_env",
    "open_log",
    "resolve_log",
]

LOG_ENV = "SWARMLOG_LOG"
_NATS_SCHEMES = ("nats://", "tls://")


def is_nats_url(target: str | os.PathLike[str]) -> bool:
    """Return whether ``target`` names a NATS JetStream log rather than a folder."""
    return isinstance(target, str) and target.startswith(_NATS_SCHEMES)


def open_log(target: str | os.PathLike[str], **options: Any) -> FileLog | NatsLog:
    """Open the log at ``target``: ``nats://HOST:PORT[,…]/STREAM`` → ``NatsLog``, else ``FileLog``.

    ``options`` go to the backend's constructor. NATS credentials come from ``NATS_USER`` /
    ``NATS_PASSWORD`` or ``NATS_CREDS`` unless given as options.
    """
    if is_nats_url(target):
        from swarmlog.log.nats import NatsLog  # nats-py is imported only by those who use it

        return NatsLog.from_url(str(target), **options)
    return FileLog(target, **options)


def archive_stream(url: str, directory: str | os.PathLike[str]) -> int:
    """Copy the stream at ``url`` into sealed segment files in ``directory``; return the count.

    Archiving again copies only what is new (``nats.archive_to_files``).
    """
    from swarmlog.log.nats import NatsLog, archive_to_files

    with NatsLog.from_url(url, create=False) as log:
        return archive_to_files(log, directory)


def log_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """Return the log address in ``SWARMLOG_LOG`` (the one place that reads it), or None."""
    value = (os.environ if environ is None else environ).get(LOG_ENV, "").strip()
    return value or None


def log_from_config(section: Mapping[str, Any], *, where: str = "swarmlog.toml") -> str | None:
    """Return the address a ``[log]`` section names, or None for the workspace's file log."""
    backend = section.get("backend", "nats" if "url" in section else "file")
    if backend == "file":
        return None
    if backend != "nats":
        raise ConfigError(
            f'{where}: log.backend = {backend!r}: unknown log backend; use "file" or "nats"'
        )
    url = section.get("url")
    if not isinstance(url, str) or not is_nats_url(url):
        raise ConfigError(
            f'{where}: log.url = {url!r}: backend "nats" needs url = '
            f'"nats://HOST:PORT[,HOST:PORT…]/STREAM"'
        )
    replicas = section.get("replicas")
    if replicas is None or "replicas=" in url:
        return url
    if not isinstance(replicas, int) or isinstance(replicas, bool) or not 1 <= replicas <= 5:
        raise ConfigError(f"{where}: log.replicas = {replicas!r}: expected a number from 1 to 5")
    return f"{url}{'&' if '?' in url else '?'}replicas={replicas}"


def choose_log(
    *,
    explicit: str | None,
    env: str | None,
    config: Mapping[str, Any],
    default: str,
    where: str = "swarmlog.toml",
) -> str:
    """Apply the precedence: ``explicit``, then ``env``, then ``[log]``, else ``default``."""
    for choice in (explicit, env):
        if choice:
            return choice
    return log_from_config(config, where=where) or default


def _log_section(ws: Workspace) -> dict[str, Any]:
    """Read ``[log]`` from the workspace's config, validating the whole file only when present."""
    try:
        raw = tomllib.loads(ws.config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        # No [log] can be read: the file log. A broken config is reported by the commands that
        # need it ('swarmlog config check', 'swarmlog run'), not by every log reader.
        return {}
    if "log" not in raw:
        return {}
    from swarmlog.config import load_config  # pydantic only for those who configure [log]

    return load_config(ws.config).section("log")


def resolve_log(ws: Workspace, explicit: str | None = None) -> str:
    """Return the address of the log ``ws`` uses (see the module docstring for the order)."""
    env = log_from_env()
    if explicit or env:
        return choose_log(explicit=explicit, env=env, config={}, default=str(ws.events))
    return choose_log(
        explicit=None,
        env=None,
        config=_log_section(ws),
        default=str(ws.events),
        where=str(ws.config),
    )
