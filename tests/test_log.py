"""The event-log contract, run against the in-memory and the file backend, then file specifics."""

from __future__ import annotations

import os
import struct
import threading
import zlib
from pathlib import Path

import anyio
import pytest

from swarmlog.errors import LogCorrupt, LogError, SeqConflict
from swarmlog.events import ConfigLoaded, ModelCallFinished, Note, TaskSubmitted
from swarmlog.log import FileLog, FileReader, MemoryLog, list_segments

Store = MemoryLog | FileLog
FIXED_TS = 1_795_000_000.0  # the clock the `store` fixture uses (tests/conftest.py)


def notes(*texts: str, key: str | None = None) -> list[Note]:
    return [Note(text=t, actor="test", key=key) for t in texts]


# The contract: both backends


def test_append_assigns_dense_seqs_and_stamps_time(store: Store):
    assert store.last_seq() == 0
    first = store.append(notes("a", "b"))
    second = store.append([Note(text="c", ts=42.0)])
    assert [e.seq for e in first + second] == [1, 2, 3]
    assert [e.ts for e in first + second] == [FIXED_TS, FIXED_TS, 42.0]
    assert store.last_seq() == 3
    assert [e.text for e in store.read()] == ["a", "b", "c"]  # type: ignore[union-attr]
    assert store.append([]) == []


def test_read_after_and_reader_return_each_event_once(store: Store):
    store.append(notes(*"abcde"))
    assert [e.seq for e in store.read(after=3)] == [4, 5]
    assert list(store.read(after=5)) == []
    reader = store.reader(after=1)
    assert [e.seq for e in reader.poll()] == [2, 3, 4, 5]
    assert reader.poll() == []
    store.append(notes("f"))
    assert [e.seq for e in reader.poll()] == [6]
    assert reader.position == 6


def test_a_float_json_cannot_carry_is_refused_and_nothing_is_written(store: Store):
    store.append(notes("a"))
    bad = ModelCallFinished(model="m", retry_after_s=float("inf"), actor="test")
    with pytest.raises(LogError, match=r"model_call_finished: retry_after_s = inf is not a finite"):
        store.append([Note(text="null", actor="test"), bad])
    with pytest.raises(LogError, match=r"total_ms = nan"):
        store.append([ModelCallFinished(model="m", total_ms=float("nan"), actor="test")])
    assert store.last_seq() == 1
    # A None inside a dict with a tuple decodes back as a list: different, yet storable.
    config = ConfigLoaded(config={"models": {"m": {"gpu": None, "tags": ("a", "b")}}})
    assert store.append([config])[0].seq == 2
    stored = store.append([Note(text="null", actor="test")])  # the word alone is fine
    assert [e.text for e in store.read(after=2)] == ["null"] == [stored[0].text]  # type: ignore[union-attr]


def test_expected_seq_conflict_writes_nothing(store: Store):
    store.append(notes("a"))
    with pytest.raises(SeqConflict) as info:
        store.append(notes("b"), expected_seq=0)
    assert (info.value.expected, info.value.found) == (0, 1)
    assert info.value.exit_code == 3
    assert store.last_seq() == 1
    assert store.append(notes("b"), expected_seq=1)[0].seq == 2


def test_idempotency_key_returns_the_stored_event(store: Store):
    (first,) = store.append(notes("first", key="task-1/done"))
    again = store.append([*notes("second", key="task-1/done"), *notes("other")])
    assert again[0] == first
    assert again[1].seq == 2
    twice = store.append([*notes("x", key="k2"), *notes("y", key="k2")])
    assert twice[0] == twice[1] and twice[0].seq == 3
    assert store.last_seq() == 3


def test_stored_events_keep_their_type_and_fields(store: Store):
    task = TaskSubmitted(task_id="t1", title="lint", deps=("t0",), run="r1", actor="director")
    (stored,) = store.append([task])
    (read,) = list(store.read())
    assert read == stored
    assert isinstance(read, TaskSubmitted) and read.deps == ("t0",)


