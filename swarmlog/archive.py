"""Close a night so its whole history can be committed: seal the log, render, verify.

A sealed segment is read-only and never changes again; the rendered Markdown is a deterministic
function of the log, so a committed night diffs cleanly and ``swarmlog replay --verify`` and
``swarmlog render`` reproduce it. A later ``swarmlog run`` appends to a new segment.
"""

from __future__ import annotations

import msgspec

from swarmlog.errors import LogCorrupt, SwarmlogError
from swarmlog.log import FileLog
from swarmlog.render import make_environment
from swarmlog.replay import render_once
from swarmlog.snapshot import load_state
from swarmlog.workspace import Workspace

__all__ = ["GIT_HINT", "ArchiveRefused", "Archived", "archive"]

GIT_HINT = "git add swarmlog.toml .gitattributes memory alerts && git commit -m '{subject}'"


class ArchiveRefused(SwarmlogError):
    """Raised when ``swarmlog archive`` would seal a run that is still open (without --force)."""


class Archived(msgspec.Struct, frozen=True, kw_only=True):
    """What ``archive`` did."""

    run: str
    outcome: str
    last_seq: int
    sealed: str | None  # the segment sealed now, None when every segment already was
    rendered: tuple[str, ...]  # files the render rewrote
    segments: int
    hint: str


def archive(ws: Workspace, *, force: bool = False) -> Archived:
    """Seal the active segment and render the final state; refuse an open run unless ``force``.

    Raises:
        ArchiveRefused: a run is open (no ``run_ended``) and ``force`` is false.
        LogCorrupt: the log is damaged; nothing was sealed.
    """
    log = FileLog(ws.events, create=False)
    try:
        before = log.verify()
        if before.problems:
            first = before.problems[0]
            raise LogCorrupt(first.path, first.line, f"{first.problem}; nothing was sealed")
        state, _reasons = load_state(log, ws.snapshots)
        team = state.team
        if team.run and not team.outcome and not force:
            phase = f" in phase {team.phase}" if team.phase else ""
            raise ArchiveRefused(
                f"run {team.run} is still open{phase} (no run_ended by seq {state.seq}); stop it "
                f"('swarmlog abort') and let it end, or pass --force if nothing runs any more"
            )
        sealed = log.seal()
        after = log.verify()
    finally:
        log.close()
    _state, changed, _ = render_once(ws, make_environment(ws))
    return Archived(
        run=team.run,
        outcome=team.outcome or ("open (forced)" if team.run else ""),
        last_seq=after.last_seq,
        sealed=sealed,
        rendered=tuple(changed),
        segments=after.segments,
        hint=GIT_HINT.format(subject=f"night of {team.run}" if team.run else "swarmlog event log"),
    )
