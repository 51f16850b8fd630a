"""A scripted night used by the golden, replay and CLI tests (no tests of its own)."""

from __future__ import annotations

from swarmlog.events import (
    AgentRegistered,
    AgentStatusChanged,
    AlertDelivered,
    AlertRaised,
    CandidateScore,
    CheckpointWritten,
    DecisionMade,
    DetectorFired,
    EscalationRaised,
    EscalationResolved,
    EventBase,
    Heartbeat,
    HumanCommand,
    MessageSent,
    ModelCallFinished,
    Note,
    PhaseCompleted,
    PhaseEntered,
    PositionTaken,
    ReviewOpened,
    RoundClosed,
    RunEnded,
    RunStarted,
    TaskClaimed,
    TaskCompleted,
    TaskFailed,
    TaskRouted,
    TaskStarted,
    TaskSubmitted,
    TrustChanged,
)

T0 = 1_769_571_000.0  # 2026-01-28 03:30:00 UTC
RUN = "night-0128"
ROLES = ("director", "architect", "scout", "builder", "refactorer", "inspector", "scribe")


def scripted(*, hostile: str = "", resolve: bool = True) -> list[EventBase]:
    """Return a small night with every kind of event the renderer shows, stamped with seqs.

    ``hostile`` is spliced into every free-text field; ``resolve`` False leaves the emergency open.
    """
    h = hostile
    t = T0
    out: list[EventBase] = []

    def add(e: EventBase, dt: float = 30.0) -> None:
        nonlocal t
        t += dt
        out.append(e.__class__(**{**_fields(e), "seq": len(out) + 1, "ts": t, "run": RUN}))

    add(RunStarted(goal="Refactor the auth module" + h, actor="scheduler"), 0)
    for role in ROLES:
        model = "claude-sonnet" if role == "director" else "qwen3:32b"
        add(AgentRegistered(agent=role, role=role, model=model, actor=role), 1)
    add(PhaseEntered(phase="planning", actor="scheduler"))
    add(TaskSubmitted(task_id="T1", title="Research API patterns" + h, role="scout"))
    cands = (
        CandidateScore(model="qwen3:32b", score=1.5, expected_s=40.0),
        CandidateScore(model="qwen3:8b", eligible=False, reason="context too small"),
    )
    add(TaskRouted(task_id="T1", model="qwen3:32b", reason="best score", candidates=cands))
    add(TaskClaimed(task_id="T1", agent="scout", lease_until=t + 600))
    add(TaskStarted(task_id="T1", agent="scout", model="qwen3:32b"))
    add(Heartbeat(agent="scout", task_id="T1", lease_until=t + 900))
    add(ModelCallFinished(model="qwen3:32b", task_id="T1", agent="scout", total_ms=2400.0,
                          ttft_ms=300.0, prompt_tokens=1200, completion_tokens=480))  # fmt: skip
    add(MessageSent(msg_id="m1", sender="scout", to="director", type="STATUS",
                    content="REST looks simpler" + h))  # fmt: skip
    add(TaskCompleted(task_id="T1", agent="scout", summary="REST fits" + h, tokens_in=1200,
                      tokens_out=480, cost=0.0))  # fmt: skip
    add(PhaseCompleted(phase="planning"))
    add(PhaseEntered(phase="execution", expected_s=3600))
    add(TaskSubmitted(task_id="T2", title="Implement auth module" + h, role="builder",
                      deps=("T1",)))  # fmt: skip
    add(TaskRouted(task_id="T2", model="qwen3:32b"))
    add(TaskClaimed(task_id="T2", agent="builder", lease_until=t + 600))
    add(TaskStarted(task_id="T2", agent="builder", model="qwen3:32b"))
    add(ModelCallFinished(model="qwen3:32b", task_id="T2", agent="builder", total_ms=9100.0,
                          prompt_tokens=3000, completion_tokens=1500))  # fmt: skip
    add(ModelCallFinished(model="qwen3:32b", task_id="T2", agent="builder", total_ms=600000.0,
                          outcome="timeout", error="no reply" + h))  # fmt: skip
    add(TaskFailed(task_id="T2", agent="builder", error="timed out waiting" + h,
                   reply="<b>partial</b>" + h))  # fmt: skip
    add(TaskClaimed(task_id="T2", agent="builder", attempt=2, lease_until=t + 600))
    add(TaskStarted(task_id="T2", agent="builder", attempt=2, model="qwen3:32b"))
    add(DetectorFired(detector="latency", level=3, model="qwen3:32b", value=600000.0,
                      threshold=300000.0, evidence=(19,)))  # fmt: skip
    add(EscalationRaised(escalation_id="E1", level=3, rule="latency",
                         reason="response latency over 5 minutes" + h, evidence=(19,)))  # fmt: skip
    add(AlertRaised(alert_id="A1", level=3, rule="latency", title="Model too slow" + h,
                    summary="qwen3:32b took 600 s" + h, evidence=(19, 20),
                    actions=("paused new routing to qwen3:32b" + h,),
                    advice=("check the GPU box" + h,), escalation_id="E1"))  # fmt: skip
    add(AlertDelivered(alert_id="A1", channel="file", ok=True))
    add(AlertDelivered(alert_id="A1", channel="webhook", ok=False, error="refused"))
    add(AgentStatusChanged(agent="director", status="active", detail="Monitoring"))
    add(AgentStatusChanged(agent="scribe", status="active", detail="Maintaining state"))
    add(ReviewOpened(review_id="R1", subject="REST vs GraphQL" + h,
                     participants=("architect", "scout", "inspector")))  # fmt: skip
    add(PositionTaken(review_id="R1", agent="architect", round=1, stance="approve"))
    add(PositionTaken(review_id="R1", agent="inspector", round=1, stance="request_changes"))
    add(RoundClosed(review_id="R1", round=1, converged=False))
    add(DecisionMade(decision_id="D1", subject="Choice between REST vs GraphQL" + h,
                     outcome="awaiting Scout research", rule="director", pending=True))  # fmt: skip
    add(DecisionMade(decision_id="D2", subject="Use bcrypt for hashing" + h, outcome="approve",
                     rule="supermajority", review_id="R1", rationale="Safer default.\n" + h,
                     dissent=("inspector",), controversy="cost factor" + h))  # fmt: skip
    add(TrustChanged(agent="builder", old=7, new=6, reason="attempt timed out" + h,
                     evidence_seq=20))  # fmt: skip
    add(TrustChanged(agent="inspector", old=7, new=8, reason="caught a real bug"))
    add(CheckpointWritten(checkpoint_id="C1", trigger="phase change" + h, summary="ok" + h,
                          next_trigger="Builder completes auth module" + h))  # fmt: skip
    add(Note(text="operator checked the GPU box" + h, actor="human"))
    if resolve:
        add(EscalationResolved(escalation_id="E1", resolution="latency back to normal"))
        add(HumanCommand(command="ack", target="A1", actor="human"))
        add(TaskCompleted(task_id="T2", agent="builder", attempt=2, summary="auth done" + h,
                          tokens_in=4000, tokens_out=2000, cost=0.0))  # fmt: skip
        add(PhaseCompleted(phase="execution"))
        add(RunEnded(outcome="completed", reason="all tasks done"))
    return out


def _fields(e: EventBase) -> dict[str, object]:
    return {f: getattr(e, f) for f in e.__struct_fields__}
