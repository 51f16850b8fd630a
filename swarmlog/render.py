"""Render projections to Markdown: the one Jinja environment, its filters, and ``render_all``.

Rendering returns strings; ``write_outputs`` is the only function here that touches files. Every
value that came from an agent or a model passes through a Markdown-safe filter (``cell``,
``inline``, ``block``, ``mermaid``) so it cannot break a table, a list or a section. Times come
from event ``ts`` only, so the same log renders the same bytes.
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
import math
import re
import shlex
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jinja2
import jinja2.meta
import msgspec
from jinja2 import nodes

from swarmlog.errors import TemplateError
from swarmlog.events import AlertRaised
from swarmlog.state import SwarmState, project, role_of
from swarmlog.state.claims import CANCELLED, FAILED
from swarmlog.state.model import AgentState, AlertState, DecisionRecord, TaskState
from swarmlog.state.pmap import PMap
from swarmlog.state.stats import percentile_ms, tokens_per_s
from swarmlog.text import SPACE as _SPACE
from swarmlog.text import clean as _clean
from swarmlog.text import head as _head
from swarmlog.text import plain_line
from swarmlog.workspace import Workspace, remove_file, write_atomic

__all__ = [
    "EMERGENCY_PATH",
    "LEVEL_NAMES",
    "ROLE_ORDER",
    "alert_path",
    "display_name",
    "fmt_duration",
    "fmt_ts",
    "make_environment",
    "md_block",
    "md_cell",
    "md_code",
    "md_inline",
    "md_mermaid",
    "packaged_templates",
    "plain_line",
    "render_alert_event",
    "render_all",
    "render_team_state",
    "shell_word",
    "write_outputs",
]

ROLE_ORDER = ("director", "architect", "scout", "builder", "refactorer", "inspector", "scribe")
PHASE_ORDER = ("planning", "execution", "review", "iteration")
UNSCORED_ROLES = frozenset({"director", "scribe"})  # the seed shows their trust as N/A
EMERGENCY_PATH = "memory/emergency.md"
LEVEL_NAMES = {
    0: "normal",
    1: "agent-level issue",
    2: "coordination issue",
    3: "system issue",
    4: "abort",
}
GANTT_SPANS = 60  # the most recent attempts drawn in the report's chart
UNFINISHED_ROWS = 200  # the most failed or cancelled tasks listed by name in the report

# Filters


# Structure-breaking characters only: pipes end table cells, backticks open code spans, angle
# brackets and ampersands start HTML or entities, a backslash could un-escape the next one, and
# an opening bracket starts a link or an image: a model's ``![x](https://host/?data)`` would be
# fetched by whatever previews the morning's files.
_INLINE_ESCAPES = str.maketrans(
    {"\\": "\\\\", "|": "\\|", "`": "\\`", "<": "&lt;", ">": "&gt;", "&": "&amp;", "[": "\\["}
)


def _escape(value: object, limit: int) -> str:
    return plain_line(value, limit).translate(_INLINE_ESCAPES)


def md_inline(value: object, limit: int = 500) -> str:
    """Return ``value`` as one line of Markdown text: no newlines, pipes, HTML or code spans."""
    text = _CLOSING.sub(r"\1\\\2", _escape(value, limit), count=1)
    # A line starting with these would turn into a heading, quote, list or rule after "- ".
    return _ORDERED.sub(r"\1\\\2", _LEADING.sub(r"\\\g<0>", text, count=1), count=1)


def md_cell(value: object, limit: int = 120) -> str:
    """Return ``value`` safe for a table cell (one line, pipes escaped, at most ``limit``)."""
    return _escape(value, limit) or "-"


_LEADING = re.compile(r"^[#>+\-=*~]")
# In a heading, a last word of only '#' is its closing sequence and is dropped ("fix issue #").
_CLOSING = re.compile(r"(\s)(#+)$")
_ORDERED = re.compile(r"^(\d+)([.)])")


_TICKS = re.compile(r"`+")


def md_block(value: object, limit: int = 20_000) -> str:
    """Return free text fenced so nothing inside it can end the fence or start a section."""
    raw, cut = _head(value, limit, "\r\n")
    # Line ends first: _clean turns a CR into U+FFFD, which ended every line of a CRLF text.
    text = _clean(raw.replace("\r\n", "\n").replace("\r", "\n")).strip("\n")
    if not text.strip():
        return "_(none)_"
    if len(text) > limit or cut:
        text = text[: limit - 1] + "…"
    longest = max((len(m) for m in _TICKS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def md_code(value: object, limit: int = 500) -> str:
    """Return ``value`` as one Markdown code span, shown exactly (not for table cells).

    Inside a code span neither backslash escapes nor entities are read, so what ``md_inline``
    writes for a pipe or an ampersand would be shown as typed, and its escaped backtick ends the
    span early; the span's fence is instead one backtick longer than the longest run inside.
    """
    text = plain_line(value, limit)
    longest = max((len(m) for m in _TICKS.findall(text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def shell_word(value: object) -> str:
    """Return ``value`` as one shell word a person can paste (``A-3`` stays ``A-3``)."""
    return shlex.quote(plain_line(value))


_MERMAID_BAD = re.compile(r"[^A-Za-z0-9 ._/\-]+")
# A gantt line is lexed by the first rule that matches at its start (mermaid's gantt.jison,
# case-insensitive), and these come before a task's text: a task ``title`` or ``excludes`` or
# one named after a date would be read as the chart's title, its excluded days or a date, and
# ``click``/``call``/``href`` start an interaction, so the chart fails to parse.
_MERMAID_KEYWORD = re.compile(
    r"(?:gantt|inclusiveenddates|topaxis|acc(?:title|descr)"
    r"|(?:dateformat|axisformat|tickinterval|includes|excludes|todaymarker|weekday|weekend"
    r"|title|accdescription|section|click|call|href)\s|\d{4}-\d\d-\d\d)",
    re.IGNORECASE,
)


def md_mermaid(value: object, limit: int = 40) -> str:
    """Return text safe as a Mermaid gantt label (no ``:``, ``#``, ``;`` or newlines, and no
    gantt keyword or date at its start: such a label gets ``task`` in front)."""
    text = _SPACE.sub(" ", _MERMAID_BAD.sub(" ", _clean(value))).strip()
    if _MERMAID_KEYWORD.match(text):
        text = "task " + text
    return text[:limit].strip() or "task"


def fmt_ts(ts: float, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """Format an event time (UTC seconds) for people; ``-`` for no time.

    A ``ts`` no calendar date holds (1e308, 1e12, NaN: the log keeps whatever was appended) is
    shown as the number it is, so one odd event cannot stop every view of the log.
    """
    if not ts:
        return "-"
    try:
        return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime(fmt)
    except (OverflowError, ValueError, OSError):
        return repr(ts)


_LONGEST_DURATION_S = 1e10  # about 317 years: beyond it hours and minutes say nothing


def fmt_duration(seconds: float) -> str:
    """Format a duration as ``1h 02m 03s`` (an absurd one, from absurd times, as seconds)."""
    if not math.isfinite(seconds) or abs(seconds) >= _LONGEST_DURATION_S:
        return f"{seconds:g}s"
    s = max(0, round(seconds))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    if h:
        return f"{h}h {m:02d}m {sec:02d}s"
    if m:
        return f"{m}m {sec:02d}s"
    return f"{sec}s"


def _num(value: float, digits: int = 2) -> str:
    text = f"{value:,.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def display_name(agent: str) -> str:
    """Return an agent's display name: ``builder-2`` -> ``Builder-2``."""
    return agent[:1].upper() + agent[1:]


