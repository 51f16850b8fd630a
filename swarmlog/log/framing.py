"""How one event becomes one line of the log, and how lines become events again.

A record is the event's compact JSON with a CRC-32 of those bytes spliced in as the last field::

    {"kind":"note","text":"hi","seq":7,"ts":1795000000.1,"crc":"1c291ca3"}\\n

The checksum covers every byte of the line before ``,"crc":``. The line stays plain JSON (``jq``
reads it), the newline ends every complete record so a reader can always resynchronise, and a
decoder that knows nothing of ``crc`` ignores it.
"""

from __future__ import annotations

import gc
import math
import zlib
from collections.abc import Iterable, Sequence
from operator import attrgetter, itemgetter

import msgspec

from swarmlog.errors import LogCorrupt, LogError
from swarmlog.events import DECODER, ENCODER, Event, EventBase, decode, decode_many, kind_of

__all__ = [
    "SUFFIX_LEN",
    "check_line",
    "check_storable",
    "decode_lines",
    "first_bad_line",
    "frame",
    "frame_many",
    "framed",
    "line_seq",
]

_CRC_OPEN = b',"crc":"'
_CRC_CLOSE = b'"}'
SUFFIX_LEN = len(_CRC_OPEN) + 8 + len(_CRC_CLOSE)  # 18 bytes after the body, before "\n"
_SUFFIX_FMT = _CRC_OPEN + b"%08x" + _CRC_CLOSE
_BODY_OF = itemgetter(slice(None, -SUFFIX_LEN))
_SEQ_OF = attrgetter("seq")
_OPEN_BODY_OF = itemgetter(slice(None, -1))
_LINE_FMT = b'%s,"crc":"%08x"}\n'


class _SeqOnly(msgspec.Struct):
    seq: int = 0


_SEQ_DECODER = msgspec.json.Decoder(_SeqOnly)


def frame(event: EventBase) -> bytes:
    """Return the record for one event, newline included."""
    raw = ENCODER.encode(event)
    if b"null" in raw:
        check_storable([event], [raw])
    body = raw[:-1]  # drop the closing brace; the crc field closes it
    return b'%s,"crc":"%08x"}\n' % (body, zlib.crc32(body))


def check_storable(events: Sequence[EventBase], encoded: Sequence[bytes]) -> None:
    """Raise LogError for an event holding a float JSON cannot carry (inf, nan).

    msgspec writes such a float as ``null``: the record would then fail to decode (LogCorrupt
    for every later reader) or come back as None. Only records holding ``null`` are checked, by
    decoding them again; the caller writes nothing when one differs.
    """
    for ev, raw in zip(events, encoded, strict=True):
        if b"null" not in raw:
            continue
        try:
            same = DECODER.decode(raw) == ev
        except msgspec.DecodeError:
            same = False
        # Decoding may differ for harmless reasons (a tuple inside a dict comes back a list):
        # only an inf or nan found in the event is refused.
        where = "" if same else _non_finite(ev, "")
        if where:
            raise LogError(
                f"cannot append {kind_of(ev)}: {where} is not a finite number (inf and nan "
                f"cannot be stored in the log); nothing was written"
            )


def _non_finite(value: object, path: str) -> str:
    """The path of the first inf or nan inside ``value``, or ""."""
    if isinstance(value, float):
        return "" if math.isfinite(value) else f"{path or 'the value'} = {value!r}"
    if isinstance(value, msgspec.Struct):
        value = msgspec.structs.asdict(value)
    if isinstance(value, dict):
        items: Iterable[tuple[object, object]] = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return ""
    for k, v in items:
        found = _non_finite(v, f"{path}.{k}" if path else str(k))
        if found:
            return found
    return ""


def frame_many(events: Iterable[EventBase]) -> bytes:
    """Return the records for a batch, ready for one ``write``.

    Same bytes as ``frame`` per event, but encoded in one call and checksummed inside ``map``:
    the append path's CPU cost per event is mostly here.
    """
    batch = events if isinstance(events, list) else list(events)
    raw = ENCODER.encode_lines(batch)
    lines = raw.split(b"\n")[:-1]
    if b"null" in raw:
        check_storable(batch, lines)
    bodies = list(map(_OPEN_BODY_OF, lines))  # each record minus its "}"
    return b"".join(map(_LINE_FMT.__mod__, zip(bodies, map(zlib.crc32, bodies), strict=True)))


def framed(line: bytes) -> bool:
    """Whether ``line`` (without its newline) ends in a checksum field, right or not."""
    return len(line) > SUFFIX_LEN and line[-SUFFIX_LEN:-10] == _CRC_OPEN and line[-2:] == _CRC_CLOSE


def check_line(line: bytes) -> str:
    """Return "" if ``line`` (without its newline) is a well-formed record, else the problem."""
    if not framed(line):
        return "not a swarmlog record (no checksum field)"
    try:
        stored = int(line[-10:-2], 16)
    except ValueError:
        return "checksum field is not hexadecimal"
    if zlib.crc32(line[:-SUFFIX_LEN]) != stored:
        return "checksum mismatch"
    return ""


def first_bad_line(lines: Sequence[bytes]) -> tuple[int, str]:
    """Return (index, problem) of the first line that is not a well-formed record, or (-1, "").

    The read path's hot spot, so every per-line step runs inside C (map, slicing, crc32, %):
    each line's 18-byte suffix must equal the suffix its body's checksum produces. Only when
    the batch fails does the slow loop run, to name the first bad line.
    """
    if all(
        map(bytes.endswith, lines, map(_SUFFIX_FMT.__mod__, map(zlib.crc32, map(_BODY_OF, lines))))
    ):
        return -1, ""
    for i, line in enumerate(lines):
        problem = check_line(line)
        if problem:
            return i, problem
    return -1, ""  # pragma: no cover - the batch test and check_line agree


def line_seq(line: bytes) -> int:
    """Return the seq of a record already checked with ``check_line``."""
    return _SEQ_DECODER.decode(line).seq


def decode_lines(
    lines: Sequence[bytes],
    *,
    path: str,
    first_line_no: int,
    expected_seq: int,
    raw: bytes | memoryview | None = None,
) -> list[Event]:
    """Check, decode and seq-check complete records (newlines stripped).

    ``raw``, when given, is the same records as one newline-separated buffer (what was read);
    decoding it directly saves joining the lines again.

    Raises ``LogCorrupt`` naming the exact file and line of the first bad record: a checksum that
    does not match, a record that does not decode, or a seq that breaks the dense sequence.
    """
    if not lines:
        return []
    bad, problem = first_bad_line(lines)
    if problem:
        raise LogCorrupt(path, first_line_no + bad, problem)
    was_enabled = gc.isenabled()
    gc.disable()  # decoding allocates an object per field; cyclic GC passes would triple the cost
    try:
        if raw is None:
            events = decode_many(b"[" + b",".join(lines) + b"]")
        else:
            events = DECODER.decode_lines(raw)
    except msgspec.DecodeError:
        for i, line in enumerate(lines):  # slow path: find the line that does not decode
            try:
                decode(line)
            except msgspec.DecodeError as exc:
                raise LogCorrupt(path, first_line_no + i, f"not an event ({exc})") from exc
        raise
    finally:
        if was_enabled:
            gc.enable()
    if list(map(_SEQ_OF, events)) != list(range(expected_seq, expected_seq + len(events))):
        seq = expected_seq
        for i, event in enumerate(events):
            if event.seq != seq:
                raise LogCorrupt(
                    path,
                    first_line_no + i,
                    f"seq {event.seq} where {seq} was expected (gap or repeat)",
                )
            seq += 1
    return events
