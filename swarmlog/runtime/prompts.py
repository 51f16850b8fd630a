"""Render an agent's prompt for a task from ``templates/prompts/ROLE.md.j2``.

The prompt carries Scribe's latest summaries rather than transcripts, within a token budget, and
the Inspector's critique material never includes the Builder's own assessment of its work.
"""

from __future__ import annotations

import json
from functools import cache

import jinja2
import pydantic

from swarmlog.render import make_environment
from swarmlog.runtime.board import Board, TaskView
from swarmlog.runtime.context import RunContext
from swarmlog.runtime.replies import REPLY_MODELS, WorkReply, reply_model
from swarmlog.team.checkpoints import context_for_prompt, estimate_tokens, fit_blocks

__all__ = ["render_batch_prompt", "render_prompt", "review_material", "warm_up"]


@cache
def _environment() -> jinja2.Environment:
    return make_environment(None)


def _schema_text(task_kind: str) -> str:
    """The reply schema shown to the model for a task kind."""
    return _schema_of(reply_model(task_kind))


@cache
def _schema_of(model: type[pydantic.BaseModel]) -> str:
    """Built once per reply model (pydantic's schema is not cheap), shared by the kinds using it."""
    return json.dumps(model.model_json_schema(), sort_keys=True)


def warm_up(role: str) -> None:
    """Compile the role's templates and build every reply schema now, at the process's start,
    rather than inside its first tasks (a few milliseconds apiece on a busy machine)."""
    env = _environment()
    # The base a role template extends is loaded when the role's is first rendered: load it too.
    for name in (
        f"prompts/{role.split('-')[0]}.md.j2",
        "prompts/_base.md.j2",
        "prompts/batch.md.j2",
    ):
        env.get_template(name)
    for model in {*REPLY_MODELS.values(), WorkReply}:
        _schema_of(model)


def _context(ctx: RunContext, budget_tokens: int) -> str:
    """Scribe's summaries within the budget, completed phases archived (seed guide §10.2)."""
    return context_for_prompt(ctx.checkpoints, budget_tokens, archived_before=ctx.phase_seq)


_DECIDING_KINDS = frozenset({"decide", "checkpoint_summary", "checkpoint_decide"})


def review_material(
    board: Board, task: TaskView, role: str, budget_tokens: int | None = None
) -> str:
    """What a reviewer sees: the work under review; the author's self-assessment is left out for
    the Inspector, so its verdict stays independent (seed guide §10.1).

    Within ``budget_tokens`` (None: no limit): a review of a big night's work (the Builder's
    presentation depends on every work item) lists what fits and says how many items were left
    out, so the prompt does not grow with the night past the context a call may carry.
    """
    parts = []
    for dep in task.deps:
        work = board.tasks.get(dep)
        if work is None:
            continue
        output = {k: v for k, v in work.output.items() if k in ("files", "findings", "tests")}
        if role != "inspector" and work.output.get("summary"):
            output["author_summary"] = work.output["summary"]
        parts.append(f"### {work.title} ({work.task_id})\n{json.dumps(output, sort_keys=True)}")
    if task.task_kind in _DECIDING_KINDS:
        for other in board.tasks.values():
            if other.parent == task.parent and other.output and other.task_id != task.task_id:
                parts.append(
                    f"- {other.agent or other.role}: {json.dumps(other.output, sort_keys=True)}"
                )
    return _within(parts, budget_tokens)


def _within(parts: list[str], budget_tokens: int | None) -> str:
    """Join ``parts`` while they fit in ``budget_tokens``; name how many did not."""
    if budget_tokens is None:
        return "\n".join(parts)
    # Each part costs its tokens and one for the newline joining it.
    kept = fit_blocks(parts, budget_tokens, lambda part: estimate_tokens(part) + 1)
    left = len(parts) - len(kept)
    if left:
        kept.append(
            f"(… {left} more of {len(parts)} items left out to keep this prompt within its "
            f"context budget of {budget_tokens} tokens)"
        )
    return "\n".join(kept)


def render_prompt(
    *,
    role: str,
    task: TaskView,
    ctx: RunContext,
    board: Board,
    attempt: int,
    previous_error: str = "",
    budget_tokens: int = 2000,
) -> str:
    """Render the prompt for one attempt at a task."""
    template = _environment().get_template(f"prompts/{role.split('-')[0]}.md.j2")
    context = _context(ctx, budget_tokens)
    used = estimate_tokens(context) if context else 0
    return template.render(
        role=role.split("-")[0],
        task=task,
        attempt=attempt,
        review_round=task.round,
        goal=ctx.goal,
        context=context,
        extra=review_material(board, task, role.split("-")[0], max(0, budget_tokens - used)),
        previous_error=previous_error,
        schema=_schema_text(task.task_kind),
    )


def render_batch_prompt(
    *,
    role: str,
    batch_id: str,
    tasks: list[TaskView],
    ctx: RunContext,
    attempt: int,
    budget_tokens: int = 2000,
) -> str:
    """Render the one prompt that carries a batch of small same-kind tasks."""
    template = _environment().get_template("prompts/batch.md.j2")
    return template.render(
        role=role.split("-")[0],
        batch_id=batch_id,
        tasks=tasks,
        kind=tasks[0].task_kind,
        attempt=attempt,
        goal=ctx.goal,
        context=_context(ctx, budget_tokens),
        schema=_schema_text("batch"),
    )