def alert_path(alert: AlertState) -> str:
    """Return where an alert is rendered: ``alerts/ALERT-<UTC time>-<seq>.md``."""
    return f"alerts/ALERT-{fmt_ts(alert.ts, '%Y%m%dT%H%M%SZ')}-{alert.seq}.md"


# Environment


def packaged_templates() -> Path:
    """Return the folder of the packaged templates (inside the wheel, or the repo's templates/)."""
    try:
        res = importlib.resources.files("swarmlog") / "templates"
        if res.is_dir():
            return Path(str(res))
    except (ModuleNotFoundError, NotADirectoryError):  # pragma: no cover - exotic installs
        pass
    return Path(__file__).resolve().parent.parent / "templates"


def make_environment(workspace: Workspace | Path | None) -> jinja2.Environment:
    """Build the one Jinja environment: workspace ``templates/`` first, then packaged ones."""
    loaders: list[jinja2.BaseLoader] = []
    if workspace is not None:
        folder = workspace.templates if isinstance(workspace, Workspace) else Path(workspace)
        if folder.is_dir():
            loaders.append(jinja2.FileSystemLoader(str(folder)))
    loaders.append(jinja2.FileSystemLoader(str(packaged_templates())))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        cell=md_cell,
        inline=md_inline,
        block=md_block,
        mermaid=md_mermaid,
        code=md_code,
        shell=shell_word,
        ts=fmt_ts,
        dur=fmt_duration,
        num=_num,
        name=display_name,
    )
    return env


