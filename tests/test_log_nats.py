"""The JetStream backend against real ``nats-server -js`` processes on loopback.

Skipped, with the install hint, where ``nats-server`` is missing.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from nats_fixtures import NatsServer, free_port, require_nats_server, start_cluster

from swarmlog.errors import LogCorrupt, LogError, SeqConflict, UsageError
from swarmlog.events import Note, TaskSubmitted
from swarmlog.log import FileLog
from swarmlog.log.framing import frame
from swarmlog.log.nats import NatsLog, archive_to_files, parse_nats_url
from swarmlog.log.select import open_log

Factory = Callable[..., NatsLog]
ROOT = Path(__file__).resolve().parents[1]
TS = 1_795_000_000.0


def _notes(n: int, prefix: str = "n", **kw: object) -> list[Note]:
    return [Note(text=f"{prefix}{i}", **kw) for i in range(n)]  # type: ignore[arg-type]


def _run_py(code: str, *args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_all(procs: list[subprocess.Popen[str]], timeout: float = 40) -> list[str]:
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        assert p.returncode == 0, err
        outs.append(out)
    return outs


# Addresses


def test_parse_nats_url_reads_servers_stream_and_replicas() -> None:
    t = parse_nats_url("nats://a:4222,b:4223/RUN_1?replicas=3")
    assert t.servers == ("nats://a:4222", "nats://b:4223")
    assert t.stream == "RUN_1"
    assert t.replicas == 3
    assert t.display == "nats://a:4222,b:4223/RUN_1"


def test_parse_nats_url_hides_credentials_in_display_and_errors() -> None:
    t = parse_nats_url("nats://alice:s3cret@h:4222/S")
    assert "s3cret" not in t.display and "alice" not in t.display
    with pytest.raises(UsageError) as exc:
        parse_nats_url("nats://alice:s3cret@h:4222/bad.name")
    assert "s3cret" not in str(exc.value)


@pytest.mark.parametrize("url", ["http://h:1/S", "nats://h:1", "nats://h:1/S?replicas=9"])
def test_parse_nats_url_rejects_bad_addresses(url: str) -> None:
    with pytest.raises(UsageError):
        parse_nats_url(url)


def test_open_log_picks_the_file_backend_for_a_path(tmp_path: Path) -> None:
    log = open_log(tmp_path / "events")
    try:
        assert isinstance(log, FileLog)
        assert log.append([Note(text="x")])[0].seq == 1
    finally:
        log.close()


def test_open_log_picks_nats_for_a_url(nats_server: NatsServer) -> None:
    log = open_log(f"{nats_server.url}/sel_{os.getpid()}", timeout_s=5)
    try:
        assert isinstance(log, NatsLog)
        assert log.append([Note(text="x")])[0].seq == 1
    finally:
        log.close()


def test_unreachable_server_is_a_clear_log_error() -> None:
    require_nats_server()
    port = free_port()
    t0 = time.monotonic()
    with pytest.raises(LogError, match=f"cannot connect to NATS at nats://127.0.0.1:{port}/S"):
        NatsLog(f"nats://127.0.0.1:{port}", "S", timeout_s=1.0)
    assert time.monotonic() - t0 < 5


# The contract, directly


def test_append_stamps_dense_seqs_and_reads_back(nats_log_factory: Factory) -> None:
    log = nats_log_factory(clock=lambda: TS)
    first = log.append(_notes(3))
    second = log.append([Note(text="x", ts=5.0)])
    assert [e.seq for e in first + second] == [1, 2, 3, 4]
    assert first[0].ts == TS and second[0].ts == 5.0
    assert list(log.read()) == first + second
    assert list(log.read(after=2)) == first[2:] + second
    assert log.last_seq() == 4
    assert log.verify().ok and log.verify().records == 4


def test_expected_seq_conflict_writes_nothing(nats_log_factory: Factory) -> None:
    log = nats_log_factory()
    log.append(_notes(2))
    with pytest.raises(SeqConflict) as exc:
        log.append([Note(text="late")], expected_seq=1)
    assert (exc.value.expected, exc.value.found) == (1, 2)
    assert log.append([Note(text="ok")], expected_seq=2)[0].seq == 3
    assert log.last_seq() == 3


def test_stale_cached_end_does_not_cause_a_false_conflict(nats_log_factory: Factory) -> None:
    a = nats_log_factory()
    b = nats_log_factory(a.target.stream)
    a.append(_notes(1))
    b.append(_notes(2))  # a's cached end is now stale
    assert a.append([Note(text="x")], expected_seq=3)[0].seq == 4


def test_idempotency_key_returns_the_stored_event(nats_log_factory: Factory) -> None:
    log = nats_log_factory()
    (first,) = log.append([Note(text="a", key="k1")])
    again = log.append([Note(text="different", key="k1"), Note(text="b")])
    assert again[0] == first
    assert again[1].seq == 2
    other = nats_log_factory(log.target.stream)  # a fresh process-like view: index from stream
    assert other.append([Note(text="c", key="k1")]) == [first]
    assert other.append([Note(text="d", key="k2"), Note(text="e", key="k2")])[1].seq == 3
    assert log.last_seq() == 3


def test_batch_is_one_contiguous_message(nats_log_factory: Factory) -> None:
    log = nats_log_factory()
    stored = log.append(_notes(100))
    assert [e.seq for e in stored] == list(range(1, 101))
    assert log.verify().segments == 1  # one message holds the whole batch


def test_batch_larger_than_max_payload_is_split_in_order(nats_log_factory: Factory) -> None:
    log = nats_log_factory()
    big = [Note(text="x" * 1000) for _ in range(2500)]  # ~2.6 MB > 1 MiB max_payload
    stored = log.append(big)
    assert [e.seq for e in stored] == list(range(1, 2501))
    report = log.verify()
    assert report.ok and report.records == 2500 and report.segments >= 3
    assert [e.seq for e in log.read(after=1234)][:2] == [1235, 1236]


def test_reader_polls_only_new_events(nats_log_factory: Factory) -> None:
    log = nats_log_factory()
    log.append(_notes(5))
    r = log.reader(after=3)
    assert [e.seq for e in r.poll()] == [4, 5]
    assert r.poll() == [] and r.position == 5
    log.append(_notes(200))  # a range large enough for a consumer
    assert [e.seq for e in r.poll()] == list(range(6, 206))
    assert r.position == 205
    r.close()


def test_reader_after_locates_inside_a_batch(nats_log_factory: Factory) -> None:
    log = nats_log_factory()
    for _ in range(20):
        log.append(_notes(7))
    for after in (0, 1, 6, 7, 8, 69, 139, 140, 500):
        assert [e.seq for e in log.read(after=after)] == list(range(after + 1, 141))


def test_subscribe_delivers_live_appends_and_stops(nats_log_factory: Factory) -> None:
    log = nats_log_factory()
    log.append(_notes(2))
    stop = threading.Event()
    got: list[int] = []

    def consume() -> None:
        for ev in log.subscribe(after=1, stop=stop, poll_s=0.05):
            got.append(ev.seq)
            if ev.seq == 4:
                stop.set()

    t = threading.Thread(target=consume)
    t.start()
    writer = nats_log_factory(log.target.stream)
    writer.append(_notes(2))
    t.join(10)
    assert not t.is_alive()
    assert got == [2, 3, 4]


@pytest.mark.anyio
async def test_asubscribe_delivers_live_appends(nats_log_factory: Factory) -> None:
    log = nats_log_factory()
    stop = asyncio.Event()
    got: list[int] = []

    async def consume() -> None:
        async for ev in log.asubscribe(stop=stop, poll_s=0.05):
            got.append(ev.seq)
            if ev.seq == 3:
                stop.set()

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    await asyncio.to_thread(log.append, _notes(3))
    await asyncio.wait_for(task, 10)
    assert got == [1, 2, 3]


def test_closed_log_refuses_calls(nats_log_factory: Factory) -> None:
    log = nats_log_factory()
    log.close()
    log.close()
    with pytest.raises(LogError, match="closed"):
        log.append(_notes(1))


def test_missing_stream_without_create_is_a_clear_error(nats_log_factory: Factory) -> None:
    with pytest.raises(LogError, match="no stream"):
        nats_log_factory("absent", create=False)


def test_verify_reports_a_damaged_record(nats_log_factory: Factory) -> None:
    log = nats_log_factory()
    log.append(_notes(2))
    # A foreign publisher writes a record with a bad checksum straight onto the subject.
    import nats as nats_client

    async def publish_bad() -> None:
        nc = await nats_client.connect(log.target.servers[0])
        js = nc.jetstream()
        bad = frame(Note(text="x", seq=3)).replace(b'"x"', b'"y"')
        await js.publish(log.subject, bad)
        await nc.close()

    asyncio.run(publish_bad())
    report = log.verify()
    assert not report.ok
    assert report.problems[0].problem == "checksum mismatch"
    assert report.problems[0].path.endswith("#2")  # the second message
    with pytest.raises(LogCorrupt):
        list(log.read())


# Many processes, one stream

_WRITER = """
import sys
from swarmlog.events import Note
from swarmlog.log.nats import NatsLog
url, stream, wid, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
log = NatsLog(url, stream, timeout_s=20)
for i in range(n):
    size = 1 + i % 3
    evs = log.append([Note(text=f"{wid}-{i}-{j}") for j in range(size)])
    print(" ".join(str(e.seq) for e in evs), flush=True)
