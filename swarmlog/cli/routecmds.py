"""Sub-commands for hardware and routing: ``hw``, ``route``, ``config check``."""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from swarmlog.cli.common import add_command, emit_json, open_log, wants_json, workspace
from swarmlog.errors import ConfigError, LogCorrupt, NoRouteAvailable, SwarmlogError, UsageError
from swarmlog.events import ConfigLoaded, EventBase, TaskSubmitted

if TYPE_CHECKING:
    from swarmlog.config import Config
    from swarmlog.events import TaskRouted
    from swarmlog.routing.stats import RouterState

__all__ = ["SEED_MODELS", "register"]

# The seed's example profiles (seeds/000), used by ``route`` when no [models] are configured.
SEED_MODELS: dict[str, dict[str, Any]] = {
    "fast": {
        "endpoint": "http://localhost:8001/v1",
        "model": "Qwen/Qwen3.5-1.5B",
        "capabilities": ["syntax", "format", "lint"],
    },
    "deep": {
        "endpoint": "http://localhost:8002/v1",
        "model": "Qwen/Qwen3.5-32B",
        "capabilities": ["architecture", "refactor", "security"],
    },
}

_GB = 1e9


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub, "hw", "GPUs, VRAM, RAM, and which model profiles fit where", "swarmlog hw --json"
    )
    p.set_defaults(func=cmd_hw)

    p = add_command(
        sub,
        "route",
        "the routing decision for a described task, with every candidate's score",
        "swarmlog route --task-kind lint --prompt-file diff.txt --files a.py,b.py --explain",
    )
    p.add_argument(
        "--task-kind", default="general", help="lint, format, refactor, … (default general)"
    )
    p.add_argument("--prompt", default="", help="the prompt text")
    p.add_argument("--prompt-file", type=Path, help="read the prompt from this file")
    p.add_argument("--files", default="", help="comma-separated files the task touches")
    p.add_argument("--lines", type=int, default=0, help="lines of code involved")
    p.add_argument("--languages", default="", help="comma-separated languages")
    p.add_argument("--capabilities", default="", help="comma-separated required capabilities")
    p.add_argument("--interactive", action="store_true", help="route for the lowest latency")
    p.add_argument(
        "--role", default="", help="the role whose task it is ([agents.ROLE].model may pin it)"
    )
    p.add_argument(
        "--task-id", default="cli-task", help="task id (it seeds the tie-break; default cli-task)"
    )
    p.add_argument("--explain", action="store_true", help="print every candidate and reason")
    p.set_defaults(func=cmd_route)

    p = add_command(sub, "config", "configuration commands", "swarmlog config check")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION")
    c = add_command(
        csub,
        "check",
        "validate swarmlog.toml; errors name the key path and the bad value",
        "swarmlog config check --dir ./night-run",
    )
    c.add_argument("--file", type=Path, help="the config file (default: the workspace's)")
    c.set_defaults(func=cmd_config_check)
    # no ACTION: a usage error that names them (argparse's says only "ACTION is required")
    actions = {a.dest: a.help or "" for a in csub._choices_actions}
    p.set_defaults(func=cmd_config_usage, config_actions=actions)


def _config(args: argparse.Namespace) -> tuple[Config, Path]:
    from swarmlog.config import load_config

    path = workspace(args).config
    return load_config(path, missing_ok=True), path