def _render(env: jinja2.Environment, name: str, **context: Any) -> str:
    try:
        return env.get_template(name).render(**context)
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(
            f"template {name!r} not found; restore it in templates/ or delete the override"
        ) from exc
    except jinja2.TemplateError as exc:
        raise TemplateError(
            f"template {name!r} failed to render ({exc}); fix the template"
        ) from exc


# Views: plain values for the templates


def _role_rank(agent: AgentState) -> tuple[int, str]:
    role = agent.role or agent.agent
    rank = ROLE_ORDER.index(role) if role in ROLE_ORDER else len(ROLE_ORDER)
    return rank, agent.agent


def trust_text(agent: AgentState) -> str:
    """An agent's trust as the views show it: "7/10", or "N/A" for a role left unscored."""
    if (agent.role or agent.agent) in UNSCORED_ROLES:
        return "N/A"
    return f"{_num(agent.trust, 1)}/10"


def _unfinished_note(counts: dict[str, int]) -> str:
    """``3 tasks failed, 5 cancelled`` from the board's counts ("" when every task is fine)."""
    failed, cancelled = counts.get(FAILED, 0), counts.get(CANCELLED, 0)
    parts = []
    if failed:
        parts.append(f"{failed} task{'' if failed == 1 else 's'} failed")
    if cancelled:
        noun = "" if failed else f" task{'' if cancelled == 1 else 's'}"
        parts.append(f"{cancelled}{noun} cancelled")
    return ", ".join(parts)


def _phase_line(state: SwarmState) -> str:
    t = state.team
    note = _unfinished_note(state.board.counts)
    outcome = md_inline(t.outcome or "done") + (f", {note}" if note else "")
    ended = f" (run ended: {outcome})" if t.ended_ts else ""
    if not t.phase:
        return "Not started" + ended
    n = f"{PHASE_ORDER.index(t.phase) + 1} - " if t.phase in PHASE_ORDER else ""
    it = f" (iteration {t.iteration})" if t.iteration else ""
    return f"{n}{md_inline(t.phase.capitalize())}{it}{ended}"


def _header(state: SwarmState) -> dict[str, Any]:
    return {
        "run": state.team.run or "(unnamed run)",
        "seq": state.seq,
        "ts": state.ts,
        "goal": state.team.goal,
    }


def _team_view(state: SwarmState) -> dict[str, Any]:
    t = state.team
    tasks = state.board.tasks
    agents = []
    for a in sorted(t.agents.values(), key=_role_rank):
        task = tasks.get(a.task_id) if a.task_id else None
        current = (task.title or task.task_id) if task else (a.task_id or a.detail or "-")
        agents.append(
            {"name": display_name(a.agent), "status": a.status.capitalize(), "task": current,
             "trust": trust_text(a)}
        )  # fmt: skip
    return {
        **_header(state),
        "phase_line": _phase_line(state),
        "checkpoint": t.last_checkpoint,
        "agents": agents,
        "pending": sorted(t.pending.values(), key=lambda p: p.seq),
        "blockers": [t.blockers[k] for k in sorted(t.blockers)],
        "next_trigger": t.next_trigger,
        "level": state.alerts.level,
        "level_name": LEVEL_NAMES.get(state.alerts.level, "escalated"),
        "emergency": bool(state.alerts.emergency_since),
        "counts": dict(sorted(state.board.counts.items())),
        "unfinished": _unfinished_note(state.board.counts),
    }


