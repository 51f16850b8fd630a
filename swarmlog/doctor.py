"""The pre-flight checklist (seed guide §8) as one function: ``run_checks`` → pass / warn / fail.

Each check says what it found and, when it is not a pass, how to fix it. Secrets are never part
of a check: the Director's API key is reported as present or absent, nothing more.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Literal

import msgspec

from swarmlog.config import Config, ModelProfile, load_config, night_problems
from swarmlog.defaults import MIN_DISK_GB
from swarmlog.errors import ConfigError, ProviderError, SwarmlogError
from swarmlog.escalation.settings import alert_settings, escalation_settings, redact_url
from swarmlog.events import HardwareSampled, ModelServerSampled
from swarmlog.hardware import Probe, place
from swarmlog.initconfig import ProbeClients, why_unreachable
from swarmlog.log import EventLog, FileLog
from swarmlog.providers.anthropic import anthropic_api_key
from swarmlog.routing.profile import parse_duration, router_config
from swarmlog.servers import probe_server
from swarmlog.workspace import Workspace

__all__ = [
    "CLOCK_FLOOR",
    "MIN_DISK_GB",
    "MIN_KEEP_ALIVE_S",
    "Check",
    "Status",
    "check_clock",
    "check_disk",
    "check_inotify",
    "check_log",
    "check_workspace",
    "run_checks",
]

Status = Literal["pass", "warn", "fail", "skip"]

MIN_KEEP_ALIVE_S = 3600.0  # seed §1, §9: keep the model loaded for 60 minutes
CLOCK_FLOOR = dt.datetime(2020, 1, 1, tzinfo=dt.UTC).timestamp()
_CLOCK_SLACK_S = 1.0
# Processes besides the agents that watch the log: scheduler, monitor, renderer, and a
# 'swarmlog watch' or 'log --follow' in another terminal.
_EXTRA_WATCHERS = 4
_WATCHES_PER_PROCESS = 8


class Check(msgspec.Struct, frozen=True, kw_only=True):
    """One line of the checklist."""

    check: str
    status: Status
    detail: str
    fix: str = ""


def _pass(check: str, detail: str) -> Check:
    return Check(check=check, status="pass", detail=detail)


# Local checks


def check_workspace(ws: Workspace) -> Check:
    """Check that the workspace folders exist and a file can be written in each."""
    name = "workspace writable"
    for folder in (ws.root, ws.memory, ws.events, ws.alerts):
        if not folder.is_dir():
            return Check(
                check=name,
                status="fail",
                detail=f"{folder} does not exist",
                fix=f"run 'swarmlog init --dir {ws.root}'",
            )
        probe = folder / f".doctor-{os.getpid()}"
        try:
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            return Check(
                check=name,
                status="fail",
                detail=f"cannot write in {folder}: {exc.strerror}",
                fix=f"make {folder} writable by this user",
            )
    return _pass(name, f"{ws.root}: memory/, memory/events/ and alerts/ are writable")


def check_disk(ws: Workspace, min_gb: float = MIN_DISK_GB) -> Check:
    """Check the free disk space where the workspace lives."""
    name = "disk free"
    where = ws.root
    while not where.exists() and where != where.parent:
        where = where.parent
    free_gb = shutil.disk_usage(where).free / 1e9
    detail = f"{free_gb:.1f} GB free at {where} (need > {min_gb:g} GB)"
    if free_gb > min_gb:
        return _pass(name, detail)
    return Check(
        check=name,
        status="fail",
        detail=detail,
        fix="free disk space (old runs, model files) or move the workspace (--dir)",
    )


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _inotify_in_use(proc: Path) -> int:
    """Count inotify instances held by processes this user can see (best effort)."""
    used = 0
    try:
        pids = [p for p in proc.iterdir() if p.name.isdigit()]
    except OSError:
        return 0
    for pid in pids:
        try:
            fds = list((pid / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) == "anon_inode:inotify":
                    used += 1
            except OSError:
                continue
    return used


def check_inotify(processes: int, proc: Path = Path("/proc")) -> Check:
    """Check the inotify limits against the processes a run starts (each watches the log)."""
    name = "inotify limits"
    base = proc / "sys" / "fs" / "inotify"
    instances = _read_int(base / "max_user_instances")
    watches = _read_int(base / "max_user_watches")
    if instances is None or watches is None:
        return Check(
            check=name, status="skip", detail=f"{base} is absent: no inotify here to check"
        )
    need = processes + _EXTRA_WATCHERS
    free = instances - _inotify_in_use(proc)
    need_watches = need * _WATCHES_PER_PROCESS
    detail = (
        f"{free} of {instances} inotify instances free, {watches} watches; a run needs about "
        f"{need} instances and {need_watches} watches"
    )
    fix = (
        f"raise the limits, e.g. 'sudo sysctl fs.inotify.max_user_instances={max(512, need * 2)} "
        f"fs.inotify.max_user_watches={max(524288, need_watches)}'"
    )
    if free < need or watches < need_watches:
        return Check(check=name, status="fail", detail=detail, fix=fix)
    if free < need * 2:
        return Check(check=name, status="warn", detail=detail, fix=fix)
    return _pass(name, detail)


def _last_ts(log: EventLog) -> float:
    last = log.last_seq()
    if not last:
        return 0.0
    for event in log.read(after=last - 1):
        return event.ts
    return 0.0


def check_clock(now: float, last_event_ts: float) -> Check:
    """Check that the clock is after 2020 and not behind the log's last event."""
    name = "clock sane"
    when = dt.datetime.fromtimestamp(now, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if now < CLOCK_FLOOR:
        return Check(
            check=name,
            status="fail",
            detail=f"the clock says {when}, before 2020",
            fix="set the system clock (enable NTP: 'timedatectl set-ntp true')",
        )
    if last_event_ts and now + _CLOCK_SLACK_S < last_event_ts:
        return Check(
            check=name,
            status="fail",
            detail=f"the clock says {when}, {last_event_ts - now:.0f}s before the log's last event",
            fix="the clock went backwards: fix it (NTP) before appending, or event times go back",
        )
    return _pass(name, f"{when}, after the log's last event")


def check_log(ws: Workspace, open_log: Callable[[], EventLog] | None = None) -> tuple[Check, float]:
    """Verify every record of the log; return the check and the last event's time.

    ``open_log`` opens the selected log (a ``nats://`` stream); without it, the workspace's file
    log is checked.
    """
    name = "log verify"
    if open_log is None:
        if not ws.events.is_dir():
            return (
                Check(check=name, status="warn", detail="no log yet", fix="run 'swarmlog init'"),
                0.0,
            )
        open_log = partial(FileLog, ws.events, create=False)
    try:
        log = open_log()
    except SwarmlogError as exc:
        fix = "start the log's server, or fix --log / $SWARMLOG_LOG / [log]"
        return Check(check=name, status="fail", detail=str(exc), fix=fix), 0.0
    try:
        report = log.verify()
        last_ts = _last_ts(log) if report.ok else 0.0
    except SwarmlogError as exc:
        return Check(check=name, status="fail", detail=str(exc), fix="run 'swarmlog verify'"), 0.0
    finally:
        log.close()
    detail = f"{report.records} records in {report.segments} segment(s), last seq {report.last_seq}"
    if report.problems:
        first = report.problems[0]
        return (
            Check(
                check=name,
                status="fail",
                detail=f"{len(report.problems)} damaged record(s), first {first}",
                fix="run 'swarmlog verify' for the list; restore damaged segments from a copy",
            ),
            0.0,
        )
    if report.torn_tail_bytes:
        return (
            Check(
                check=name,
                status="warn",
                detail=f"{detail}; torn tail of {report.torn_tail_bytes} bytes",
                fix="run 'swarmlog repair' (the next append would cut it too)",
            ),
            last_ts,
        )
    return _pass(name, detail), last_ts


# Model servers and models


def _servers(cfg: Config) -> list[tuple[str, str]]:
    return sorted({(p.endpoint, p.api or "") for p in cfg.models.values()})


async def _probe_all(
    servers: Sequence[tuple[str, str]], timeout_s: float
) -> dict[str, ModelServerSampled]:
    """Probe each server through the client the night's calls would use for it (direct or by
    proxy, TLS trust from SSL_CERT_FILE / SSL_CERT_DIR); ``ConfigError`` when those cannot be
    read."""
    async with ProbeClients(timeout_s) as clients:
        samples = await asyncio.gather(*(probe_server(clients(e), e, a) for e, a in servers))
    return {s.endpoint: s for s in samples}


def _tls_check(error: ConfigError) -> Check:
    detail, _, fix = str(error).partition("; ")
    return Check(
        check="TLS trust",
        status="fail",
        detail=f"{detail}: every model call of the night would fail on it",
        fix=fix,
    )


def _server_checks(
    cfg: Config, samples: dict[str, ModelServerSampled], timeout_s: float, not_probed: str
) -> list[Check]:
    out = []
    for endpoint, api in _servers(cfg):
        name = f"server {redact_url(endpoint)}"
        if api == "anthropic":
            continue  # the API key check covers it; doctor never calls a paid API
        if api == "sim":
            out.append(
                Check(
                    check=name,
                    status="skip",
                    detail="simulated: 'swarmlog run --sim' starts it",
                )
            )
            continue
        s = samples.get(endpoint)
        if s is None:
            out.append(Check(check=name, status="fail", detail=not_probed))
            continue
        if not s.reachable:
            why = why_unreachable(s.error, timeout_s)
            start = (
                "start Ollama: 'OLLAMA_NUM_PARALLEL=2 OLLAMA_KEEP_ALIVE=60m ollama serve'"
                if api == "ollama"
                else "start the server (e.g. 'vllm serve MODEL') or fix the endpoint"
            )
            out.append(Check(check=name, status="fail", detail=f"unreachable: {why}", fix=start))
            continue
        ver = f" {s.version}" if s.version else ""
        out.append(
            _pass(
                name, f"{api}{ver} answers; {len(s.available)} model(s), {len(s.resident)} loaded"
            )
        )
    return out


def _model_check(
    name: str, p: ModelProfile, sample: ModelServerSampled | None, fit: str, fits: bool | None
) -> Check:
    check = f"model {name}"
    if p.api in ("anthropic", "sim"):
        return Check(check=check, status="skip", detail=f"{p.model} on api {p.api!r}")
    if sample is None or not sample.reachable:
        return Check(
            check=check, status="warn", detail=f"{p.model}: not checked, its server is unreachable"
        )
    if p.model not in sample.available:
        pull = f"'ollama pull {p.model}'" if p.api == "ollama" else "serve it on that server"
        return Check(
            check=check,
            status="fail",
            detail=f"{p.model} is not on {redact_url(p.endpoint)}",
            fix=f"{pull}, or fix [models.{name}].model",
        )
    resident = {r.name: r for r in sample.resident}
    r = resident.get(p.model)
    if r is not None:
        if r.size and r.size_vram < r.size:
            share = 100 * r.size_vram / r.size
            return Check(
                check=check,
                status="warn",
                detail=f"{p.model} is loaded but only {share:.0f}% of it is in VRAM (slow)",
                fix="free VRAM (fewer models or slots, smaller context) and reload it",
            )
        return _pass(check, f"{p.model} is present and loaded")
    if fits is False:
        return Check(
            check=check,
            status="fail",
            detail=f"{p.model} is present, not loaded, and does not fit: {fit}",
            fix=f"lower [models.{name}].parallel or context_length, or use a smaller model",
        )
    if fits is None:
        return Check(
            check=check,
            status="warn",
            detail=f"{p.model} is present but not loaded; {fit}",
            fix=f"load it before the night: 'ollama run {p.model} \"\"'",
        )
    return _pass(check, f"{p.model} is present, not loaded; loadable: {fit}")


def _model_checks(
    cfg: Config, samples: dict[str, ModelServerSampled], hardware: HardwareSampled
) -> list[Check]:
    profiles = router_config(cfg.to_event_dict()).profiles
    placements = {pl.model: pl for pl in place(profiles, hardware.gpus)}
    out = []
    for name, p in sorted(cfg.models.items()):
        pl = placements.get(name)
        fits: bool | None
        if not hardware.gpus:
            fits, fit = None, "no GPU detected: it would run on the CPU"
        elif pl is None or pl.need_gb is None:
            fits, fit = None, "size unknown (set vram_gb to check the fit)"
        else:
            fits, fit = pl.fits, pl.reason
        out.append(_model_check(name, p, samples.get(p.endpoint), fit, fits))
    return out


def _keep_alive_check(cfg: Config) -> Check:
    name = "keep-alive"
    short = []
    for pname, p in sorted(cfg.models.items()):
        if p.api != "ollama":
            continue
        if parse_duration(p.keep_alive) < MIN_KEEP_ALIVE_S:
            short.append(f"{pname} ({p.keep_alive})")
    if not short:
        return _pass(name, "every Ollama profile stays loaded >= 60m (or has no keep-alive)")
    return Check(
        check=name,
        status="warn",
        detail=f"shorter than the seed's 60m, so idle models unload overnight: {', '.join(short)}",
        fix='set keep_alive = "60m" in those [models.*] tables (and OLLAMA_KEEP_ALIVE=60m)',
    )


def _slots_check(cfg: Config, env_parallel: str | None) -> Check:
    name = "parallel slots"
    problems: list[str] = []
    notes: list[str] = []
    by_server: dict[str, set[int]] = {}
    for p in cfg.models.values():
        if p.api == "ollama":
            by_server.setdefault(p.endpoint, set()).add(p.parallel or 1)
    for endpoint, values in sorted(by_server.items()):
        where = redact_url(endpoint)
        if len(values) > 1:
            problems.append(
                f"profiles on {where} ask for different slots {sorted(values)}, but "
                f"OLLAMA_NUM_PARALLEL is one number per server"
            )
        n = max(values)
        notes.append(f"Ollama exposes no slot count: start {where} with OLLAMA_NUM_PARALLEL={n}")
        if env_parallel is not None and env_parallel.strip() != str(n):
            problems.append(
                f"this shell has OLLAMA_NUM_PARALLEL={env_parallel.strip()} but the config "
                f"says parallel = {n}"
            )
    workers = [p for p in cfg.models.values() if p.api != "anthropic"]
    total = sum(p.parallel or 1 for p in workers)
    if workers and cfg.limits.max_concurrent > total:
        problems.append(
            f"[limits] max_concurrent = {cfg.limits.max_concurrent} exceeds the {total} slot(s) "
            f"of the local models: calls will queue"
        )
    detail = "; ".join(problems + notes) or "no Ollama profiles"
    if problems:
        return Check(
            check=name,
            status="warn",
            detail=detail,
            fix="make parallel, OLLAMA_NUM_PARALLEL and [limits] max_concurrent agree",
        )
    return _pass(name, detail)


def _key_check(cfg: Config) -> Check:
    name = "director API key"
    users = sorted(n for n, p in cfg.models.items() if p.api == "anthropic")
    if not users:
        return Check(check=name, status="skip", detail='no model uses api = "anthropic"')
    try:
        anthropic_api_key()
    except ProviderError:
        return Check(
            check=name,
            status="fail",
            detail=f"ANTHROPIC_API_KEY is not set; {', '.join(users)} need(s) it",
            fix="export ANTHROPIC_API_KEY=... in the shell that starts 'swarmlog run'",
        )
    return _pass(name, f"ANTHROPIC_API_KEY is set (value not shown) for {', '.join(users)}")


def _processes(cfg: Config) -> int:
    return sum(max(1, a.count) for a in cfg.agents.values())


def run_checks(
    ws: Workspace,
    *,
    min_disk_gb: float = MIN_DISK_GB,
    timeout_s: float = 2.0,
    probe: Probe | None = None,
    proc: Path = Path("/proc"),
    clock: Callable[[], float] = time.time,
    open_log: Callable[[], EventLog] | None = None,
) -> list[Check]:
    """Run the whole pre-flight checklist; every check is returned, failing or not.

    ``open_log`` opens the selected log when it is not the workspace's file log.
    """
    checks: list[Check] = []
    cfg: Config | None = None
    try:
        cfg = load_config(ws.config)
        escalation_settings(cfg.escalation)
        alert_settings(cfg.alerts)
        problems = night_problems(cfg.to_event_dict(), ws.config.name)
        if problems:
            raise ConfigError("; ".join(problems))
        checks.append(
            _pass(
                "config",
                f"{ws.config.name}: {len(cfg.models)} model profile(s), {len(cfg.agents)} role(s)",
            )
        )
    except SwarmlogError as exc:
        checks.append(
            Check(check="config", status="fail", detail=str(exc), fix="run 'swarmlog config check'")
        )
    if cfg is not None:
        servers = [(e, a) for e, a in _servers(cfg) if a in ("ollama", "openai")]
        samples: dict[str, ModelServerSampled] = {}
        not_probed = "not probed"
        try:
            samples = asyncio.run(_probe_all(servers, timeout_s)) if servers else {}
        except ConfigError as exc:  # SSL_CERT_FILE / SSL_CERT_DIR cannot be read
            checks.append(_tls_check(exc))
            not_probed = "not probed: the TLS trust check failed"
        hardware = (probe or Probe(disk_path=str(ws.root))).sample()
        checks += _server_checks(cfg, samples, timeout_s, not_probed)
        checks += _model_checks(cfg, samples, hardware)
        checks.append(_keep_alive_check(cfg))
        checks.append(_slots_check(cfg, os.environ.get("OLLAMA_NUM_PARALLEL")))
        checks.append(_key_check(cfg))
    checks.append(check_workspace(ws))
    checks.append(check_disk(ws, min_disk_gb))
    processes = _processes(cfg) if cfg is not None else 7
    checks.append(check_inotify(processes, proc))
    log_check, last_ts = check_log(ws, open_log)
    checks.append(check_clock(clock(), last_ts))
    checks.append(log_check)
    return checks
