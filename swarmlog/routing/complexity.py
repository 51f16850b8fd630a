"""Estimate a task's complexity from its ``task_submitted`` features: a tier and capabilities.

Deterministic and explainable: every point of the score comes with a reason.
"""

from __future__ import annotations

import functools
import math

import msgspec

from swarmlog.events import TaskSubmitted

__all__ = [
    "DEEP_KINDS",
    "DEFAULT_OUTPUT_TOKENS",
    "KIND_CAPABILITY",
    "OUTPUT_TOKENS_PRIOR",
    "SHALLOW_KINDS",
    "Complexity",
    "TaskFeatures",
    "estimate",
    "estimate_tokens",
    "features_of",
]

# Syntax-level work goes to the fast tier, deep work to the large tier (seeds/000).
SHALLOW_KINDS = frozenset({"lint", "format", "typecheck", "type_check", "syntax"})
DEEP_KINDS = frozenset({"architecture", "refactor", "security", "design", "planning"})
KIND_CAPABILITY = {
    "lint": "lint",
    "format": "format",
    "typecheck": "syntax",
    "type_check": "syntax",
    "syntax": "syntax",
    "architecture": "architecture",
    "refactor": "refactor",
    "security": "security",
}
# Expected reply length by task kind, used until the log holds observations of that kind.
OUTPUT_TOKENS_PRIOR = {
    "lint": 120,
    "format": 160,
    "typecheck": 120,
    "type_check": 120,
    "syntax": 120,
    "refactor": 900,
    "architecture": 1500,
    "security": 800,
    "design": 1200,
    "planning": 1000,
}
DEFAULT_OUTPUT_TOKENS = 400
_DEEP_THRESHOLD = 1.0


class TaskFeatures(msgspec.Struct, frozen=True, kw_only=True, cache_hash=True):
    """What the router knows about a task: exactly the fields of its ``task_submitted``."""

    task_id: str
    task_kind: str = "general"
    prompt_tokens: int = 0
    files: int = 0
    lines: int = 0
    languages: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ()
    interactive: bool = False
    priority: int = 0
    role: str = ""  # whose task it is: ``[agents.ROLE]`` may pin its model or cap its tasks


class Complexity(msgspec.Struct, frozen=True, kw_only=True):
    """The estimate: a score (≥ 1 means deep), its tier, the capabilities a model must have."""

    score: float
    tier: str
    capabilities: tuple[str, ...]
    prompt_tokens: int
    output_tokens: int
    reasons: tuple[str, ...]


def estimate_tokens(text: str) -> int:
    """Estimate tokens as ``len / 4`` (no tokenizer is assumed)."""
    return (len(text) + 3) // 4


def features_of(task: TaskSubmitted) -> TaskFeatures:
    """Return the routing features recorded in a ``task_submitted`` event."""
    return TaskFeatures(
        task_id=task.task_id,
        task_kind=task.task_kind,
        prompt_tokens=estimate_tokens(task.prompt),
        files=len(task.files),
        lines=task.lines,
        languages=task.languages,
        capabilities=task.capabilities,
        interactive=task.interactive,
        priority=task.priority,
        role=task.role,
    )


@functools.lru_cache(maxsize=4096)
def estimate(task: TaskFeatures) -> Complexity:
    """Score a task; the kind dominates, size and breadth add to it.

    Pure, so its result is memoised per task (features are frozen and hash once): a task is
    estimated again at every decision that re-derives or retries it.
    """
    kind = task.task_kind
    reasons: list[str] = []
    if kind in SHALLOW_KINDS:
        score = 0.2
        reasons.append(f"kind {kind} is syntax-level (+0.2)")
    elif kind in DEEP_KINDS:
        score = 1.2
        reasons.append(f"kind {kind} is deep work (+1.2)")
    else:
        score = 0.5
        reasons.append(f"kind {kind} is general (+0.5)")
    if task.prompt_tokens > 2000:
        add = round(0.15 * math.log2(task.prompt_tokens / 2000), 3)
        score += add
        reasons.append(f"{task.prompt_tokens} prompt tokens (+{add})")
    if task.files > 3:
        add = round(0.1 * math.log2(task.files / 3), 3)
        score += add
        reasons.append(f"{task.files} files (+{add})")
    if task.lines > 500:
        add = round(0.1 * math.log2(task.lines / 500), 3)
        score += add
        reasons.append(f"{task.lines} lines (+{add})")
    if len(task.languages) > 1:
        add = 0.15 * (len(task.languages) - 1)
        score += add
        reasons.append(f"{len(task.languages)} languages (+{add:g})")
    score = round(score, 3)
    tier = "deep" if score >= _DEEP_THRESHOLD else "fast"
    caps = set(task.capabilities)
    if kind in KIND_CAPABILITY:
        caps.add(KIND_CAPABILITY[kind])
    base_out = OUTPUT_TOKENS_PRIOR.get(kind, DEFAULT_OUTPUT_TOKENS)
    return Complexity(
        score=score,
        tier=tier,
        capabilities=tuple(sorted(caps)),
        prompt_tokens=task.prompt_tokens,
        output_tokens=base_out,
        reasons=tuple(reasons),
    )