def test_subscribe_sees_later_appends_in_order(store: Store):
    store.append(notes("before"))
    stop = threading.Event()
    seen: list[int] = []

    def consume() -> None:
        for event in store.subscribe(after=0, stop=stop):
            seen.append(event.seq)
            if len(seen) == 21:
                return

    thread = threading.Thread(target=consume)
    thread.start()
    for i in range(20):
        store.append(notes(f"n{i}"))
    thread.join(timeout=10)
    stop.set()
    assert not thread.is_alive()
    assert seen == list(range(1, 22))


@pytest.mark.anyio
async def test_asubscribe_sees_later_appends_and_stops(store: Store):
    stop = anyio.Event()
    seen: list[int] = []

    async def consume() -> None:
        async for event in store.asubscribe(after=0, stop=stop):
            seen.append(event.seq)
            if len(seen) == 5:
                stop.set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            for i in range(5):
                await anyio.sleep(0.01)
                store.append(notes(f"n{i}"))
    assert seen == [1, 2, 3, 4, 5]


def test_verify_counts_a_healthy_log(store: Store):
    store.append(notes(*"abc"))
    report = store.verify()
    assert report.ok and (report.records, report.last_seq) == (3, 3)
    assert store.repair().removed_bytes == 0


# The file backend


_MARK = struct.Struct("<qqqI")  # generation, segment, durable bytes, crc32 of the first 24 bytes


def read_mark(folder: Path) -> tuple[int, int, int] | None:
    gen, seg, end, crc = _MARK.unpack((folder / ".synced").read_bytes()[: _MARK.size])
    return (gen, seg, end) if zlib.crc32(_MARK.pack(gen, seg, end, 0)[:24]) == crc else None


def write_mark(folder: Path, gen: int, seg: int, end: int) -> None:
    body = _MARK.pack(gen, seg, end, 0)[:24]
    with (folder / ".synced").open("r+b") as f:  # in place: writers have the file mapped
        f.write(body + struct.pack("<I", zlib.crc32(body)))


def make_log(path: Path, **kw: object) -> FileLog:
    return FileLog(path, clock=lambda: FIXED_TS, **kw)  # type: ignore[arg-type]


def test_segments_roll_seal_and_read_across(tmp_path: Path):
    log = make_log(tmp_path, segment_bytes=1000, sync="none")
    early = log.reader()
    for i in range(60):
        log.append(notes(f"note {i}"))
    segments = list_segments(tmp_path)
    assert len(segments) > 3
    assert all(not os.stat(p).st_mode & 0o222 for _, p in segments[:-1])  # sealed
    assert [e.seq for e in early.poll()] == list(range(1, 61))
    assert [e.seq for e in log.read(after=33)] == list(range(34, 61))
    assert log.verify().ok and log.verify().segments == len(segments)


def test_reader_does_not_skip_records_appended_just_before_a_roll(tmp_path: Path):
    log = make_log(tmp_path, segment_bytes=600, sync="none")
    log.append(notes("a"))
    reader = log.reader()
    assert [e.seq for e in reader.poll()] == [1]
    # More records land in the first segment, then it is sealed and a new one begins, all
    # between two polls: the reader must finish the old segment before moving on.
    while len(list_segments(tmp_path)) < 3:
        log.append(notes("more"))
    assert [e.seq for e in reader.poll()] == list(range(2, log.last_seq() + 1))


