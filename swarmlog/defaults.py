"""Defaults the command line shows in its options' help, kept where ``--help`` can read them.

The modules that use these values (``doctor``, ``initconfig``) import heavy libraries; the parser
only needs the numbers, so they live here, in a module that imports nothing, and those modules
import them from here (one definition each).
"""

from __future__ import annotations

__all__ = ["DEFAULT_OLLAMA_URL", "DETECT_TIMEOUT_S", "MIN_DISK_GB", "ROLES"]

MIN_DISK_GB = 10.0  # seed §8: "Sufficient disk space (> 10GB free)"
DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434"  # where 'swarmlog init' looks for Ollama
DETECT_TIMEOUT_S = 1.0  # seconds 'swarmlog init' waits for each server it asks
# The team (seeds/001): one process per role, started by 'swarmlog run'.
ROLES = ("director", "architect", "scout", "builder", "refactorer", "inspector", "scribe")