def render_team_state(state: SwarmState, env: jinja2.Environment) -> str:
    """Render ``memory/team-state.md`` (cheap: it never walks the task board)."""
    return _render(env, "team-state.md.j2", **_team_view(state))


class Response(NamedTuple):
    """What the team wrote for the human in answer to a level-3 escalation (one task's state)."""

    who: str  # "Director"
    what: str  # "human-readable summary"
    task_id: str
    status: str  # a task state: submitted ... done, failed, cancelled
    agent: str
    attempts: int
    max_attempts: int
    text: str  # the summary once done, the last error once failed or cancelled


# The tasks the scheduler submits for a level-3 escalation ``E`` (swarmlog.runtime.flow,
# ``_emergencies``): the Director's summary for the human first, then Scribe's state dump.
RESPONSE_TASKS = (
    ("brief-", "Director", "human-readable summary"),
    ("dump-", "Scribe", "full state dump"),
)


def _responses(state: SwarmState, escalation_id: str) -> tuple[Response, ...]:
    """The Director's summary and Scribe's dump for an escalation, those submitted so far."""
    if not escalation_id:
        return ()
    out = []
    for prefix, who, what in RESPONSE_TASKS:
        task = state.board.tasks.get(prefix + escalation_id)
        if task is None:
            continue
        status = task.claim.status
        out.append(
            Response(
                who=who, what=what, task_id=task.task_id, status=status, agent=task.claim.agent,
                attempts=task.claim.attempt, max_attempts=task.claim.max_attempts,
                text=task.summary if status == "done" else task.error,
            )
        )  # fmt: skip
    return tuple(out)


_COMMAND_RE = {
    "ack": re.compile(r"\bswarmlog ack\b"),
    "hold": re.compile(r"\bswarmlog (?:pause|resume)\b"),
    "abort": re.compile(r"\bswarmlog abort\b"),
}


def _commands_left(alert: AlertState) -> dict[str, bool]:
    """Which generic commands the alert's own advice does not already give (each once).

    Advice gives the ack only where it names this alert: 'swarmlog ack X' or 'ack all' in it
    left the file without the command that acknowledges this one."""
    ack = re.compile(rf"\bswarmlog ack {re.escape(alert.alert_id)}(?![\w-])")
    rules = {**_COMMAND_RE, "ack": ack}
    return {name: not any(rx.search(a) for a in alert.advice) for name, rx in rules.items()}


def _alert_view(state: SwarmState, alert: AlertState) -> dict[str, Any]:
    esc = state.alerts.open.get(alert.escalation_id) if alert.escalation_id else None
    return {
        **_header(state),
        "alert": alert,
        "level_name": LEVEL_NAMES.get(alert.level, "escalated"),
        "escalation_open": esc is not None,
        "first_evidence": min(alert.evidence, default=alert.seq),
        "responses": _responses(state, alert.escalation_id),
        "commands": _commands_left(alert),
    }


_UNFINISHED_ORDER = {FAILED: 0, CANCELLED: 1}


def _unfinished(board_tasks: PMap[TaskState], counts: dict[str, int]) -> list[TaskState]:
    """Every task that failed for good, then every cancelled one, each in the order it ended.

    Walks the board only when its counts say there is one (a clean night costs nothing)."""
    if not counts.get(FAILED) and not counts.get(CANCELLED):
        return []
    # Unordered: PMap.values() would sort every task id first.
    found = [t for t in board_tasks.unordered_values() if t.claim.status in _UNFINISHED_ORDER]
    found.sort(key=lambda t: (_UNFINISHED_ORDER[t.claim.status], t.seq, t.task_id))
    return found