log.close()
"""


def test_eight_writer_processes_get_dense_unique_seqs_and_atomic_batches(
    nats_server: NatsServer, nats_log_factory: Factory
) -> None:
    log = nats_log_factory()
    procs = [_run_py(_WRITER, nats_server.url, log.target.stream, f"w{w}", "25") for w in range(8)]
    outs = _wait_all(procs)
    acked = [[int(s) for s in line.split()] for out in outs for line in out.split("\n") if line]
    events = list(log.read())
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert len(events) == 8 * sum(1 + i % 3 for i in range(25)) == sum(len(b) for b in acked)
    texts = [e.text for e in events if isinstance(e, Note)]
    assert len(set(texts)) == len(texts)
    by_seq = {e.seq: e for e in events}
    for batch in acked:  # each batch is contiguous and holds one writer's append, in order
        assert batch == list(range(batch[0], batch[0] + len(batch)))
        owner = {by_seq[s].text.rsplit("-", 1)[0] for s in batch}  # type: ignore[union-attr]
        assert len(owner) == 1
    assert log.verify().ok


_KEYED = """
import sys
from swarmlog.events import Note
from swarmlog.log.nats import NatsLog
url, stream, wid = sys.argv[1], sys.argv[2], int(sys.argv[3])
log = NatsLog(url, stream, timeout_s=20)
order = list(range(20)) if wid % 2 else list(reversed(range(20)))
for i in order:
    (ev,) = log.append([Note(text=f"from {wid}", key=f"task-{i}")])
    print(f"task-{i} {ev.seq}", flush=True)
