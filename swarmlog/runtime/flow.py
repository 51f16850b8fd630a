"""The night's protocol as a pure function: given what the log says, what should happen next.

``next_steps(view, now)`` returns the events the scheduler should append: phases entered and
completed, tasks submitted, checkpoints, review rounds, timeouts, the end of the run. It is pure
and idempotent: every event carries an idempotency key derived from the run and what it decides,
so a scheduler that crashes after appending and decides again appends nothing new.

Phases (seed guide §2): planning (Director → Architect → Scout, sequential), execution (the plan's
work items, limited parallel), review (present → critique → decide, seed guide §3), iteration (fix
what the review found, then review again), bounded by ``max_iterations``. A checkpoint (a report
from each agent, the Director's call, Scribe's summary) follows every phase.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from swarmlog.escalation import levels
from swarmlog.events import (
    DecisionMade,
    EscalationResolved,
    EventBase,
    PhaseCompleted,
    PhaseEntered,
    ReviewOpened,
    RunEnded,
    TaskCancelled,
    TaskSubmitted,
    TaskTimedOut,
)
from swarmlog.routing.roles import with_role_capabilities
from swarmlog.runtime.board import DONE, FINISHED, SUBMITTED, Board, TaskView, expired_leases
from swarmlog.runtime.context import RunContext
from swarmlog.team import reviews as team_reviews
from swarmlog.team.settings import TeamSettings

__all__ = [
    "EMERGENCY_PREFIXES",
    "FlowView",
    "is_emergency_task",
    "next_steps",
    "team_may_work",
]

WORKERS = ("architect", "scout", "builder", "refactorer", "inspector")
CRITICS = ("inspector", "refactorer", "architect")


class FlowView(msgspec.Struct, frozen=True, kw_only=True):
    """The folds the protocol reads."""

    board: Board
    ctx: RunContext
    reviews: team_reviews.ReviewState
    escalation: levels.EscalationState = levels.EMPTY
    trust: Mapping[str, float] = msgspec.field(default_factory=dict)
    team: TeamSettings = msgspec.field(default_factory=TeamSettings)


def _task(
    run: str,
    task_id: str,
    title: str,
    kind: str,
    role: str,
    phase: str,
    *,
    deps: Sequence[str] = (),
    parent: str = "",
    round: int = 0,
    prompt: str = "",
    files: Sequence[str] = (),
    lines: int = 0,
    languages: Sequence[str] = (),
) -> TaskSubmitted:
    return TaskSubmitted(
        task_id=task_id,
        title=title,
        task_kind=kind,
        role=role,
        phase=phase,
        deps=tuple(deps),
        parent=parent,
        round=round,
        prompt=prompt,
        files=tuple(files),
        lines=lines,
        languages=tuple(languages),
        key=f"submit:{run}:{task_id}",
    )


def _done(board: Board, ids: Sequence[str]) -> bool:
    return all(board.tasks.get(i) is not None and board.tasks[i].status in FINISHED for i in ids)


def _review_of(view: FlowView, review_id: str) -> team_reviews.Review | None:
    """This run's review ``review_id``: a workspace's log holds every night, and review ids
    (``rv-<iteration>``) repeat from one night to the next; an earlier night's review is not
    this one's (it would be taken as decided, and the night's review skipped)."""
    review = view.reviews.reviews.get(review_id)
    if review is not None and review.opened_seq < view.ctx.run_seq:
        return None
    return review


def _phase_tasks(board: Board, phase: str, iteration: int) -> list[TaskView]:
    tag = f"{phase}#{iteration}"
    return [t for t in board.tasks.values() if t.phase == tag]


def next_steps(view: FlowView, now: float) -> list[EventBase]:
    """Return what the scheduler should append now (possibly nothing)."""
    board, ctx = view.board, view.ctx
    run = ctx.run
    if not run or ctx.ended:
        return []
    out: list[EventBase] = [
        TaskTimedOut(
            task_id=t.task_id,
            agent=t.agent,
            attempt=t.attempt,
            lease_until=t.lease_until,
            key=f"timeout:{run}:{t.task_id}:{t.attempt}",
        )
        for t in expired_leases(board, now)
    ]
    directive = levels.team_directive(view.escalation)
    if directive == "aborting":
        live = [t for t in board.tasks.values() if t.status not in FINISHED]
        out += [
            TaskCancelled(task_id=t.task_id, reason="run aborted", key=f"cancel:{run}:{t.task_id}")
            for t in live
        ]
        out.append(RunEnded(outcome="aborted", reason="escalation level 4", key=f"end:{run}"))
        return out
    out += _orphans(board, run)
    out += _emergencies(view, run)
    if not team_may_work(view.escalation):
        return out  # paused, in an emergency meeting, or waiting for a human
    if not ctx.phase:
        return [*out, _enter(run, "planning", 0, view.team, "run started")]
    phase, it = ctx.phase, ctx.iteration
    tag = f"{phase}#{it}"
    steps = _PHASES[phase](view, run, it, tag, view.team)
    return out + [with_role_capabilities(e, ctx.config) for e in steps]


def _orphans(board: Board, run: str) -> list[EventBase]:
    """Cancel waiting tasks whose dependency failed for good or was cancelled: they can never
    run, and a phase waits for every one of its tasks to finish. Each cancellation lets the
    next task down the chain go the same way on the next step."""
    out: list[EventBase] = []
    for t in board.tasks.values():
        if t.status != SUBMITTED:
            continue
        lost = next((d for d in t.deps if _lost(board.tasks.get(d))), None)
        if lost is not None:
            why = f"its dependency {lost} {board.tasks[lost].status}; it can never run"
            out.append(
                TaskCancelled(task_id=t.task_id, reason=why, key=f"cancel:{run}:{t.task_id}")
            )
    return out


def _lost(dep: TaskView | None) -> bool:
    return dep is not None and dep.status in FINISHED and dep.status != DONE


def _enter(run: str, phase: str, it: int, settings: TeamSettings, reason: str) -> PhaseEntered:
    return PhaseEntered(
        phase=phase,
        iteration=it,
        expected_s=settings.phases.expected_s.get(phase, 0.0),
        reason=reason,
        key=f"enter:{run}:{phase}:{it}",
    )


def _complete(run: str, phase: str, it: int, outcome: str = "done") -> PhaseCompleted:
    return PhaseCompleted(
        phase=phase, iteration=it, outcome=outcome, key=f"complete:{run}:{phase}:{it}"
    )


def _checkpoint_then(
    view: FlowView, run: str, cp: str, trigger: str, settings: TeamSettings
) -> tuple[list[EventBase], str | None]:
    """Run checkpoint ``cp``; return (events to append, the Director's decision once written)."""
    board = view.board
    reports = [f"{cp}-report-{role}" for role in WORKERS]
    decide, summary = f"{cp}-decide", f"{cp}-summary"
    if decide not in board.tasks:
        out: list[EventBase] = [
            _task(
                run,
                rid,
                f"Checkpoint report ({trigger})",
                "checkpoint_report",
                role,
                f"checkpoint#{cp}",
                parent=cp,
                prompt=f"{trigger}\nReport your status in one sentence.",
            )
            for rid, role in zip(reports, WORKERS, strict=True)
        ]
        out.append(
            _task(
                run,
                decide,
                f"Checkpoint decision ({trigger})",
                "checkpoint_decide",
                "director",
                f"checkpoint#{cp}",
                deps=reports,
                parent=cp,
                prompt=f"{trigger}\nDecide: continue, revise or escalate.",
            )
        )
        out.append(
            _task(
                run,
                summary,
                f"Checkpoint summary ({trigger})",
                "checkpoint_summary",
                "scribe",
                f"checkpoint#{cp}",
                deps=[decide],
                parent=cp,
                prompt=f"{trigger}\nSummarise the team's state for later prompts.",
            )
        )
        return out, None
    if not _done(board, [summary]):
        return [], None
    return [], str(board.tasks[decide].output.get("decision", "continue"))


def _planning(view: FlowView, run: str, it: int, tag: str, s: TeamSettings) -> list[EventBase]:
    board = view.board
    ids = ["plan", "design", "research"]
    if "plan" not in board.tasks:
        return [
            _task(
                run,
                "plan",
                "Plan the night's work",
                "plan",
                "director",
                tag,
                prompt="Break the goal into work items for the Builder and the Scout.",
            ),
            _task(
                run,
                "design",
                "Review the plan against the big picture",
                "design",
                "architect",
                tag,
                deps=["plan"],
                prompt="Check the plan for alignment and risks.",
            ),
            _task(
                run,
                "research",
                "Research what the plan needs",
                "research",
                "scout",
                tag,
                deps=["design"],
                prompt="Find the APIs, patterns and prior art the plan relies on.",
            ),
        ]
    if not _done(board, ids):
        return []
    if board.tasks["plan"].status != DONE:
        return [RunEnded(outcome="failed", reason="the Director could not plan", key=f"end:{run}")]
    steps, decision = _checkpoint_then(
        view, run, f"cp-planning-{it}", "phase transition: planning → execution", s
    )
    if decision is None:
        return [_complete(run, "planning", it), *steps] if steps else []
    return _next_phase(run, "execution", 0, s, decision)


def _next_phase(run: str, phase: str, it: int, s: TeamSettings, decision: str) -> list[EventBase]:
    reason = f"checkpoint decision: {decision}"
    return [_enter(run, phase, it, s, reason)]


def _execution(view: FlowView, run: str, it: int, tag: str, s: TeamSettings) -> list[EventBase]:
    board = view.board
    work = _phase_tasks(board, "execution", it)
    if not work:
        raw = board.tasks["plan"].output.get("tasks", [])
        items: list[Any] = list(raw) if isinstance(raw, list) else []
        known = {str(item["id"]) for item in items}
        return [
            _task(
                run,
                f"w-{item['id']}",
                str(item["title"]),
                str(item.get("kind", "implement")),
                str(item.get("role", "builder")),
                tag,
                deps=[f"w-{d}" for d in item.get("deps", []) if d in known],
                prompt=str(item.get("prompt", "")),
                files=item.get("files", []),
                lines=int(item.get("lines", 0)),
                languages=item.get("languages", []),
            )
            for item in items
        ]
    if not all(t.status in FINISHED for t in work):
        return []
    cp = f"cp-execution-{it}"
    steps, decision = _checkpoint_then(view, run, cp, "phase transition: execution → review", s)
    if decision is None:
        return [_complete(run, "execution", it), *steps] if steps else []
    return _next_phase(run, "review", it, s, decision)


def _review(view: FlowView, run: str, it: int, tag: str, s: TeamSettings) -> list[EventBase]:
    """Round 1 present (Builder), round 2 critique (Inspector, Refactorer, Architect), round 3
    decide (Director); the convergence rules run after each round (seed guide §3, §6)."""
    board = view.board
    rv = f"rv-{it}"
    present = f"{rv}-r1-present"
    critiques = [f"{rv}-r2-critique-{c}" for c in CRITICS]
    decide = f"{rv}-r3-decide"
    review = _review_of(view, rv)
    if review is None:
        work = [
            t.task_id
            for t in board.tasks.values()
            if t.phase in (f"execution#{it}", f"iteration#{it}") and t.status == DONE
        ]
        return [
            ReviewOpened(
                review_id=rv,
                subject=f"the work of iteration {it}",
                participants=(*CRITICS, "director"),
                max_rounds=s.review.max_rounds,
                task_id=present,
                key=f"review:{run}:{rv}",
            ),
            _task(
                run,
                present,
                f"Present the work of iteration {it}",
                "present",
                "builder",
                tag,
                deps=work,
                parent=rv,
                round=1,
                prompt="Present what was built and how it meets the goal.",
            ),
        ]
    if review.is_decided:
        assert review.decision is not None
        return _after_review(view, run, it, s, review.decision)
    closed = len(review.rounds)
    if closed == 0:
        return _close(view, review, run) if _done(board, [present]) else []
    if closed == 1:
        if critiques[0] not in board.tasks:
            return [
                _task(
                    run,
                    rid,
                    f"Critique the work of iteration {it} ({c})",
                    "critique",
                    c,
                    tag,
                    deps=[present],
                    parent=rv,
                    round=2,
                    prompt=_CRITIQUE[c],
                )
                for rid, c in zip(critiques, CRITICS, strict=True)
            ]
        return _close(view, review, run) if _done(board, critiques) else []
    if decide not in board.tasks:
        return [
            _task(
                run,
                decide,
                f"Decide on the work of iteration {it}",
                "decide",
                "director",
                tag,
                deps=critiques,
                parent=rv,
                round=3,
                prompt="Weigh the critiques by trust and decide.",
            )
        ]
    return _close(view, review, run) if _done(board, [decide]) else []


_CRITIQUE = {
    "inspector": "Review for bugs. Count critical bugs honestly.",
    "refactorer": "Review for quality.",
    "architect": "Review for alignment with the big picture.",
}


def _close(view: FlowView, review: team_reviews.Review, run: str) -> list[EventBase]:
    closed, decision = team_reviews.close_round(
        review, view.trust, view.team, decision_id=f"d-{review.review_id}"
    )
    out: list[EventBase] = [
        msgspec.structs.replace(closed, key=f"round:{run}:{review.review_id}:{closed.round}")
    ]
    if decision is not None:
        out.append(msgspec.structs.replace(decision, key=f"decision:{run}:{review.review_id}"))
    return out


def _after_review(
    view: FlowView, run: str, it: int, s: TeamSettings, decision: DecisionMade
) -> list[EventBase]:
    cp = f"cp-review-{it}"
    approved = decision.outcome == "approve"
    last = approved or it + 1 >= s.phases.max_iterations
    nxt = "the end of the run" if last else "iteration"
    steps, call = _checkpoint_then(view, run, cp, f"phase transition: review → {nxt}", s)
    if call is None:
        return [_complete(run, "review", it, decision.outcome), *steps] if steps else []
    if last:
        return _final(view, run, approved)
    return [
        _enter(run, "iteration", it + 1, s, f"review decided {decision.outcome} ({decision.rule})")
    ]


def _iteration(view: FlowView, run: str, it: int, tag: str, s: TeamSettings) -> list[EventBase]:
    board = view.board
    fixes = _phase_tasks(board, "iteration", it)
    if not fixes:
        review = _review_of(view, f"rv-{it - 1}")
        reasons = _requests(review) if review else []
        return [
            _task(
                run,
                f"fix-{it}-{n}",
                f"Address review finding {n}",
                "fix",
                "builder",
                tag,
                prompt=reason,
            )
            for n, reason in enumerate(reasons or ["Address the review's requests."], start=1)
        ]
    if not all(t.status in FINISHED for t in fixes):
        return []
    return [_complete(run, "iteration", it), _enter(run, "review", it, s, "fixes done")]


def _requests(review: team_reviews.Review) -> list[str]:
    """What the reviewers asked for, one fix task each."""
    last = review.rounds[-1].round if review.rounds else review.open_round
    return [
        f"{p.agent}: {p.rationale}"
        for p in sorted(review.latest_positions(last).values(), key=lambda p: p.agent)
        if p.stance != "approve" and p.rationale
    ]


def _final(view: FlowView, run: str, approved: bool) -> list[EventBase]:
    board = view.board
    if "final" not in board.tasks:
        return [
            _task(
                run,
                "final",
                "Write the morning summary",
                "final_report",
                "director",
                "final#0",
                prompt="Summarise the night for the human: outcome, what was built, lessons.",
            )
        ]
    if not _done(board, ["final"]):
        return []
    outcome = "completed" if approved else "completed_with_open_issues"
    lessons = board.tasks["final"].output.get("lessons", [])
    reason = "; ".join(str(x) for x in lessons) if isinstance(lessons, list) else ""
    return [RunEnded(outcome=outcome, reason=reason, key=f"end:{run}")]


EMERGENCY_PREFIXES = ("mediate-", "dump-", "brief-")


def team_may_work(esc: levels.EscalationState) -> bool:
    """Whether regular work goes on: not paused, no emergency meeting (level 2), no level 3."""
    return levels.team_directive(esc) == "run" and esc.level < 2


def is_emergency_task(task_id: str) -> bool:
    """Emergency work (mediation, state dump, human summary) goes on while the team is paused."""
    return task_id.startswith(EMERGENCY_PREFIXES)


def _emergencies(view: FlowView, run: str) -> list[EventBase]:
    """The seed's responses to levels 2 and 3 (guide §4), as tasks for the Director and Scribe.

    Level 2: an emergency meeting; the Director mediates and the escalation is resolved with the
    Director's call. Level 3: Scribe writes a full state dump and the Director a human-readable
    summary; the escalation stays open until a human acks or resumes. (Level 1 is the
    supervisor's: it restarts the agent.)
    """
    board = view.board
    out: list[EventBase] = []
    for esc in sorted(view.escalation.open.values(), key=lambda e: e.seq):
        eid = esc.escalation_id
        if esc.level == 2:
            task_id = f"mediate-{eid}"
            task = board.tasks.get(task_id)
            if task is None:
                out.append(
                    _task(
                        run,
                        task_id,
                        f"Emergency meeting on {eid} ({esc.rule})",
                        "checkpoint_decide",
                        "director",
                        f"emergency#{eid}",
                        parent=task_id,
                        prompt=f"Level 2: {esc.reason}\nMediate: continue, revise or escalate.",
                    )
                )
            elif task.status in FINISHED:
                call = str(task.output.get("decision", "continue")) if task.output else "failed"
                why = str(task.output.get("rationale", "")) if task.output else task.error
                out.append(
                    EscalationResolved(
                        escalation_id=eid,
                        resolution=f"the director mediated: {call}. {why}".strip(),
                        by="director",
                        key=f"resolve:{run}:{eid}:{task_id}",
                    )
                )
                if esc.rule == "phase_overrun" and call == "continue":
                    out += _force_proceed(view, run, eid)
        elif esc.level == 3:
            for task_id, title, kind, role in (
                (f"dump-{eid}", "Full state dump", "checkpoint_summary", "scribe"),
                (f"brief-{eid}", "Summary for the human", "summary", "director"),
            ):
                if task_id not in board.tasks:
                    out.append(
                        _task(
                            run,
                            task_id,
                            f"{title} ({eid}: {esc.rule})",
                            kind,
                            role,
                            f"emergency#{eid}",
                            parent=task_id,
                            prompt=f"Level 3: {esc.reason}\nThe team waits for a human.",
                        )
                    )
    return out


def _force_proceed(view: FlowView, run: str, eid: str) -> list[EventBase]:
    """The Director force-proceeds a stalled phase: its unfinished work is cancelled, so the phase
    completes and the team moves on (seed guide §10.4: no wait without an end)."""
    tag = f"{view.ctx.phase}#{view.ctx.iteration}"
    return [
        TaskCancelled(
            task_id=t.task_id,
            reason=f"the director force-proceeded the stalled {view.ctx.phase} phase ({eid})",
            key=f"cancel:{run}:{t.task_id}",
        )
        for t in view.board.tasks.values()
        if t.phase == tag and t.status not in FINISHED
    ]


_PHASES = {
    "planning": _planning,
    "execution": _execution,
    "review": _review,
    "iteration": _iteration,
}