def _report_view(state: SwarmState) -> dict[str, Any]:
    t = state.team
    phases = []
    for sp in state.phases.spans:
        end = sp.completed_ts or (t.ended_ts or state.ts)
        phases.append({"span": sp, "duration": end - sp.entered_ts, "open": not sp.completed_ts})
    models = []
    for name in sorted(state.models.models):
        m = state.models.models[name]
        models.append(
            {"name": name, "m": m, "p50": percentile_ms(m, 0.5), "p90": percentile_ms(m, 0.9),
             "p99": percentile_ms(m, 0.99), "tps": tokens_per_s(m),
             "mean": m.total_ms / m.calls if m.calls else 0.0}
        )  # fmt: skip
    spans = state.timeline.spans[-GANTT_SPANS:]
    sections: dict[str, list[Any]] = {}
    for span in sorted(spans, key=lambda x: (x.agent, x.start, x.seq)):
        sections.setdefault(span.agent, []).append(span)
    gantt = [
        {"agent": display_name(agent), "spans": sections[agent]}
        for agent in sorted(
            sections, key=lambda a: _role_rank(AgentState(agent=a, role=role_of(a)))
        )
    ]
    end = t.ended_ts or state.ts
    outcome = t.outcome or ("in progress" if t.started_ts else "not started")
    note = _unfinished_note(state.board.counts)
    unfinished = _unfinished(state.board.tasks, state.board.counts)
    return {
        **_header(state),
        "team": t,
        "outcome": f"{outcome} ({note})" if note else outcome,
        "unfinished": unfinished[:UNFINISHED_ROWS],
        "unfinished_left": max(0, len(unfinished) - UNFINISHED_ROWS),
        "duration": (end - t.started_ts) if t.started_ts else 0.0,
        "phases": phases,
        "counts": dict(sorted(state.board.counts.items())),
        "board": state.board,
        "alerts": sorted(state.alerts.alerts.values(), key=lambda a: a.seq),
        "alert_path": alert_path,
        "alerts_state": state.alerts,
        "escalations": sorted(
            [*state.alerts.closed, *state.alerts.open.values()], key=lambda x: x.seq
        ),
        "decisions": [d for d in state.decisions.records if d.run in ("", t.run)],
        "trust": state.trust.changes,
        "models": models,
        "gantt": gantt,
        "gantt_dropped": state.timeline.dropped + max(0, len(state.timeline.spans) - GANTT_SPANS),
        "messages": state.messages,
        "notes": state.notes,
        "level_names": LEVEL_NAMES,
    }


def _by_night(records: Sequence[DecisionRecord]) -> list[tuple[str, list[DecisionRecord]]]:
    """The decision log's records grouped by the run they were made in, nights in log order."""
    nights: dict[str, list[DecisionRecord]] = {}
    for d in records:
        nights.setdefault(d.run, []).append(d)
    return list(nights.items())


def render_all(state: SwarmState, env: jinja2.Environment) -> dict[str, str]:
    """Render every output file: relative path -> content."""
    files = {
        "memory/team-state.md": render_team_state(state, env),
        "memory/decisions.md": _render(
            env,
            "decisions.md.j2",
            **_header(state),
            decisions=state.decisions.records,  # what a workspace's own template may still use
            nights=_by_night(state.decisions.records),
        ),
        "memory/report.md": _render(env, "report.md.j2", **_report_view(state)),
    }
    render_alert = _alert_renderer(env)
    for alert in state.alerts.alerts.values():
        files[alert_path(alert)] = render_alert(state, alert)
    if state.alerts.emergency_since:
        open_esc = sorted(state.alerts.open.values(), key=lambda x: x.seq)
        unacked = sorted(
            (a for a in state.alerts.alerts.values() if a.level >= 3 and not a.acked),
            key=lambda a: a.seq,
        )
        files[EMERGENCY_PATH] = _render(
            env,
            "emergency.md.j2",
            **_header(state),
            since=state.alerts.emergency_since,
            level=state.alerts.level,
            level_name=LEVEL_NAMES.get(state.alerts.level, "escalated"),
            escalations=open_esc,
            unacked=unacked,
            alert_path=alert_path,
            responses=[
                (eid, resp)
                for eid in sorted(
                    {x.escalation_id for x in open_esc} | {a.escalation_id for a in unacked},
                    key=_escalation_order(state),
                )
                if (resp := _responses(state, eid))
            ],
        )
    return dict(sorted(files.items()))


def _escalation_order(state: SwarmState) -> Callable[[str], tuple[int, str]]:
    """Sort escalation ids by the seq that raised them (ids alone sort E10 before E2)."""
    seqs = {x.escalation_id: x.seq for x in (*state.alerts.closed, *state.alerts.open.values())}
    return lambda eid: (seqs.get(eid, 0), eid)


