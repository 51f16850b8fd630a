"""The file log under real concurrency: many writer processes, SIGKILL, a subscriber elsewhere,
disk full and a read-only filesystem. Every worker is a real ``python`` process."""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from swarmlog.events import Note
from swarmlog.log import FileLog, list_segments

pytestmark = pytest.mark.slow

# Each worker prints one line per acknowledged append: "<seq> <key>" for every event stored, and
# flushes, so whatever the parent reads was acknowledged before the worker died.
WORKER = textwrap.dedent(
    """
    import random, sys, json, threading
    from swarmlog.events import Note
    from swarmlog.errors import LogError, SeqConflict
    from swarmlog.log import FileLog

    mode, folder, wid, count, sync, seg = sys.argv[1:7]
    wid, count, seg = int(wid), int(count), int(seg)
    log = FileLog(folder, sync=sync, segment_bytes=seg)
    rng = random.Random(wid)
    out = sys.stdout

    if mode == "write":  # batches of 1..5 events with unique keys
        n = 0
        while n < count:
            size = min(rng.randint(1, 5), count - n)
            batch = [Note(text=f"w{wid} n{n + i}", actor=f"w{wid}", key=f"w{wid}-{n + i}")
                     for i in range(size)]
            for ev in log.append(batch):
                out.write(f"{ev.seq} {ev.key}\\n")
            out.flush()
            n += size
    elif mode == "crash":  # small appends, and big ones announced so the parent can aim
        n = 0
        while True:
            is_big = n and rng.random() < 0.2
            size = 200 if is_big else rng.randint(1, 40)
            pad = "x" * (3000 if is_big else rng.randint(0, 300))
            # No keys here: a fresh process would first read the whole log to learn them.
            batch = [Note(text=f"w{wid}-{n + i} {pad}", actor=f"w{wid}") for i in range(size)]
            if is_big:
                out.write("big\\n")
                out.flush()
            stored = log.append(batch, sync=rng.choice(["none", "none", "always"]))
            out.write("".join(f"{ev.seq} {ev.text.split(' ', 1)[0]}\\n" for ev in stored))
            out.flush()
            n += size
    elif mode == "durable":  # single events, sync=always: the watermark must cover each ack
        import struct, zlib
        from pathlib import Path
        segment = Path(folder, "000000000001.ndjson")
        for n in range(count):
            (ev,) = log.append([Note(text=f"w{wid} n{n}", key=f"w{wid}-{n}")], sync="always")
            raw = Path(folder, ".synced").read_bytes()[:28]
            gen, first, end, crc = struct.unpack("<qqqI", raw)
            data = segment.read_bytes()
            mine = data.index(f'"key":"{ev.key}"'.encode())
            mine_end = data.index(b"\\n", mine) + 1
            ok = zlib.crc32(raw[:24]) == crc and first == 1 and end >= mine_end
            out.write(f"{ev.seq} {ev.key}\\n" if ok else f"uncovered {ev.key}\\n")
        out.flush()
    elif mode == "same_keys":  # every worker appends the same keys in its own order
        keys = [f"k{i}" for i in range(count)]
        rng.shuffle(keys)
        for k in keys:
            (ev,) = log.append([Note(text=f"from w{wid}", key=k)])
            out.write(f"{ev.seq} {ev.key}\\n")
        out.flush()
    elif mode == "cas":  # optimistic concurrency: append only if the log did not move
        import os, time
        while not os.path.exists(folder + ".go"):  # start together so that they race
            time.sleep(0.001)
        done = conflicts = 0
        while done < count:
            last = log.last_seq()
            time.sleep(0.0005)  # decide what to append: the window in which others move on
            try:
                log.append([Note(text=f"w{wid} after {last}")], expected_seq=last)
                done += 1
            except SeqConflict as exc:
                assert exc.expected == last and exc.found > last
                conflicts += 1
        out.write(json.dumps({"done": done, "conflicts": conflicts}) + "\\n")
    elif mode == "subscribe":  # print every event seen until `count` events arrived
        print("ready", flush=True)
        stop = threading.Event()
        for ev in log.subscribe(after=0, stop=stop, poll_s=0.2):
            out.write(f"{ev.seq} {ev.key}\\n")
            out.flush()
            if ev.seq >= count:
                break
    elif mode == "fsize":  # disk full: the file-size limit stops the write half-way
        import resource
        size = log.directory.joinpath("000000000001.ndjson").stat().st_size
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 3000, size + 3000))
        try:
            log.append([Note(text="y" * 100, key=f"big-{i}") for i in range(100)])
            print(json.dumps({"error": None}))
        except LogError as exc:
            print(json.dumps({"error": str(exc), "type": type(exc).__name__}))
    """
)