def _split(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def cmd_hw(args: argparse.Namespace) -> int:
    from swarmlog.hardware import Probe, place
    from swarmlog.routing import project

    cfg, config_path = _config(args)
    ws = workspace(args)
    probe = Probe(disk_path=str(ws.root if ws.root.exists() else Path.cwd()))
    sample = probe.sample()
    # The config in force, with the sizes servers reported in the log for models it leaves unsized;
    # with no [models] in the file, the config the log's last night ran with (as route does).
    history = _history(args)
    data, recorded_at = _config_in_force(cfg.to_event_dict(), history)
    profiles = project(_with_config(data, history)).config.profiles
    placements = place(profiles, sample.gpus)
    if wants_json(args):
        emit_json(
            {
                "hardware": sample,
                "placement": [msgspec.structs.asdict(p) for p in placements],
                "not_read": list(probe.errors),
            }
        )
        return 0
    if sample.gpus:
        for g in sample.gpus:
            util = f"{g.util_gpu}%" if g.util_gpu is not None else "?"
            temp = f"{g.temperature_c}°C" if g.temperature_c is not None else "?"
            mem = (
                f"{g.mem_free / _GB:.1f}/{g.mem_total / _GB:.1f} GB free"
                if g.mem_total > 0
                else "memory unknown"
            )
            print(
                f"GPU {g.index}: {g.name or 'name unknown'} {mem}, util {util}, {temp}, "
                f"{len(g.processes)} process(es)"
            )
            for problem in g.errors:
                print(f"GPU {g.index}: not read: {problem}")
    else:
        print(f"no GPU ({sample.nvml_error or 'NVML found no device'})")
    failed = {e.split(":", 1)[0] for e in probe.errors}
    ram = (
        "RAM unknown"
        if "virtual_memory" in failed
        else f"RAM {sample.ram_available / _GB:.1f}/{sample.ram_total / _GB:.1f} GB available"
    )
    swap = (
        "swap unknown"
        if "swap_memory" in failed
        else f"swap {sample.swap_used / _GB:.1f}/{sample.swap_total / _GB:.1f} GB used"
    )
    cpus = "CPUs unknown" if "cpu_count" in failed else f"{sample.cpu_count} CPUs"
    load = ", ".join(f"{x:.2f}" for x in sample.load_avg) or "unknown"
    disk = (
        "disk unknown" if "disk_usage" in failed else f"disk {sample.disk_free / _GB:.1f} GB free"
    )
    print(f"{ram}, {swap}, {cpus}, load {load}, {disk}")
    for problem in probe.errors:
        print(f"not read: {problem}")
    if recorded_at is not None:
        print(
            f"no [models] in {config_path}: placing the models the log's config_loaded at seq "
            f"{recorded_at} recorded (the last night's)"
        )
    if not placements and not config_path.exists():
        print(f"no {config_path}: run 'swarmlog init' to describe your models, then 'swarmlog hw'")
    elif not placements:
        print(f"no model profiles configured ([models.*] in {config_path})")
    for pl in placements:
        if pl.need_gb is None:
            print(f"model {pl.model}: {pl.reason}")  # "size unknown …" or "hosted …"
        else:
            print(f"model {pl.model}: {pl.need_gb:.1f} GB: {pl.reason}")
    return 0


def cmd_route(args: argparse.Namespace) -> int:
    from swarmlog.config import parse_config
    from swarmlog.routing import choose_route, estimate, features_of, project
    from swarmlog.routing.roles import with_role_capabilities

    if args.lines < 0:
        raise UsageError(f"--lines must be 0 or more (lines of code involved), got {args.lines}")
    if not args.task_id.strip():
        raise UsageError(
            f"--task-id must name the task (it seeds the tie-break), got {args.task_id!r}; "
            "leave it out for 'cli-task'"
        )
    if args.prompt and args.prompt_file is not None:
        raise UsageError(
            f"give --prompt or --prompt-file, not both (got --prompt {args.prompt[:40]!r} and "
            f"--prompt-file {args.prompt_file})"
        )
    cfg, _ = _config(args)
    if args.role and args.role not in _roles(cfg):
        raise UsageError(_not_one_of("--role", args.role, "role", _roles(cfg)))
    history = _history(args)
    # With no [models] in the file, the config the log's last night ran with (e.g. run --sim).
    data, recorded_at = _config_in_force(cfg.to_event_dict(), history)
    defaulted = not data["models"]
    if defaulted:
        data["models"] = parse_config({"models": SEED_MODELS}).to_event_dict()["models"]
    prompt = args.prompt
    if args.prompt_file is not None:
        try:
            prompt = args.prompt_file.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise UsageError(
                f"cannot read --prompt-file {args.prompt_file}: {exc.strerror}"
            ) from exc
    events = _with_config(data, history)
    kinds = _task_kinds(events)
    if args.task_kind not in kinds:
        raise UsageError(_not_one_of("--task-kind", args.task_kind, "task kind", kinds))
    config = events[-1]
    task = TaskSubmitted(
        seq=config.seq + 1,
        ts=config.ts,
        task_id=args.task_id,
        title="described on the command line",
        task_kind=args.task_kind,
        prompt=prompt,
        files=_split(args.files),
        lines=args.lines,
        languages=_split(args.languages),
        capabilities=_split(args.capabilities),
        interactive=args.interactive,
        role=args.role,
    )
    routed = with_role_capabilities(task, data)  # as the scheduler submits the role's tasks
    assert isinstance(routed, TaskSubmitted)
    task = routed
    state = project([*events, task])
    try:
        decision = choose_route(state, task)
    except NoRouteAvailable as exc:
        raise NoRouteAvailable(_readable_times(str(exc), task.ts)) from exc
    cx = estimate(features_of(task))
    if wants_json(args):  # reasons as recorded: a script reads retry times as numbers
        emit_json({"decision": decision, "complexity": cx, "default_models": defaulted})
        return 0
    decision = msgspec.structs.replace(
        decision,
        reason=_readable_times(decision.reason, task.ts),
        candidates=tuple(
            msgspec.structs.replace(c, reason=_readable_times(c.reason, task.ts))
            for c in decision.candidates
        ),
    )
    if recorded_at is not None:
        print(
            f"no [models] in {_config(args)[1]}: routing with the config the log's config_loaded "
            f"at seq {recorded_at} recorded (the last night's)"
        )
    if defaulted:
        print(
            "no [models] configured: showing how the seed's example profiles fast and deep "
            "would route it ('swarmlog run' needs [models.*] in swarmlog.toml)"
        )
    print(f"route {task.task_id} -> {decision.model} (tier {decision.tier}, {decision.reason})")
    if args.explain:
        print(f"complexity {cx.score} -> tier {cx.tier}: {'; '.join(cx.reasons)}")
        print(
            f"prompt tokens {cx.prompt_tokens}, expected output {cx.output_tokens}, "
            f"needs {', '.join(cx.capabilities) or 'no particular capability'}"
        )
        price = _price_notes(state, decision, task.interactive)
        for c in decision.candidates:
            mark = "*" if c.model == decision.model else " "
            if c.eligible:
                print(
                    f" {mark} {c.model:<16} score {c.score:>10.3f}  expected {c.expected_s:.3f}s  "
                    f"{c.in_flight}/{c.slots} busy  {c.reason}{price.get(c.model, '')}"
                )
            else:
                print(f"   {c.model:<16} filtered: {c.reason}")
    return 0


def _price_notes(state: RouterState, decision: TaskRouted, interactive: bool) -> dict[str, str]:
    """Say how price multiplied each eligible candidate's score, as choose_route weighs it.

    The recorded reason leaves the factor out; without it a score above the expected time
    plus the tier penalty could not be explained from what route prints.
    """
    cfg = state.config
    if interactive or not cfg.cost_weight:
        return {}
    cost = {pp.name: pp.cost for pp in cfg.prepared}
    eligible = [c.model for c in decision.candidates if c.eligible and c.model in cost]
    top = max((cost[m] for m in eligible), default=0.0)
    if not 0 < top < float("inf"):
        return {}
    weight = cfg.cost_weight / top
    return {
        m: (
            f"; price x{1.0 + weight * cost[m]:.3f} ([routing] cost_weight {cfg.cost_weight:g} "
            f"x {cost[m]:g}/{top:g} per 1k tokens)"
        )
        for m in eligible
        if cost[m] > 0
    }


# The task kinds the team's flow submits besides those the router scores (runtime/flow.py: a
# plan's work items default to "implement"; reviews ask for fixes; the builder presents).
_FLOW_KINDS = ("implement", "fix", "present", "research")
_EPOCH_TIME = re.compile(r"\buntil t=(\d+(?:\.\d+)?)")


def _roles(cfg: Config) -> list[str]:
    """The roles a task may name: the team's, and any [agents.ROLE] the config adds."""
    from swarmlog.defaults import ROLES

    return sorted({*ROLES, *cfg.agents})


def _task_kinds(events: list[EventBase]) -> list[str]:
    """The task kinds ``route`` can tell apart: those the router scores ("general" for the
    rest), the kinds the team's flow submits, and every kind already in the log."""
    from swarmlog.routing.complexity import (
        DEEP_KINDS,
        KIND_CAPABILITY,
        OUTPUT_TOKENS_PRIOR,
        SHALLOW_KINDS,
    )
    from swarmlog.runtime.replies import REPLY_MODELS

    seen = {e.task_kind for e in events if isinstance(e, TaskSubmitted)}
    return sorted(
        {"general", *SHALLOW_KINDS, *DEEP_KINDS, *KIND_CAPABILITY, *OUTPUT_TOKENS_PRIOR}
        | {*REPLY_MODELS, *_FLOW_KINDS}
        | seen
    )


def _not_one_of(option: str, value: str, what: str, allowed: list[str]) -> str:
    from swarmlog.errors import did_you_mean

    return (
        f"{option} {value!r} is not a known {what}{did_you_mean(value, allowed)}; "
        f"give one of: {', '.join(allowed)}"
    )


def _readable_times(reason: str, now: float) -> str:
    """Write the router's ``until t=<epoch seconds>`` as a UTC time and how far off it is."""

    def when(m: re.Match[str]) -> str:
        t = float(m[1])
        try:
            at = dt.datetime.fromtimestamp(t, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        except (OverflowError, ValueError, OSError):
            return m[0]
        left = t - now
        off = f"in {left:.0f} s" if left >= 0 else f"{-left:.0f} s ago"
        return f"until {at} ({off} by the log's clock)"

    return _EPOCH_TIME.sub(when, reason)


def _config_in_force(
    config: dict[str, Any], events: list[EventBase]
) -> tuple[dict[str, Any], int | None]:
    """``config`` (a ``config_loaded`` dict) and None; with no ``[models]`` in it, the config of
    the log's last ``config_loaded`` with models and that event's seq, where there is one."""
    if config["models"]:
        return config, None
    for e in reversed(events):
        if isinstance(e, ConfigLoaded) and isinstance(e.config.get("models"), dict):
            if e.config["models"]:
                return e.config, e.seq
    return config, None


def _with_config(config: dict[str, Any], events: list[EventBase]) -> list[EventBase]:
    """Return the log's events then a ``config_loaded`` of ``config``, at the log's latest time."""
    last = events[-1].seq if events else 0
    clock = max((e.ts for e in events), default=0.0)
    return [*events, ConfigLoaded(seq=last + 1, ts=clock, config=config)]


def _history(args: argparse.Namespace) -> list[EventBase]:
    """Return the selected log's events when it exists, so observed latencies count."""
    try:
        log = open_log(args)
    except (SwarmlogError, OSError):
        return []  # no log yet (or unreachable): explain from the config alone
    try:
        return list(log.read())
    except (SwarmlogError, OSError) as exc:  # still useful: route from the config, but say so
        problem = f"{exc.path}:{exc.line}: {exc.problem}" if isinstance(exc, LogCorrupt) else exc
        print(
            f"swarmlog: warning: cannot read the log ({problem}); routing statistics come from "
            "the config only; run 'swarmlog verify' to list the damage",
            file=sys.stderr,
        )
        return []
    finally:
        log.close()


def cmd_config_usage(args: argparse.Namespace) -> int:
    actions = "; ".join(f"'{name}': {what}" for name, what in args.config_actions.items())
    raise UsageError(f"config needs an action ({actions}); e.g. swarmlog config check")


def cmd_config_check(args: argparse.Namespace) -> int:
    from swarmlog.config import ConfigInvalid, config_digest, load_config, night_problems

    path = args.file or workspace(args).config
    try:
        cfg = load_config(path)
    except ConfigInvalid as exc:
        if wants_json(args):
            emit_json({"ok": False, "path": str(path), "errors": exc.problems})
        else:  # errors go to stderr (DESIGN §9), one line each; --json keeps its report on stdout
            for problem in exc.problems:
                print(f"swarmlog: error: {problem}", file=sys.stderr)
        return 1
    except ConfigError as exc:
        if wants_json(args):
            emit_json({"ok": False, "path": str(path), "errors": [str(exc)]})
        else:
            print(f"swarmlog: error: {exc}", file=sys.stderr)
        return 1
    problems = night_problems(cfg.to_event_dict(), str(path))
    if problems:
        if wants_json(args):
            emit_json({"ok": False, "path": str(path), "errors": problems})
        for problem in [] if wants_json(args) else problems:
            print(f"swarmlog: error: {problem}", file=sys.stderr)
        return 1
    if wants_json(args):
        emit_json({"ok": True, "path": str(path), "digest": config_digest(cfg)})
    else:
        print(
            f"OK: {path}: {len(cfg.models)} model profile(s), {len(cfg.agents)} agent role(s), "
            f"digest {config_digest(cfg)[:12]}"
        )
    return 0
