"""Choose an event-log backend from one address: a folder path or a ``nats://`` URL."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from swarmlog.log.file import FileLog

if TYPE_CHECKING:
    from swarmlog.log.nats import NatsLog

__all__ = ["is_nats_url", "open_log"]

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