# An alert's file changes only when the alert does (acknowledged, delivered, its escalation
# resolved, the Director's summary or Scribe's dump for it written or failed): the renderer
# renders every file after every batch of events, and a long night's alerts would otherwise be
# rendered again each time. Cached per environment, keyed by exactly the values the alert
# template reads.
class _AlertCache:
    """Rendered alert files of one template, by the values it reads."""

    def __init__(self, template: jinja2.Template, keys: tuple[str, ...] | None) -> None:
        self.template = template
        self.keys = keys  # None: what it reads cannot be told, render every time
        self.texts: dict[tuple[Any, ...], str] = {}


_ALERT_CACHES: weakref.WeakKeyDictionary[jinja2.Environment, _AlertCache] = (
    weakref.WeakKeyDictionary()
)
_ALERT_CACHE_MAX = 4096
_HEADER_KEYS = ("run", "seq", "ts", "goal")


def _header_keys(env: jinja2.Environment) -> tuple[str, ...] | None:
    """The run-wide values ``alert.md.j2`` reads; None where that cannot be told (it extends,
    includes or imports other templates)."""
    if env.loader is None:
        return None
    try:
        source, _, _ = env.loader.get_source(env, "alert.md.j2")
        ast = env.parse(source)
    except jinja2.TemplateError:
        return None
    if any(ast.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport))):
        return None
    used = jinja2.meta.find_undeclared_variables(ast)
    return tuple(k for k in _HEADER_KEYS if k in used)


def _alert_renderer(env: jinja2.Environment) -> Callable[[SwarmState, AlertState], str]:
    """Render alert files, each only when what its template reads changed."""

    def uncached(state: SwarmState, alert: AlertState) -> str:
        return _render(env, "alert.md.j2", **_alert_view(state, alert))

    try:
        template = env.get_template("alert.md.j2")  # a new object once the file is edited
    except jinja2.TemplateError:
        return uncached
    cache = _ALERT_CACHES.get(env)
    if cache is None or cache.template is not template:
        cache = _ALERT_CACHES[env] = _AlertCache(template, _header_keys(env))
    keys = cache.keys
    if keys is None:
        return uncached

    def render(state: SwarmState, alert: AlertState) -> str:
        header = _header(state)
        esc_open = bool(alert.escalation_id) and alert.escalation_id in state.alerts.open
        key = (alert, esc_open, _responses(state, alert.escalation_id), *(header[k] for k in keys))
        text = cache.texts.get(key)
        if text is None:
            if len(cache.texts) >= _ALERT_CACHE_MAX:
                cache.texts.clear()
            text = cache.texts[key] = uncached(state, alert)
        return text

    return render


def render_alert_event(event: AlertRaised, env: jinja2.Environment) -> tuple[str, str]:
    """Render one alert from its event alone (for delivery before the renderer catches up).

    Returns (relative path, content); the renderer later rewrites the file with what it knows
    then (acknowledgement, deliveries, whether the escalation is still open).
    """
    state = project([event])
    state = msgspec.structs.replace(state, team=msgspec.structs.replace(state.team, run=event.run))
    alert = state.alerts.alerts[event.alert_id]
    return alert_path(alert), _render(env, "alert.md.j2", **_alert_view(state, alert))


def write_outputs(workspace: Workspace | Path, files: dict[str, str]) -> list[str]:
    """Write rendered files under the workspace, only those whose bytes changed.

    Removes ``memory/emergency.md`` and ``alerts/ALERT-*.md`` files that are not in ``files``
    (they are derived: a resolved emergency's file goes away). Returns the changed paths.
    """
    root = workspace.root if isinstance(workspace, Workspace) else Path(workspace)
    changed = []
    for rel, content in files.items():
        if write_atomic(root / rel, content.encode("utf-8")):
            changed.append(rel)
    stale = [root / EMERGENCY_PATH, *sorted((root / "alerts").glob("ALERT-*.md"))]
    for path in stale:
        rel = path.relative_to(root).as_posix()
        if rel not in files and remove_file(path):
            changed.append(rel)
    return changed