def test_read_after_a_point_deep_in_a_big_segment_returns_the_rest(tmp_path: Path):
    # Many read chunks (256 KiB each) of records before `after`: a poll that skipped them all
    # used to come back empty, which ends `read` — it returned nothing of the tail.
    log = make_log(tmp_path, sync="none")
    batch = [Note(text="x" * 100) for _ in range(1000)]
    for _ in range(200):  # ~30 MiB
        log.append(batch)
    last = log.last_seq()
    assert len(list_segments(tmp_path)) == 1
    assert [e.seq for e in log.read(after=last - 5)] == list(range(last - 4, last + 1))
    reader = log.reader(after=last // 2)
    assert [e.seq for e in reader.poll()][:1] == [last // 2 + 1]
    assert list(log.read(after=last)) == []


@pytest.mark.parametrize("window", [64, 300, 4096])
def test_a_reader_starting_mid_segment_sees_what_a_full_read_sees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, window: int
):
    import swarmlog.log.file as file_mod

    monkeypatch.setattr(file_mod, "_SEEK_WINDOW", window)  # bisect even in a small segment
    log = make_log(tmp_path, segment_bytes=20_000, sync="none")
    for i in range(300):  # records of varied length, one of them far longer than the window
        log.append(notes("y" * (5000 if i == 150 else i % 37)))
    everything = [e.seq for e in log.read()]
    assert len(list_segments(tmp_path)) > 2
    for after in [*range(0, 301, 7), 149, 150, 151, 299, 300]:
        assert [e.seq for e in log.read(after=after)] == everything[after:]
        reader = log.reader(after=after)
        reader.poll()
        assert reader.position == 300


def test_damage_after_a_readers_start_is_named_with_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import swarmlog.log.file as file_mod

    monkeypatch.setattr(file_mod, "_SEEK_WINDOW", 256)
    log = make_log(tmp_path, sync="none")
    for i in range(200):
        log.append(notes(f"record number {i}"))
    ((_, seg),) = list_segments(tmp_path)
    data = bytearray(seg.read_bytes())
    lines = data.split(b"\n")
    target = 180  # 0-based: seq 181, line 181
    data[sum(len(x) + 1 for x in lines[:target]) + 5] ^= 0x01
    seg.write_bytes(bytes(data))
    with pytest.raises(LogCorrupt) as info:
        list(log.read(after=170))
    assert (info.value.path, info.value.line) == (str(seg), target + 1)


def test_flipped_byte_in_a_sealed_segment_is_found_with_file_and_line(tmp_path: Path):
    log = make_log(tmp_path, segment_bytes=2000, sync="none")
    for i in range(80):
        log.append(notes(f"record number {i}"))
    (_, sealed), *_ = list_segments(tmp_path)[1:]
    data = bytearray(sealed.read_bytes())
    lines = data.split(b"\n")
    target = len(lines) // 2  # 0-based index of the line we damage
    offset = sum(len(x) + 1 for x in lines[:target]) + len(lines[target]) // 2
    data[offset] ^= 0x01
    os.chmod(sealed, 0o644)
    sealed.write_bytes(bytes(data))
    os.chmod(sealed, 0o444)

    report = log.verify()
    assert not report.ok
    assert [(p.path, p.line) for p in report.problems] == [(str(sealed), target + 1)]
    with pytest.raises(LogCorrupt) as info:
        list(log.read())
    assert (info.value.path, info.value.line) == (str(sealed), target + 1)
    assert "checksum mismatch" in str(info.value)


def test_records_before_damage_are_delivered_then_the_damage_stops_the_reader(tmp_path: Path):
    log = make_log(tmp_path, sync="none")
    for i in range(10):
        log.append(notes(f"record number {i}"))
    ((_, seg),) = list_segments(tmp_path)
    data = bytearray(seg.read_bytes())
    data[data.index(b"record number 3") + 2] ^= 0x01  # line 4
    seg.write_bytes(bytes(data))
    got: list[int] = []
    with pytest.raises(LogCorrupt) as info:
        for ev in log.read():
            got.append(ev.seq)
    assert got == [1, 2, 3] and (info.value.path, info.value.line) == (str(seg), 4)
    reader = log.reader(after=2)
    assert [e.seq for e in reader.poll()] == [3]
    for _ in range(2):  # it stays stopped at the damage
        with pytest.raises(LogCorrupt):
            reader.poll()
    with pytest.raises(LogCorrupt):
        log.reader(after=3).poll()


def test_next_append_cuts_a_torn_tail_and_keeps_a_copy(tmp_path: Path):
    log = make_log(tmp_path)
    log.append(notes("a", "b"))
    (_, seg), *_ = list_segments(tmp_path)
    torn = b'{"kind":"note","text":"half-writ'
    with open(seg, "ab") as fh:
        fh.write(torn)
    report = log.verify()
    assert report.ok and report.torn_tail_bytes == len(torn)
    # A fresh process-like handle (no cached state) repairs under the lock.
    other = make_log(tmp_path)
    assert other.append(notes("c"))[0].seq == 3
    assert seg.with_name(seg.name + ".removed-1").read_bytes() == torn
    assert [e.seq for e in log.read()] == [1, 2, 3]
    assert log.verify().torn_tail_bytes == 0
    # The group-commit watermark never claims bytes beyond the end of the segment.
    _gen, mark_seg, mark_end = read_mark(tmp_path)
    assert mark_seg == 1 and mark_end <= seg.stat().st_size


def test_watermark_is_lowered_when_a_tail_is_cut(tmp_path: Path):
    log = make_log(tmp_path)
    log.append(notes("a"))
    (_, seg), *_ = list_segments(tmp_path)
    good = seg.stat().st_size
    with open(seg, "ab") as fh:
        fh.write(b"x" * 500)
    # As if another writer synced the torn bytes before they were cut.
    mark = read_mark(tmp_path)
    assert mark is not None
    gen = mark[0]
    write_mark(tmp_path, gen, 1, good + 500)
    make_log(tmp_path).append(notes("b"), sync="none")
    assert read_mark(tmp_path) == (gen + 1, 1, good)


def test_a_torn_watermark_counts_as_nothing_synced(tmp_path: Path):
    log = make_log(tmp_path)
    log.append(notes("a"))
    with (tmp_path / ".synced").open("r+b") as f:
        raw = bytearray(f.read(_MARK.size))
        raw[10] ^= 0xFF  # as if read half-way through another process's write
        f.seek(0)
        f.write(raw)
    assert read_mark(tmp_path) is None
    log.append(notes("b"))  # must sync itself, and repair the mark
    (_, seg), *_ = list_segments(tmp_path)
    assert read_mark(tmp_path) == (0, 1, seg.stat().st_size)


def test_repair_truncates_only_a_torn_tail(tmp_path: Path):
    log = make_log(tmp_path)
    log.append(notes("a", "b"))
    (_, seg), *_ = list_segments(tmp_path)
    intact = seg.read_bytes()
    with open(seg, "ab") as fh:
        fh.write(b'{"kind":"no')
    report = make_log(tmp_path).repair()
    assert report.removed_bytes == len(b'{"kind":"no')
    assert Path(report.saved_to).read_bytes() == b'{"kind":"no'
    assert seg.read_bytes() == intact
    assert log.repair().removed_bytes == 0


def test_repair_refuses_damage_followed_by_valid_records(tmp_path: Path):
    log = make_log(tmp_path)
    log.append(notes("a", "b", "c"))
    (_, seg), *_ = list_segments(tmp_path)
    data = bytearray(seg.read_bytes())
    data[5] ^= 0x20
    seg.write_bytes(bytes(data))
    with pytest.raises(LogCorrupt) as info:
        log.repair()
    assert info.value.line == 1
    assert seg.read_bytes() == bytes(data)
    assert not list(tmp_path.glob("*.removed-*"))


def test_damaged_last_record_stops_appends(tmp_path: Path):
    log = make_log(tmp_path)
    log.append(notes("a", "b"))
    (_, seg), *_ = list_segments(tmp_path)
    data = bytearray(seg.read_bytes())
    data[-10] ^= 0x01
    seg.write_bytes(bytes(data))
    with pytest.raises(LogCorrupt) as info:
        make_log(tmp_path).append(notes("c"))
    assert (info.value.path, info.value.line) == (str(seg), 2)


def test_a_sealed_newest_segment_is_followed_by_a_new_one(tmp_path: Path):
    log = make_log(tmp_path)
    log.append(notes("a", "b"))
    (_, seg), *_ = list_segments(tmp_path)
    os.chmod(seg, 0o444)  # a writer sealed it and died before creating the next segment
    assert make_log(tmp_path).append(notes("c"))[0].seq == 3
    assert [first for first, _ in list_segments(tmp_path)] == [1, 3]
    assert log.verify().ok and [e.seq for e in log.read()] == [1, 2, 3]


def test_keys_are_found_in_events_written_by_another_handle(tmp_path: Path):
    a, b = make_log(tmp_path), make_log(tmp_path)
    (stored,) = a.append(notes("x", key="once"))
    assert b.append(notes("y", key="once")) == [stored]
    assert b.append(notes("z", key="new"))[0].seq == 2
    assert a.append(notes("w", key="new"))[0].seq == 2


def test_a_key_far_into_a_big_log_is_found_by_a_fresh_handle(tmp_path: Path):
    # The key index catches up in bounded reads: all of them, not only the first read chunk.
    a = make_log(tmp_path, sync="none")
    batch = [Note(text="x" * 100) for _ in range(1000)]
    for _ in range(100):  # ~15 MiB
        a.append(batch)
    (stored,) = a.append(notes("result", key="task-7/attempt-1"))
    b = make_log(tmp_path, sync="none")
    assert b.append(notes("result again", key="task-7/attempt-1")) == [stored]
    assert b.last_seq() == stored.seq


def test_subscribe_delivers_a_big_backlog_before_waiting(tmp_path: Path):
    log = make_log(tmp_path, sync="none")
    batch = [Note(text="x" * 100) for _ in range(1000)]
    for _ in range(120):  # ~18 MiB: many read chunks
        log.append(batch)
    last = log.last_seq()
    stop = threading.Event()
    got: list[int] = []

    def follow() -> None:
        for ev in log.subscribe(stop=stop, poll_s=120.0):  # no append follows: no wake-up
            got.append(ev.seq)
            if ev.seq == last:
                return

    t = threading.Thread(target=follow, daemon=True)
    t.start()
    t.join(60)  # the backlog must not wait for a notification or the 120 s re-read
    stop.set()
    assert got == list(range(1, last + 1))


def test_opening_a_missing_log_without_create_is_a_clear_error(tmp_path: Path):
    from swarmlog.errors import LogError

    with pytest.raises(LogError, match="swarmlog init"):
        FileLog(tmp_path / "nope", create=False)


def test_file_reader_on_an_empty_folder_returns_nothing(tmp_path: Path):
    assert FileReader(tmp_path).poll() == []


def test_a_following_reader_lists_the_folder_only_after_a_seal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import swarmlog.log.file as file_mod

    log = make_log(tmp_path, segment_bytes=600, sync="none")
    log.append(notes("a"))
    reader = log.reader()
    assert [e.seq for e in reader.poll()] == [1]
    listings = []
    real = file_mod.list_segments
    monkeypatch.setattr(file_mod, "list_segments", lambda d: listings.append(d) or real(d))
    # The active segment is writable, so no newer one can exist: idle and following polls
    # read what is there without listing the folder.
    assert reader.poll() == []
    log.append(notes("b"))
    assert [e.seq for e in reader.poll()] == [2]
    assert listings == []
    # Once the segment is sealed (a roll), the reader finds the next one and keeps every record.
    while len(real(tmp_path)) < 3:
        log.append(notes("more"))
    assert [e.seq for e in reader.poll()] == list(range(3, log.last_seq() + 1))
    assert listings
    reader.close()  # the descriptor is released; a later poll opens the segment again
    log.append(notes("c"))
    assert [e.text for e in reader.poll()] == ["c"]  # type: ignore[attr-defined]


def test_incomplete_record_in_a_sealed_segment_stops_the_reader(tmp_path: Path):
    log = make_log(tmp_path, segment_bytes=500, sync="none")
    while len(list_segments(tmp_path)) < 2:
        log.append(notes("filler"))
    (_, sealed), *_ = list_segments(tmp_path)
    os.chmod(sealed, 0o644)
    data = sealed.read_bytes()
    sealed.write_bytes(data[:-5])
    with pytest.raises(LogCorrupt) as info:
        list(log.read())
    assert info.value.path == str(sealed)
    assert info.value.line == data.count(b"\n")


def test_a_watermark_file_cut_short_by_hand_is_restored(tmp_path: Path):
    log = make_log(tmp_path)
    log.append(notes("a"))
    (tmp_path / ".synced").write_bytes(b"")  # the mapping now lies beyond the end of the file
    stored = log.append(notes("b"))  # must not die of SIGBUS; syncs itself
    (_, seg), *_ = list_segments(tmp_path)
    assert read_mark(tmp_path) == (0, 1, seg.stat().st_size)
    assert [ev.seq for ev in stored] == [2]
