"""The structured replies each kind of task expects from its model, validated with pydantic.

A model's reply is untrusted input: it is parsed here, at the boundary, and turned into plain data.
An invalid reply gives a one-line error that is shown to the model on the retry.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from swarmlog.team.deadlock import find_cycle

__all__ = [
    "REPLY_MODELS",
    "BatchItem",
    "BatchReply",
    "CheckpointDecision",
    "CheckpointReport",
    "FinalReport",
    "Finding",
    "PlanItem",
    "PlanReply",
    "PositionReply",
    "ScribeSummary",
    "WorkReply",
    "parse_reply",
    "reply_model",
    "reply_schema",
]


class _Reply(BaseModel):
    model_config = ConfigDict(extra="ignore", str_max_length=20_000)


class PlanItem(_Reply):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    title: str = Field(min_length=1, max_length=300)
    kind: str = "implement"
    role: Literal["builder", "scout", "refactorer", "inspector", "architect"] = "builder"
    deps: list[str] = []
    files: list[str] = []
    lines: int = Field(default=0, ge=0)
    languages: list[str] = []
    prompt: str = ""


class PlanReply(_Reply):
    """The Director's plan: the work items of the execution phase.

    A plan whose dependencies form a cycle is refused here, when it is submitted, so the team can
    never wait on itself (seed guide §10.4); the Director sees the cycle and plans again.
    """

    summary: str
    tasks: list[PlanItem] = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _acyclic(self) -> PlanReply:
        ids = [t.id for t in self.tasks]
        if len(set(ids)) != len(ids):
            raise ValueError(f"task ids repeat: {sorted(i for i in set(ids) if ids.count(i) > 1)}")
        cycle = find_cycle({t.id: t.deps for t in self.tasks})
        if cycle:
            raise ValueError(f"dependency cycle {' -> '.join(cycle)}; remove one dependency")
        return self


_EMERGENCY = Field(
    default="",
    max_length=2000,
    description="Leave empty unless the Director must decide now (a security hole, data loss, "
    "work that cannot go on): what is wrong, in one or two sentences. It pauses the team.",
)


class Finding(_Reply):
    severity: Literal["critical", "major", "minor", "info"] = "minor"
    text: str


class WorkReply(_Reply):
    """A worker's result: what it did, files it wants written, what it found."""

    status: Literal["done", "failed"] = "done"
    summary: str
    files: dict[str, str] = {}
    findings: list[Finding] = []
    run_tests: bool = False
    emergency: str = _EMERGENCY


class BatchItem(WorkReply):
    """One task's result inside a batch reply."""

    task_id: str


class BatchReply(_Reply):
    """The reply to a batch of small tasks: one result per task."""

    results: list[BatchItem] = Field(min_length=1, max_length=64)


class PositionReply(_Reply):
    """A reviewer's stance in a review round."""

    stance: Literal["approve", "request_changes", "reject"]
    confidence: float = Field(default=0.8, ge=0.0, le=1.0)
    critical_bugs: int = Field(default=0, ge=0)
    rationale: str = ""
    fundamental_flaw: bool = False
    emergency: str = _EMERGENCY


class CheckpointReport(_Reply):
    """One agent's one-line status at a checkpoint."""

    report: str = Field(max_length=500)


class CheckpointDecision(_Reply):
    """The Director's call at a checkpoint."""

    decision: Literal["continue", "revise", "escalate"]
    rationale: str = ""


class ScribeSummary(_Reply):
    """Scribe's summary, which replaces transcripts in later prompts."""

    summary: str
    next_trigger: str = ""


class FinalReport(_Reply):
    """The Director's closing words for the morning report."""

    outcome: str
    summary: str = ""
    lessons: list[str] = []


# task kind → the reply it must produce; kinds not listed produce a WorkReply
REPLY_MODELS: dict[str, type[_Reply]] = {
    "plan": PlanReply,
    "critique": PositionReply,
    "decide": PositionReply,
    "checkpoint_report": CheckpointReport,
    "checkpoint_decide": CheckpointDecision,
    "checkpoint_summary": ScribeSummary,
    "final_report": FinalReport,
    "batch": BatchReply,
}

_FENCE = re.compile(r"```(?:json)?\s*(\{.*\})\s*```", re.DOTALL)


def reply_model(task_kind: str) -> type[_Reply]:
    """The model a task kind's reply must validate against."""
    return REPLY_MODELS.get(task_kind, WorkReply)


def reply_schema(task_kind: str) -> dict[str, Any]:
    """The JSON schema a task kind's reply must follow (shown to the model)."""
    return reply_model(task_kind).model_json_schema()


def _object_in(text: str, *, tries: int = 20) -> dict[str, Any] | None:
    """The first JSON object inside ``text`` (a sentence before it, words after it), or None.

    Anthropic's Messages API has no JSON mode, so the Director's JSON may come with prose
    around it; the object is still validated like any reply.
    """
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1 and tries > 0:
        try:
            obj, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            pass
        else:
            if isinstance(obj, dict):
                return obj
        start = text.find("{", start + 1)
        tries -= 1
    return None


def parse_reply(task_kind: str, text: str) -> tuple[dict[str, Any] | None, str]:
    """Validate a model's reply; return (data, "") or (None, a one-line error for the model)."""
    model = reply_model(task_kind)
    raw = text.strip()
    fenced = _FENCE.search(raw)
    if fenced:
        raw = fenced.group(1)
    try:
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            # prose around the object: take the object, but only if it is a whole valid reply
            # (an object nested in a reply cut short must not stand in for it)
            inner = _object_in(raw)
            if inner is not None:
                try:
                    return model.model_validate(inner).model_dump(), ""
                except ValidationError:
                    pass
            return None, (
                f"reply is not JSON ({exc.msg} at char {exc.pos}); answer with one JSON object"
            )
    except RecursionError:  # a model looping on '[' or '{' until its token limit
        return None, (
            f"reply is not JSON (nested deeper than {sys.getrecursionlimit()} levels); "
            f"answer with one JSON object"
        )
    try:
        return model.model_validate(data).model_dump(), ""
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        return None, f"reply field {where}: {first['msg']} (got {str(first.get('input'))[:60]!r})"