log.close()
"""


def test_idempotency_keys_hold_across_processes(
    nats_server: NatsServer, nats_log_factory: Factory
) -> None:
    log = nats_log_factory()
    procs = [_run_py(_KEYED, nats_server.url, log.target.stream, str(w)) for w in range(6)]
    outs = _wait_all(procs)
    answers: dict[str, set[int]] = {}
    for out in outs:
        for line in out.split("\n"):
            if line:
                key, seq = line.split()
                answers.setdefault(key, set()).add(int(seq))
    events = list(log.read())
    assert sorted(e.key or "" for e in events) == sorted(f"task-{i}" for i in range(20))
    by_key = {e.key: e.seq for e in events}
    assert answers == {k: {s} for k, s in by_key.items()}  # every process got the stored event


# Failures


def _append_in_background(
    log: NatsLog, n: int, acked: list[int], errors: list[BaseException]
) -> threading.Thread:
    def run() -> None:
        try:
            for i in range(n):
                acked.extend(e.seq for e in log.append([Note(text=f"bg-{i}")]))
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _wait_for(predicate: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


@pytest.mark.parametrize("crash", [False, True], ids=["restart", "crash"])
def test_server_restart_mid_run_keeps_every_acknowledged_event(tmp_path: Path, crash: bool) -> None:
    server = NatsServer(tmp_path / "store")
    server.start()
    log = NatsLog(server.url, "restart", timeout_s=15)
    try:
        acked: list[int] = []
        errors: list[BaseException] = []
        t = _append_in_background(log, 300, acked, errors)
        _wait_for(lambda: len(acked) >= 100)
        server.kill() if crash else server.stop()
        time.sleep(0.2)
        server.start()
        t.join(30)
        assert not t.is_alive() and not errors
        events = list(log.read())
        assert [e.seq for e in events] == list(range(1, 301)) == acked
        assert sorted(e.text for e in events) == sorted(f"bg-{i}" for i in range(300))  # type: ignore[union-attr]
        assert log.verify().ok
    finally:
        log.close()
        server.stop()


def test_three_node_cluster_survives_a_killed_node_and_recovers_from_lost_quorum(
    tmp_path: Path,
) -> None:
    nodes = start_cluster(tmp_path)
    urls = [n.url for n in nodes]
    log = None
    try:
        log = NatsLog(urls, "r3", replicas=3, timeout_s=20)
        acked: list[int] = []
        errors: list[BaseException] = []
        t = _append_in_background(log, 200, acked, errors)
        _wait_for(lambda: len(acked) >= 50, timeout=20)
        info = log._call(log._js_info("r3"))
        leader = next(
            n for n in nodes if info.cluster is not None and n.name == info.cluster.leader
        )
        leader.kill()  # the stream's leader dies during appends: the other two keep quorum
        t.join(40)
        assert not t.is_alive() and not errors
        assert acked == list(range(1, 201))

        second = next(n for n in nodes if n is not leader)
        second.kill()  # one node of three left: no quorum, a clear error in bounded time
        log.timeout_s = 2.0
        t0 = time.monotonic()
        with pytest.raises(LogError, match="no quorum"):
            log.append([Note(text="while down")])
        assert time.monotonic() - t0 < 10

        leader.start()
        second.start()
        log.timeout_s = 30.0
        (after,) = log.append([Note(text="after recovery", key="after")])
        events = list(log.read())
        seqs = [e.seq for e in events]
        assert seqs == list(range(1, len(events) + 1))
        texts = [e.text for e in events if isinstance(e, Note)]
        assert len(set(texts)) == len(texts)  # the failed append was stored at most once
        assert set(texts) >= {f"bg-{i}" for i in range(200)} | {"after recovery"}
        assert after == events[-1] and log.verify().ok
    finally:
        if log is not None:
            log.close()
        for node in nodes:
            node.stop()


# Hosts that share nothing but the stream

_DIRECTOR = """
import sys, threading
from swarmlog.events import TaskClaimed, TaskSubmitted
from swarmlog.log.select import open_log
log = open_log(sys.argv[1], timeout_s=20)
for i in range(6):
    log.append([TaskSubmitted(task_id=f"t{i}", title=f"task {i}", actor="director")])
