"""The team on NATS JetStream: log selection, the doorbell on a stream, and a whole night.

The night runs the supervisor in one workspace and every scheduler, agent and monitor process in a
different, empty workspace of its own, so they share nothing but the stream; the stream is then
archived into files and checked and rendered offline. Tests that need a server skip, with the
install hint, where ``nats-server`` is missing.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from nats_fixtures import NatsServer

from swarmlog.cli import build_parser
from swarmlog.cli.common import log_target, open_log
from swarmlog.errors import ConfigError
from swarmlog.events import AgentRegistered, Event, Note, RunEnded, TaskCompleted, TaskSubmitted
from swarmlog.log import FileLog, MemoryLog
from swarmlog.log.nats import NatsLog
from swarmlog.log.select import LOG_ENV, choose_log, log_from_config, log_from_env, resolve_log
from swarmlog.runtime.doorbell import Doorbell, wakeups
from swarmlog.workspace import Workspace

NIGHT_TIMEOUT = 150
URL = "nats://10.0.0.5:4222,10.0.0.6:4222/NIGHT"


# Selection


def test_choose_log_precedence_is_option_then_env_then_config_then_file() -> None:
    config = {"backend": "nats", "url": URL}
    kw: dict[str, Any] = {"config": config, "default": "ws/memory/events"}
    assert choose_log(explicit="nats://a:1/X", env="nats://b:1/Y", **kw) == "nats://a:1/X"
    assert choose_log(explicit=None, env="nats://b:1/Y", **kw) == "nats://b:1/Y"
    assert choose_log(explicit=None, env=None, **kw) == URL
    assert choose_log(explicit=None, env=None, config={}, default="ws/e") == "ws/e"
    assert choose_log(explicit="", env="", config={"backend": "file"}, default="ws/e") == "ws/e"


def test_log_section_forms_and_mistakes() -> None:
    assert log_from_config({}) is None
    assert log_from_config({"url": URL}) == URL  # a url alone means nats
    assert log_from_config({"backend": "nats", "url": URL, "replicas": 3}) == URL + "?replicas=3"
    assert log_from_config({"url": URL + "?replicas=1", "replicas": 3}) == URL + "?replicas=1"
    with pytest.raises(ConfigError, match=r"log.backend = 'kafka'"):
        log_from_config({"backend": "kafka"})
    with pytest.raises(ConfigError, match=r"log.url = None"):
        log_from_config({"backend": "nats"})
    with pytest.raises(ConfigError, match=r"log.replicas = 9"):
        log_from_config({"url": URL, "replicas": 9})
    assert log_from_env({LOG_ENV: " nats://h:1/S "}) == "nats://h:1/S"
    assert log_from_env({LOG_ENV: ""}) is None


def test_workspace_selection_reads_option_env_and_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = Workspace(tmp_path)
    assert resolve_log(ws) == str(ws.events)
    ws.config.write_text('[log]\nbackend = "nats"\nurl = "nats://127.0.0.1:9/TOML"\nreplicas = 1\n')
    assert resolve_log(ws) == "nats://127.0.0.1:9/TOML?replicas=1"
    monkeypatch.setenv(LOG_ENV, "nats://127.0.0.1:9/ENV")
    assert resolve_log(ws) == "nats://127.0.0.1:9/ENV"
    args = build_parser().parse_args(["--dir", str(tmp_path), "--log", "nats://h:9/OPT", "log"])
    assert log_target(args) == "nats://h:9/OPT"
    args = build_parser().parse_args(["--dir", str(tmp_path), "log", "--log", str(tmp_path / "e")])
    assert log_target(args) == str(tmp_path / "e")
    monkeypatch.delenv(LOG_ENV)
    ws.config.write_text("this is [not toml\n")  # unreadable: the file log, error left to others
    assert resolve_log(ws) == str(ws.events)


def test_cli_commands_use_the_selected_stream(nats_server: NatsServer, tmp_path: Path) -> None:
    url = f"{nats_server.url}/cli{uuid.uuid4().hex[:8]}"
    with NatsLog.from_url(url) as log:
        log.append([Note(text="made by the supervisor")])
    env = {**os.environ, LOG_ENV: url}
    done = subprocess.run(
        [sys.executable, "-m", "swarmlog", "--dir", str(tmp_path), "note", "from the CLI"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    args = build_parser().parse_args(["--dir", str(tmp_path), "--log", url, "log"])
    opened = open_log(args)
    try:
        assert [e.text for e in opened.read() if isinstance(e, Note)] == [
            "made by the supervisor",
            "from the CLI",
        ]
    finally:
        opened.close()
    assert not (tmp_path / "memory").exists()  # nothing went to a file log


# The doorbell


@pytest.mark.anyio
async def test_doorbell_rings_when_another_process_appends_to_the_stream(
    nats_server: NatsServer,
) -> None:
    stream = f"bell{uuid.uuid4().hex[:8]}"
    with NatsLog(nats_server.url, stream) as mine, NatsLog(nats_server.url, stream) as theirs:
        theirs.append([Note(text="before the bell existed")])
        async with Doorbell(mine) as bell:
            assert not await bell.wait(0.05)  # old messages do not ring
            start = time.monotonic()
            await asyncio.to_thread(theirs.append, [Note(text="ding")])
            assert await bell.wait(5.0)
            assert time.monotonic() - start < 1.0
            assert not await bell.wait(0.05)


@pytest.mark.anyio
async def test_doorbell_on_a_file_log_and_on_a_memory_log(tmp_path: Path) -> None:
    log = FileLog(tmp_path / "events")
    async with Doorbell(log) as bell:
        assert bell.folder == log.directory
        await asyncio.sleep(0.05)  # let the watcher start
        log.append([Note(text="x")])
        assert await bell.wait(5.0)
    log.close()
    async with Doorbell(MemoryLog()) as quiet:  # no way to notify: waits time out
        assert not await quiet.wait(0.01)


def test_wakeups_follow_the_stream_until_stopped(nats_server: NatsServer) -> None:
    stream = f"wake{uuid.uuid4().hex[:8]}"
    stop = threading.Event()
    with NatsLog(nats_server.url, stream) as log:
        seen: list[bool] = []

        def follow() -> None:
            for rang in wakeups(log, stop=stop, poll_s=0.1):
                seen.append(rang)
                if rang:
                    stop.set()

        thread = threading.Thread(target=follow)
        thread.start()
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:  # the subscription is in place
            time.sleep(0.02)
        log.append([Note(text="wake up")])
        thread.join(10)
        assert not thread.is_alive()
        assert seen[-1] is True and seen[:-1] == [False] * (len(seen) - 1)


# A whole night with nothing shared but the stream


def _swarmlog(ws: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "swarmlog", "--dir", str(ws), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _of(events: list[Event], kind: type) -> list[object]:
    return [e for e in events if isinstance(e, kind)]


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.slow
@pytest.mark.timeout(NIGHT_TIMEOUT)
def test_demo_night_on_jetstream_with_no_shared_folder_then_offline_archive(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    url = f"{nats_server.url}/NIGHT{uuid.uuid4().hex[:8]}"
    home, kids = tmp_path / "supervisor", tmp_path / "children"
    night = _swarmlog(
        home, "run", "--sim", "demo", "--log", url, "--child-dirs", str(kids), timeout=120
    )
    assert night.returncode == 0, night.stdout[-2000:] + night.stderr[-2000:]
    assert "run completed" in night.stdout

    with NatsLog.from_url(url, create=False) as log:
        events = list(log.read())
    assert [e.outcome for e in _of(events, RunEnded)] == ["completed"]  # type: ignore[attr-defined]
    submitted = sorted(e.task_id for e in _of(events, TaskSubmitted))  # type: ignore[attr-defined]
    completed = sorted(e.task_id for e in _of(events, TaskCompleted))  # type: ignore[attr-defined]
    assert completed == submitted  # every task, exactly once
    pids = {e.agent: e.pid for e in _of(events, AgentRegistered)}  # type: ignore[attr-defined]
    assert len(pids) == 7 and len(set(pids.values())) == 7

    # Nothing but the stream was shared: no file log anywhere, the children's folders hold only
    # what each one made for itself (the builder's work folder).
    assert not any((home / "memory" / "events").iterdir())
    assert not list(kids.rglob("events"))
    assert sorted(p.name for p in kids.iterdir()) == ["builder"]
    assert _tree(kids / "builder") and all(f.startswith("work/") for f in _tree(kids / "builder"))

    # 'swarmlog archive' copies the stream into a workspace's files (sealed) and renders there;
    # offline, on that copy, the decisions re-derive and 'render' reproduces what the supervisor's
    # workspace got from the stream, byte for byte.
    copy = tmp_path / "copy"
    archived = _swarmlog(copy, "--log", url, "archive")
    assert archived.returncode == 0, archived.stdout + archived.stderr
    assert f"copied {len(events)} new event(s)" in archived.stdout
    for md in (copy / "memory").glob("*.md"):
        md.unlink()
    verified = _swarmlog(copy, "replay", "--verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"folded {len(events)} events" in verified.stdout
    rendered = _swarmlog(copy, "render")
    assert rendered.returncode == 0, rendered.stderr
    live = {p.name: p.read_bytes() for p in (home / "memory").glob("*.md")}
    assert {"team-state.md", "report.md", "decisions.md"} <= set(live)
    assert {p.name: p.read_bytes() for p in (copy / "memory").glob("*.md")} == live