def spawn(mode: str, folder: Path, wid: int, count: int, sync: str = "none", seg: int = 64 << 20):
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, mode, str(folder), str(wid), str(count), sync, str(seg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(procs: Sequence[subprocess.Popen[str]], timeout: float = 40) -> list[str]:
    outputs = []
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        assert p.returncode == 0, err[-2000:]
        outputs.append(out)
    return outputs


def acks(output: str) -> dict[str, int]:
    found = {}
    complete = output[: output.rfind("\n") + 1]  # a killed worker may leave half a line
    for line in complete.splitlines():
        seq, key = line.split(" ", 1)
        found[key] = int(seq)
    return found


def assert_every_line_valid(folder: Path) -> list[Note]:
    log = FileLog(folder)
    report = log.verify()
    assert report.ok, report.problems
    assert report.torn_tail_bytes == 0
    events = list(log.read())
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert report.records == report.last_seq == len(events)
    return events  # type: ignore[return-value]


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    ("writers", "count", "sync"), [(8, 1500, "none"), (4, 60, "always"), (4, 60, "batch")]
)
def test_concurrent_writers_produce_a_dense_log(tmp_path: Path, writers, count, sync):
    procs = [spawn("write", tmp_path, w, count, sync, seg=256 << 10) for w in range(writers)]
    outputs = finish(procs)
    events = assert_every_line_valid(tmp_path)
    assert len(events) == writers * count
    stored = {e.key: e.seq for e in events}
    assert len(stored) == len(events)  # no key twice: nothing duplicated
    for w, out in enumerate(outputs):
        mine = acks(out)
        assert len(mine) == count
        assert all(stored[k] == s for k, s in mine.items())  # acknowledged == stored
        seqs = [s for k, s in sorted(mine.items(), key=lambda kv: int(kv[0].split("-")[1]))]
        assert seqs == sorted(seqs)  # one writer's events keep its order
        assert all(e.text == f"w{w} n{k.split('-')[1]}" for k, e in zip(mine, [], strict=False))
    if sync == "none":
        assert len(list_segments(tmp_path)) > 1  # segments rolled under concurrency


@pytest.mark.timeout(90)
def test_group_commit_acknowledges_only_what_a_sync_covered(tmp_path: Path):
    """Eight writers share syncs; each ack must come after a sync that covered its bytes."""
    procs = [spawn("durable", tmp_path, w, 150, "always") for w in range(8)]
    outputs = finish(procs)
    for out in outputs:
        assert "uncovered" not in out
        assert len(acks(out)) == 150
    assert len(assert_every_line_valid(tmp_path)) == 8 * 150


@pytest.mark.timeout(120)
def test_sigkilled_writers_never_lose_an_acknowledged_event(tmp_path: Path):
    rng = random.Random(2)
    acked: dict[str, int] = {}
    for _round in range(6):
        procs = [spawn("crash", tmp_path, rng.randint(0, 10**6), 0, seg=1 << 20) for _ in range(3)]
        for p in rng.sample(procs, len(procs)):
            # Wait until this worker announces a big append, then kill it a random moment later:
            # while it frames, writes (a torn tail) or syncs that batch.
            assert p.stdout is not None
            seen = []
            while (line := p.stdout.readline()) not in ("big\n", ""):
                seen.append(line)
            time.sleep(rng.uniform(0, 0.006))
            p.send_signal(signal.SIGKILL)
            rest = p.stdout.read()  # through the same buffer readline used (not communicate)
            assert p.wait(timeout=20) == -signal.SIGKILL, p.stderr.read() if p.stderr else ""
            p.stdout.close()
            if p.stderr:
                p.stderr.close()
            acked.update(acks("".join(seen) + rest.replace("big\n", "")))
        # The next append repairs a torn tail under the lock; then everything is valid.
        FileLog(tmp_path).append([Note(text=f"round-{_round} ended")])
        events = assert_every_line_valid(tmp_path)
        stored = {e.text.split(" ", 1)[0]: e.seq for e in events}
        assert len(stored) == len(events)
        missing = {k: s for k, s in acked.items() if stored.get(k) != s}
        assert not missing, f"{len(missing)} acknowledged events lost or moved"
    assert len(acked) > 1000
    print(f"torn tails repaired: {len(list(tmp_path.glob('*.removed-*')))}, acked: {len(acked)}")


@pytest.mark.timeout(60)
def test_a_subscriber_in_another_process_sees_every_event_once_in_order(tmp_path: Path):
    total_per_writer = 400
    FileLog(tmp_path).append([Note(text="first", key="first")])
    total = 1 + 3 * total_per_writer
    sub = spawn("subscribe", tmp_path, 0, total, seg=64 << 10)
    assert sub.stdout is not None
    assert sub.stdout.readline() == "ready\n"
    writers = [spawn("write", tmp_path, w, total_per_writer, seg=64 << 10) for w in range(3)]
    finish(writers)
    out = sub.stdout.read()  # through the buffer readline used: communicate() would skip it
    assert sub.wait(timeout=30) == 0, sub.stderr.read() if sub.stderr else ""
    sub.stdout.close()
    if sub.stderr:
        sub.stderr.close()
    seen = [line.split(" ", 1) for line in out.splitlines()]
    assert [int(s) for s, _ in seen] == list(range(1, total + 1))
    assert [k for _, k in seen] == [e.key for e in FileLog(tmp_path).read()]