claimed = {}
stop = threading.Event()
for ev in log.subscribe(stop=stop, poll_s=0.05):
    if isinstance(ev, TaskClaimed):
        claimed.setdefault(ev.task_id, ev.agent)
        if len(claimed) == 6:
            stop.set()
print(" ".join(f"{t}={a}" for t, a in sorted(claimed.items())), flush=True)
log.close()
"""

_AGENT = """
import sys, threading
from swarmlog.events import TaskClaimed, TaskSubmitted
from swarmlog.log.select import open_log
url, me = sys.argv[1], sys.argv[2]
log = open_log(url, timeout_s=20)
won, seen = [], set()
stop = threading.Event()
for ev in log.subscribe(stop=stop, poll_s=0.05):
    if isinstance(ev, TaskSubmitted):
        claim = TaskClaimed(task_id=ev.task_id, agent=me, lease_until=ev.ts + 60,
                            key=f"claim-{ev.task_id}")
        (stored,) = log.append([claim])
        if stored.agent == me:
            won.append(ev.task_id)
    if isinstance(ev, TaskClaimed):
        seen.add(ev.task_id)
        if len(seen) == 6:
            stop.set()
print(" ".join(won), flush=True)
log.close()
"""


def test_processes_in_separate_folders_cooperate_through_the_stream_alone(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    url = f"{nats_server.url}/coop_{os.getpid()}"
    homes = [tmp_path / name for name in ("director", "agent-a", "agent-b")]
    for home in homes:
        home.mkdir()
    agents = [
        _run_py(_AGENT, url, name, cwd=home)
        for name, home in zip(("a", "b"), homes[1:], strict=True)
    ]
    director = _run_py(_DIRECTOR, url, cwd=homes[0])
    (summary,) = _wait_all([director])
    won = _wait_all(agents)
    claims = dict(pair.split("=") for pair in summary.split())
    assert sorted(claims) == [f"t{i}" for i in range(6)]
    for name, out in zip(("a", "b"), won, strict=True):  # each task went to exactly one agent
        assert sorted(out.split()) == sorted(t for t, a in claims.items() if a == name)
    assert all(not any(home.iterdir()) for home in homes)  # nothing shared through folders


# Archive


def test_archive_copies_the_stream_into_verifiable_segments(
    tmp_path: Path, nats_log_factory: Factory
) -> None:
    log = nats_log_factory()
    log.append(_notes(5))
    log.append([TaskSubmitted(task_id="t1", title="x", key="k"), Note(text="é ünïcode")])
    folder = tmp_path / "memory" / "events"
    assert archive_to_files(log, folder, segment_bytes=300) == 7
    archived = FileLog(folder, create=False)
    assert archived.verify().ok and archived.verify().segments >= 2
    assert list(archived.read()) == list(log.read())
    raw = b"".join(p.read_bytes() for p in sorted(folder.glob("*.ndjson")))
    assert raw == b"".join(frame(e) for e in log.read())  # byte-compatible records
    assert all(p.stat().st_mode & 0o222 == 0 for p in folder.glob("*.ndjson"))  # sealed

    log.append(_notes(3, prefix="more"))
    assert archive_to_files(log, folder) == 3  # incremental
    assert archive_to_files(log, folder) == 0
    assert list(FileLog(folder).read()) == list(log.read())
    assert FileLog(folder).verify().ok

    other = nats_log_factory()
    other.append(_notes(9, prefix="other"))
    with pytest.raises(LogError, match="does not hold"):
        archive_to_files(other, folder)


# Operator commands follow the selected log, not the workspace's (empty) file log


def test_doctor_verifies_the_selected_stream(
    nats_server: NatsServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from swarmlog.cli import main

    url = f"{nats_server.url}/doc_{os.getpid()}"
    log = open_log(url, create=True, timeout_s=5)
    log.append([Note(text=f"n{i}") for i in range(3)])
    log.close()
    main(["--dir", str(tmp_path), "--log", url, "doctor", "--json"])
    checks = {c["check"]: c for c in map(json.loads, capsys.readouterr().out.splitlines())}
    assert checks["log verify"]["status"] == "pass"
    assert "3 records" in checks["log verify"]["detail"]
    assert not (tmp_path / "memory" / "events").exists()  # no file log was made on the side


def test_doctor_fails_the_log_check_when_the_stream_is_unreachable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from swarmlog.cli import main

    require_nats_server()
    url = f"nats://127.0.0.1:{free_port()}/GONE"
    main(["--dir", str(tmp_path), "--log", url, "doctor", "--json", "--timeout", "1"])
    checks = {c["check"]: c for c in map(json.loads, capsys.readouterr().out.splitlines())}
    assert checks["log verify"]["status"] == "fail"
    assert "cannot connect to NATS" in checks["log verify"]["detail"]
