"""The event catalogue: every kind round-trips through JSON and through the log's framing."""

from __future__ import annotations

import types
import typing
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmlog.errors import LogCorrupt
from swarmlog.events import ALL_KINDS, EVENT_TYPES, EventBase, Note, decode, encode, kind_of
from swarmlog.log.framing import check_line, decode_lines, frame, frame_many

REQUIRED_KINDS = """
run_started run_ended config_loaded phase_entered phase_completed agent_registered
agent_status_changed task_submitted task_routed task_batched task_claimed task_started
task_completed task_failed task_timed_out task_cancelled model_call_finished hardware_sampled
model_server_sampled message_sent message_rejected trust_changed checkpoint_written review_opened
position_taken round_closed decision_made detector_fired escalation_raised escalation_resolved
alert_raised alert_delivered circuit_opened circuit_closed human_command note
""".split()

# Strategies built from the Struct types themselves, so a new kind or field is covered for free.

_TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
_JSON: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=6,
)


def _strategy(tp: Any) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(tp)
    if tp is Any:
        return _JSON
    if tp is type(None):
        return st.none()
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers(-(2**63), 2**63 - 1)
    if tp is float:
        return st.floats(allow_nan=False, allow_infinity=False)
    if tp is str:
        return _TEXT
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(_strategy(a) for a in typing.get_args(tp)))
    if origin is tuple:
        item, _ellipsis = typing.get_args(tp)
        return st.lists(_strategy(item), max_size=3).map(tuple)
    if origin is dict:
        key, value = typing.get_args(tp)
        return st.dictionaries(_strategy(key), _strategy(value), max_size=3)
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return _struct(tp)
    raise AssertionError(f"no strategy for field type {tp!r}; extend _strategy")


def _struct(cls: type[msgspec.Struct]) -> st.SearchStrategy[Any]:
    fields = {f.encode_name: _strategy(f.type) for f in msgspec.structs.fields(cls)}
    return st.fixed_dictionaries(fields).map(lambda kw: cls(**kw))


_ANY_EVENT = st.one_of(*(_struct(t) for t in EVENT_TYPES))


def test_catalogue_has_every_kind_the_issue_names():
    assert set(REQUIRED_KINDS) <= set(ALL_KINDS)
    assert all(kind_of(ALL_KINDS[k]) == k for k in ALL_KINDS)  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", EVENT_TYPES, ids=lambda c: kind_of(c))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_every_kind_round_trips(cls: type[EventBase], data: st.DataObject):
    event = data.draw(_struct(cls))
    assert decode(encode(event)) == event
    line = frame(event)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert check_line(line[:-1]) == ""
    got = decode_lines([line[:-1]], path="seg", first_line_no=1, expected_seq=event.seq)
    assert got == [event]
    assert type(got[0]) is cls


@settings(max_examples=60, deadline=None)
@given(events=st.lists(_ANY_EVENT, min_size=1, max_size=6), first=st.integers(1, 10**12))
def test_a_batch_of_mixed_kinds_frames_and_decodes_in_order(events, first):
    stamped = [msgspec.structs.replace(e, seq=first + i) for i, e in enumerate(events)]
    lines = frame_many(stamped).split(b"\n")
    assert lines[-1] == b""
    assert decode_lines(lines[:-1], path="seg", first_line_no=1, expected_seq=first) == stamped
    assert frame_many(stamped) == b"".join(map(frame, stamped))  # the fast path, byte for byte


@settings(max_examples=80, deadline=None)
@given(event=_ANY_EVENT, where=st.floats(0, 1, exclude_max=True), byte=st.integers(0, 255))
def test_any_changed_byte_is_detected(event, where, byte):
    line = bytearray(frame(msgspec.structs.replace(event, seq=1))[:-1])
    pos = int(where * len(line))
    if line[pos] == byte or byte == ord("\n"):
        byte = (line[pos] + 1) % 256 if line[pos] + 1 != ord("\n") else line[pos] + 2
    line[pos] = byte
    assert check_line(bytes(line)) != ""
    with pytest.raises(LogCorrupt) as info:
        decode_lines([bytes(line)], path="seg-7", first_line_no=41, expected_seq=1)
    assert (info.value.path, info.value.line) == ("seg-7", 41)


def test_seq_gap_is_reported_at_its_line():
    lines = frame_many([Note(text="a", seq=1), Note(text="b", seq=3)]).split(b"\n")[:-1]
    with pytest.raises(LogCorrupt) as info:
        decode_lines(lines, path="s", first_line_no=10, expected_seq=1)
    assert info.value.line == 11
    assert "seq 3 where 2 was expected" in str(info.value)


def test_a_wrong_field_type_names_the_field_path():
    bad = b'{"kind":"task_claimed","task_id":"t","agent":7,"lease_until":1.0}'
    with pytest.raises(msgspec.ValidationError, match=r"\$\.agent"):
        decode(bad)


def test_unknown_fields_are_ignored_so_newer_logs_still_decode():
    assert decode(b'{"kind":"note","text":"x","added_later":1}') == Note(text="x")
