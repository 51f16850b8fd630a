"""The scheduler process: folds the log, decides what happens next, routes ready tasks, appends.

Every decision it makes is an event (phases, tasks, routes, round closings, timeouts, trust
changes), derived from the log and the clock reading it was made at, so a restarted scheduler
picks up exactly where the last one stopped. Its appends carry idempotency keys: deciding the
same thing twice after a crash appends it once.

It also wakes the agents: it follows every append anyway, so it rings an agent's private bell
(``doorbell.agent_bell``) when that agent has a task to claim or the run ends, instead of every
agent waking on every append to find out.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Sequence

import msgspec

from swarmlog.errors import SeqConflict
from swarmlog.escalation import levels
from swarmlog.events import (
    AgentRegistered,
    AgentStatusChanged,
    Event,
    EventBase,
    ModelCallFinished,
)
from swarmlog.log import EventLog, FileLog
from swarmlog.runtime.board import EMPTY_BOARD, Board, apply_board, claimable
from swarmlog.runtime.context import EMPTY_CONTEXT, RunContext, apply_context
from swarmlog.runtime.dispatch import Dispatcher
from swarmlog.runtime.doorbell import Doorbell, Ringer, agent_bell
from swarmlog.runtime.flow import (
    FlowView,
    is_emergency_task,
    next_steps,
    team_may_work,
)
from swarmlog.team import reviews as team_reviews
from swarmlog.team import trust as team_trust
from swarmlog.team.settings import TeamSettings

__all__ = ["Scheduler"]

_RUN_OVER = frozenset({("", -1)})  # what an agent is rung for when the run ends or is aborted


class Scheduler:
    """Drive one run from the log until it ends."""

    def __init__(
        self,
        log: EventLog,
        *,
        clock: Callable[[], float] = time.time,
        team: TeamSettings | None = None,
        tick_s: float = 0.5,
    ) -> None:
        self.log = log
        self.clock = clock
        self.tick_s = tick_s
        self.board: Board = EMPTY_BOARD
        self.ctx: RunContext = EMPTY_CONTEXT
        self.reviews: team_reviews.ReviewState = team_reviews.EMPTY
        self.trust: team_trust.TrustState = team_trust.EMPTY
        self.team = team or TeamSettings()
        self.esc: levels.EscalationState = levels.EMPTY
        self.dispatch = Dispatcher()
        self._reader = log.reader(0)
        self._derived: list[EventBase] = []
        self._stop = asyncio.Event()
        # Agents' private bells (agent -> role, address) and what each was last rung for.
        self._bells: dict[str, tuple[str, bytes]] = {}
        self._rung: dict[str, frozenset[tuple[str, int]]] = {}
        self._ringer = Ringer()
        self._host = socket.gethostname()

    def stop(self) -> None:
        self._stop.set()

    def catch_up(self) -> None:
        while batch := self._reader.poll():
            for event in batch:
                self._fold(event)

    def _fold(self, event: Event) -> None:
        self.board = apply_board(self.board, event)
        self.ctx = apply_context(self.ctx, event)
        self.reviews = team_reviews.apply(self.reviews, event)
        self.esc = levels.apply(self.esc, event)
        self.dispatch.observe(event)
        if isinstance(event, ModelCallFinished) and event.model:
            self._derived.extend(self.dispatch.circuit_decision(event, self.ctx.run))
        self._derived.extend(team_trust.trust_events(self.trust, event, self.team))
        self.trust = team_trust.apply(self.trust, event)
        if isinstance(event, AgentRegistered):
            here = event.pid and event.host == self._host
            address = agent_bell(self.log, event.agent, event.pid) if here else None
            self._rung.pop(event.agent, None)
            if address is None:
                self._bells.pop(event.agent, None)
            else:
                self._bells[event.agent] = (event.role, address)
        elif isinstance(event, AgentStatusChanged) and event.status == "stopped":
            self._bells.pop(event.agent, None)

    def _stamp(self, events: Sequence[EventBase]) -> list[EventBase]:
        return [
            msgspec.structs.replace(e, run=e.run or self.ctx.run, actor=e.actor or "scheduler")
            for e in events
        ]

    def append(self, events: Sequence[EventBase]) -> list[Event]:
        return self.log.append(self._stamp(events))

    def step(self) -> bool:
        """Decide once; return whether anything was appended."""
        self.catch_up()
        if self.ctx.ended:
            self._ring_agents()
            return False
        now = self.clock()
        decided: list[EventBase] = []
        if self._derived:
            decided += self._derived
            self._derived = []
        view = FlowView(
            board=self.board,
            ctx=self.ctx,
            reviews=self.reviews,
            trust=self.trust.scores,
            team=self.team,
            escalation=self.esc,
        )
        decided += next_steps(view, now)
        appended = False
        if decided:
            stored = self.append(decided)
            # Keys the log already held come back as the stored events: nothing new happened.
            appended = any(e.seq > self.board.seq for e in stored)
        emergency_only = not team_may_work(self.esc)
        routed = self._route_one(emergency_only=emergency_only)
        self.catch_up()
        self._ring_agents()
        return routed or appended or bool(self._derived)

    def _ring_agents(self, board: Board | None = None) -> None:
        """Ring the private bell of every agent that has something new to do: tasks it may claim
        now (under the team's directive), or the end of the run. ``board``: the board as it is
        after our own last append, when that is not folded yet."""
        board = self.board if board is None else board
        if not self._bells:
            return
        over = self.ctx.ended or levels.team_directive(self.esc) == "aborting"
        emergency_only = not team_may_work(self.esc)
        now = self.clock()
        wants: dict[str, frozenset[tuple[str, int]]] = {}
        for agent, (role, address) in self._bells.items():
            want = _RUN_OVER if over else wants.get(role)
            if want is None:
                # A task comes back under the same id after a failed attempt: its attempt
                # count tells the new offer from the one already rung for.
                want = wants[role] = frozenset(
                    (t.task_id, t.attempt)
                    for t in claimable(board, role, now)
                    if not emergency_only or is_emergency_task(t.task_id)
                )
            if want == self._rung.get(agent):
                continue
            if want and not self._ringer.ring(address):
                continue  # not listening (yet, or any more): try again next step
            self._rung[agent] = want

    def _route_one(self, *, emergency_only: bool = False, attempts: int = 20) -> bool:
        """Append every routing decision that can be made now, in one append, made on exactly
        the log it follows.

        The append names the last seq the decisions saw (optimistic concurrency): if any other
        process appended meanwhile, fold that and decide again, so ``replay --verify`` can
        re-derive each decision from the state just before it (the earlier decisions of the
        same append included). One append for a group of tasks made ready together (the
        reports of a checkpoint, a review's critiques) wakes every reader once, not once a task.
        """
        for _ in range(attempts):
            self.catch_up()
            at = self._reader.position
            decisions = self.dispatch.decisions(
                self.board,
                after_seq=at,
                ts=self.clock(),
                only=is_emergency_task if emergency_only else None,
            )
            if not decisions:
                return False
            try:
                self.append_at(decisions, at)
            except SeqConflict:
                continue
            # Ring the agents now, on the board these decisions make, rather than after reading
            # them back: the claim is on the critical path.
            board = self.board
            for decision in decisions:
                board = apply_board(board, decision)  # type: ignore[arg-type]
            self._ring_agents(board)
            return True
        return False

    def append_at(self, events: Sequence[EventBase], expected_seq: int) -> list[Event]:
        stamped = self._stamp(events)
        if isinstance(self.log, FileLog):
            # A routing decision is re-derivable from the log before it; the next synced append
            # (the agent's claim result) makes it durable with everything before it.
            return self.log.append(stamped, expected_seq=expected_seq, sync="none")
        return self.log.append(stamped, expected_seq=expected_seq)

    async def run(self) -> str:
        """Run until the run ends; return its outcome."""
        try:
            async with Doorbell(self.log) as bell:
                while not self._stop.is_set():
                    if self.step():
                        continue
                    if self.ctx.ended:
                        break
                    await bell.wait(self.tick_s)
        finally:
            self._ringer.close()
        return self.ctx.outcome
