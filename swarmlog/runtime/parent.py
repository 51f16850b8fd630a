"""Which process a runtime child belongs to, so it can stop when its supervisor is gone."""

from __future__ import annotations

import os

__all__ = ["SUPERVISOR_ENV", "expected_parent"]

SUPERVISOR_ENV = "SWARMLOG_SUPERVISOR_PID"


def expected_parent() -> int:
    """The pid this process must stay a child of: its supervisor's, when one started it.

    Read from the environment rather than ``getppid()`` at start-up, because a supervisor killed
    while this process was still starting has already left it with another parent.
    """
    value = os.environ.get(SUPERVISOR_ENV, "")
    return int(value) if value.isdigit() else os.getppid()