@pytest.mark.timeout(60)
def test_idempotency_keys_dedupe_across_processes(tmp_path: Path):
    outputs = finish([spawn("same_keys", tmp_path, w, 150) for w in range(4)])
    events = assert_every_line_valid(tmp_path)
    assert sorted(e.key for e in events) == sorted(f"k{i}" for i in range(150))  # type: ignore[type-var]
    stored = {e.key: e.seq for e in events}
    for out in outputs:
        assert acks(out) == stored  # every process was answered with the one stored event


@pytest.mark.timeout(60)
def test_expected_seq_conflicts_across_processes(tmp_path: Path):
    procs = [spawn("cas", tmp_path, w, 60) for w in range(4)]
    Path(f"{tmp_path}.go").touch()
    outputs = finish(procs)
    results = [json.loads(out) for out in outputs]
    assert sum(r["done"] for r in results) == 240
    assert sum(r["conflicts"] for r in results) > 0  # they did race
    events = assert_every_line_valid(tmp_path)
    assert len(events) == 240
    # Each event was appended right after the one its writer had read.
    assert all(e.text.endswith(f"after {e.seq - 1}") for e in events)


@pytest.mark.timeout(30)
def test_disk_full_leaves_no_partial_record(tmp_path: Path):
    log = FileLog(tmp_path)
    log.append([Note(text=f"before {i}") for i in range(5)])
    (_, seg), *_ = list_segments(tmp_path)
    before = seg.read_bytes()
    (out,) = finish([spawn("fsize", tmp_path, 0, 0)])
    result = json.loads(out)
    assert result["type"] == "LogError"
    assert "nothing was written" in result["error"] and str(seg) in result["error"]
    assert seg.read_bytes() == before  # the partial write was cut back off
    assert_every_line_valid(tmp_path)
    assert log.append([Note(text="after")])[0].seq == 6


# A real small filesystem and a real read-only one, in a private mount namespace (no root needed
# where unprivileged user namespaces are allowed; skipped elsewhere).

NAMESPACE_CHECK = textwrap.dedent(
    """
    import json, sys
    from swarmlog.errors import LogError
    from swarmlog.events import Note
    from swarmlog.log import FileLog

    folder, mode = sys.argv[1], sys.argv[2]
    log = FileLog(folder, segment_bytes=48 << 10)
    result = {"acked": 0, "error": None}
    try:
        if mode == "full":
            while True:
                log.append([Note(text="z" * 150, key=f"k{result['acked']}-{i}") for i in range(40)])
                result["acked"] += 40
        else:
            log.append([Note(text="on a read-only filesystem")])
    except LogError as exc:
        result["error"] = str(exc)
    report = log.verify()
    result["ok"] = report.ok
    result["torn"] = report.torn_tail_bytes
    result["records"] = report.records
    print(json.dumps(result))
    """
)


def run_in_namespace(shell: str, tmp_path: Path) -> dict[str, object]:
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1) to make a private mount namespace")
    probe = subprocess.run(["unshare", "-Urm", "true"], capture_output=True, timeout=10)
    if probe.returncode != 0:
        pytest.skip("user namespaces are not available here")
    script = tmp_path / "check.py"
    script.write_text(NAMESPACE_CHECK)
    cmd = ["unshare", "-Urm", "sh", "-euc", shell, "sh", sys.executable, str(script)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=tmp_path)
    if "mount:" in done.stderr and done.returncode != 0:
        pytest.skip(f"cannot mount in a user namespace: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.timeout(40)
def test_a_full_filesystem_gives_a_clear_error_and_a_valid_log(tmp_path: Path):
    (tmp_path / "small").mkdir()
    result = run_in_namespace(
        'mount -t tmpfs -o size=256k tmpfs small && "$1" "$2" small/events full', tmp_path
    )
    assert result["error"] and "No space left on device" in str(result["error"])
    assert result["ok"] is True and result["torn"] == 0
    assert result["records"] == result["acked"] and int(result["acked"]) > 0  # type: ignore[call-overload]


@pytest.mark.timeout(40)
def test_a_read_only_filesystem_gives_a_clear_error(tmp_path: Path):
    folder = tmp_path / "ro" / "events"
    log = FileLog(folder)
    log.append([Note(text="written before the remount")])
    log.close()
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    result = run_in_namespace(
        'mount --bind ro ro && mount -o remount,ro,bind ro && "$1" "$2" ro/events ro', tmp_path
    )
    assert "Read-only file system" in str(result["error"])
    assert result["ok"] is True and result["records"] == 1
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
