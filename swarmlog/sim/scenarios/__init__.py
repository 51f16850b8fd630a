"""Scenarios for the simulated servers: which models exist, what each role answers, what fails.

A scenario scripts the *replies*, not the protocol: the team still plans, routes, claims, calls the
models over real sockets, validates replies, reviews, converges and escalates through the real
code. Replies are chosen from the machine-readable first line of every prompt
(``<!-- swarmlog task=… kind=… role=… attempt=… -->``), so the same prompt always gets the same
answer and a scenario run is deterministic up to timing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import msgspec

__all__ = ["SCENARIOS", "Scenario", "SimProfile", "get_scenario", "make_reply_fn"]


class SimProfile(msgspec.Struct, frozen=True, kw_only=True):
    """A model profile served by a simulated server."""

    name: str  # the profile name in swarmlog.toml
    model: str  # the model name the server knows
    params_b: float
    capabilities: tuple[str, ...]
    parallel: int = 2
    context_length: int = 8192
    server: str = "gpu0"
    tier: str = ""
    cost_in: float = 0.0  # per 1k tokens
    cost_out: float = 0.0


class Scenario(msgspec.Struct, frozen=True, kw_only=True):
    """One scripted night."""

    name: str
    description: str
    goal: str
    profiles: tuple[SimProfile, ...]
    agents: dict[str, str]  # role -> profile name (the rest are routed by capability)
    plan: tuple[dict[str, Any], ...]
    reviews: tuple[dict[str, dict[str, Any]], ...]  # per review: role -> position
    failures: dict[str, str] = msgspec.field(default_factory=dict)  # task id -> repeated error
    invalid_first: dict[str, int] = msgspec.field(default_factory=dict)  # task id -> bad replies
    faults: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)  # server -> faults
    servers: dict[str, float] = msgspec.field(default_factory=dict)  # server -> VRAM GiB
    max_iterations: int = 2


_STANDARD_PROFILES = (
    SimProfile(
        name="fast",
        model="qwen2.5:1.5b",
        params_b=1.5,
        capabilities=("syntax", "format", "lint", "typecheck", "research", "summary", "report"),
        parallel=4,
        tier="fast",
    ),
    SimProfile(
        name="deep",
        model="qwen2.5:32b",
        params_b=32.0,
        capabilities=(
            "architecture",
            "refactor",
            "security",
            "implement",
            "review",
            "plan",
            "fix",
            "design",
        ),
        parallel=2,
        server="gpu1",
        tier="deep",
    ),
    SimProfile(
        name="director",
        model="claude-sonnet-sim",
        params_b=7.0,
        capabilities=("plan", "decide", "review", "report", "architecture"),
        parallel=2,
        server="api",
        tier="deep",
        cost_in=0.003,
        cost_out=0.015,
    ),
)

_PLAN = (
    {
        "id": "auth",
        "title": "Implement the auth module",
        "kind": "implement",
        "role": "builder",
        "files": ["src/auth.py"],
        "lines": 180,
        "languages": ["python"],
        "prompt": "JWT sessions with bcrypt password hashing.",
    },
    {
        "id": "api-research",
        "title": "Research API patterns (REST vs GraphQL)",
        "kind": "research",
        "role": "scout",
        "prompt": "Compare REST and GraphQL for our clients.",
    },
    {
        "id": "lint-auth",
        "title": "Lint the auth module",
        "kind": "lint",
        "role": "builder",
        "deps": ["auth", "api"],
        "files": ["src/auth.py"],
        "lines": 180,
        "languages": ["python"],
    },
    {
        "id": "format-auth",
        "title": "Format the auth module",
        "kind": "format",
        "role": "builder",
        "deps": ["auth"],
        "files": ["src/auth.py"],
        "lines": 180,
        "languages": ["python"],
    },
    {
        "id": "api",
        "title": "Implement the REST endpoints",
        "kind": "implement",
        "role": "builder",
        "deps": ["api-research"],
        "files": ["src/api.py"],
        "lines": 240,
        "languages": ["python"],
    },
    {
        "id": "lint-api",
        "title": "Lint the REST endpoints",
        "kind": "lint",
        "role": "builder",
        "deps": ["auth", "api"],
        "files": ["src/api.py"],
        "lines": 240,
        "languages": ["python"],
    },
    {
        "id": "lint-tests",
        "title": "Lint the tests",
        "kind": "lint",
        "role": "builder",
        "deps": ["auth", "api"],
        "files": ["tests/test_auth.py"],
        "lines": 90,
        "languages": ["python"],
    },
    {
        "id": "typecheck",
        "title": "Type-check the package",
        "kind": "typecheck",
        "role": "builder",
        "deps": ["api", "auth"],
        "files": ["src/auth.py", "src/api.py"],
        "lines": 420,
        "languages": ["python"],
    },
)


def _pos(stance: str, bugs: int = 0, why: str = "", confidence: float = 0.85) -> dict[str, Any]:
    return {"stance": stance, "critical_bugs": bugs, "rationale": why, "confidence": confidence}


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="demo",
            description="a full night where all goes right: plan, build, review, fix, approve",
            goal="Add authentication and a REST API to the service",
            profiles=_STANDARD_PROFILES,
            agents={"director": "director"},
            plan=_PLAN,
            reviews=(
                {
                    "inspector": _pos(
                        "request_changes", 1, "Password hashing uses MD5; use bcrypt."
                    ),
                    "refactorer": _pos("request_changes", 0, "Split token parsing out of login()."),
                    "architect": _pos("request_changes", 0, "Sessions must be stateless (JWT)."),
                    "director": _pos("request_changes", 0, "Fix the findings, then review again."),
                },
                {
                    "inspector": _pos("approve", 0, "Hashing fixed; tests pass."),
                    "refactorer": _pos("approve", 0, "Clean."),
                    "architect": _pos("approve", 0, "Aligned."),
                    "director": _pos("approve", 0, "Ship it."),
                },
            ),
            invalid_first={"w-typecheck": 1},
        ),
        Scenario(
            name="conflict",
            description="a review that does not converge: the Director decides after max rounds",
            goal="Choose and implement the session storage",
            profiles=_STANDARD_PROFILES,
            agents={"director": "director"},
            plan=_PLAN[:2],
            reviews=(
                {
                    "inspector": _pos("reject", 2, "Race in token refresh.", 0.9),
                    "refactorer": _pos("approve", 0, "Readable.", 0.7),
                    "architect": _pos("request_changes", 0, "Wrong storage layer.", 0.8),
                    "director": _pos("request_changes", 0, "Fix the race; keep the layer.", 0.8),
                },
            ),
            max_iterations=1,
        ),
        Scenario(
            name="stuck",
            description="an agent repeats the same error until the team escalates",
            goal="Add authentication to the service",
            profiles=_STANDARD_PROFILES,
            agents={"director": "director"},
            plan=tuple(
                {**_PLAN[0], "id": name, "title": f"Implement the {name} module"}
                for name in ("auth", "session", "tokens")
            ),
            reviews=(
                {r: _pos("approve") for r in ("inspector", "refactorer", "architect", "director")},
            ),
            failures={
                f"w-{name}": "ImportError: cannot import name 'jwt' from 'auth'"
                for name in ("auth", "session", "tokens")
            },
            max_iterations=1,
        ),
        Scenario(
            name="emergency",
            description="the Inspector finds a critical security hole and raises an EMERGENCY: "
            "the team pauses, the Director mediates, the work is fixed and approved",
            goal="Add authentication and a REST API to the service",
            profiles=_STANDARD_PROFILES,
            agents={"director": "director"},
            plan=_PLAN,
            reviews=(
                {
                    "inspector": {
                        **_pos("reject", 1, "Password hashing uses MD5 instead of bcrypt.", 0.95),
                        "emergency": "Critical security vulnerability in the auth module: "
                        "password hashing uses MD5 instead of bcrypt.",
                    },
                    "refactorer": _pos("request_changes", 0, "Split token parsing out."),
                    "architect": _pos("request_changes", 0, "Hash with bcrypt, cost 12."),
                    "director": _pos("request_changes", 0, "Fix the hashing, then review."),
                },
                {r: _pos("approve") for r in ("inspector", "refactorer", "architect", "director")},
            ),
        ),
        Scenario(
            name="outage",
            description="the server of the deep model dies mid-run; its work moves or waits",
            goal="Add authentication and a REST API to the service",
            profiles=_STANDARD_PROFILES,
            agents={"director": "director"},
            plan=_PLAN,
            reviews=(
                {r: _pos("approve") for r in ("inspector", "refactorer", "architect", "director")},
            ),
            faults={"gpu1": {"die_after_requests": 4}},
            max_iterations=1,
        ),
    )
}


def get_scenario(name: str) -> Scenario:
    """Return a packaged scenario; unknown names list the known ones."""
    from swarmlog.errors import UsageError

    if name not in SCENARIOS:
        raise UsageError(f"unknown scenario {name!r}; choose one of {', '.join(sorted(SCENARIOS))}")
    return SCENARIOS[name]


_HEADER = re.compile(
    r"<!-- swarmlog task=(?P<task>\S+) kind=(?P<kind>\S+) role=(?P<role>\S+) "
    r"attempt=(?P<attempt>\d+)(?: round=(?P<round>\d+))? -->"
)
_BATCH = re.compile(
    r"<!-- swarmlog batch=(?P<batch>\S+) tasks=(?P<tasks>\S+) kind=(?P<kind>\S+) "
    r"role=(?P<role>\S+) attempt=(?P<attempt>\d+) -->"
)
_FILES = {
    "src/auth.py": "import bcrypt\n\n\ndef hash_password(pw: str) -> bytes:\n"
    "    return bcrypt.hashpw(pw.encode(), bcrypt.gensalt())\n",
    "src/api.py": "def routes() -> list[str]:\n    return ['/login', '/logout', '/me']\n",
}


def _iteration(task_id: str) -> int:
    match = re.match(r"rv-(\d+)-", task_id)
    return int(match.group(1)) if match else 0


def _reply(s: Scenario, task: str, kind: str, role: str, attempt: int, seen: int) -> Any:
    if s.invalid_first.get(task, 0) >= seen:
        return "Sure! Here is what I did: linted everything."  # not JSON: the retry path
    if task in s.failures:
        return {"status": "failed", "summary": s.failures[task]}
    if kind == "plan":
        return {"summary": f"{len(s.plan)} work items", "tasks": list(s.plan)}
    if kind in ("critique", "decide"):
        reviews = s.reviews[min(_iteration(task), len(s.reviews) - 1)]
        return reviews.get(role, _pos("approve"))
    if kind == "checkpoint_report":
        return {"report": f"{role.capitalize()}: on track, nothing blocking."}
    if kind == "checkpoint_decide":
        return {"decision": "continue", "rationale": "Milestone reached; no blockers."}
    if kind == "checkpoint_summary":
        return {
            "summary": f"Checkpoint {task.rsplit('-summary', 1)[0]}: work on track.",
            "next_trigger": "the next phase transition",
        }
    if kind == "final_report":
        return {
            "outcome": "goal reached",
            "summary": "Auth and REST API implemented, reviewed and fixed.",
            "lessons": ["Inspect hashing early", "Research before building the API"],
        }
    files = {}
    if role in ("builder", "refactorer"):
        files = {f: _FILES[f] for f in _FILES if task.endswith(f.split("/")[1][:-3])}
    return {
        "status": "done",
        "summary": f"{kind} finished for {task} (attempt {attempt}).",
        "files": files,
        "findings": [],
    }


def make_reply_fn(scenario: Scenario) -> Any:
    """Build the servers' ``reply_fn(model, messages, options) -> str`` for a scenario."""
    seen: dict[tuple[str, int], int] = {}

    def reply_fn(model: str, messages: list[Mapping[str, Any]], options: Mapping[str, Any]) -> str:
        prompt = "\n".join(str(m.get("content", "")) for m in messages)
        batch = _BATCH.search(prompt)
        if batch is not None:
            results = []
            for task in batch["tasks"].split(","):
                one = _reply(scenario, task, batch["kind"], batch["role"], 1, 2)
                if isinstance(one, dict):
                    results.append({"task_id": task, **one})
            return json.dumps({"results": results}, sort_keys=True)
        match = _HEADER.search(prompt)
        if match is None:
            return json.dumps({"status": "done", "summary": "ok"})
        task, attempt = match["task"], int(match["attempt"])
        seen[(task, attempt)] = seen.get((task, attempt), 0) + 1
        reply = _reply(scenario, task, match["kind"], match["role"], attempt, seen[(task, attempt)])
        return reply if isinstance(reply, str) else json.dumps(reply, sort_keys=True)

    return reply_fn
