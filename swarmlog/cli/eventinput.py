"""Checking events typed on the command line, with errors a person can act on.

``swarmlog append`` turns a JSON object into an event. msgspec's own messages (``Expected `str`,
got `int` - at `$.text```) name the path but not the kind, the bad value or what to do; the
functions here rewrite them as ``note.text must be a string, got 5 (int)``. They also refuse keys
that are not fields of the kind, which the log's decoder ignores on purpose (a log written by a
newer version must still decode): that leniency is for reading history, not for fresh input.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import re
from typing import Any

import msgspec
import msgspec.inspect as mi

from swarmlog.errors import MISSING, path_steps, value_at
from swarmlog.events import ALL_KINDS, EventBase

__all__ = [
    "MAX_AHEAD_S",
    "explain_invalid",
    "explain_not_json",
    "invalid_utf8",
    "repeated_key",
    "show_json",
    "ts_problem",
    "unknown_fields",
    "utf8_bytes_problem",
]

_ENVELOPE = EventBase.__struct_fields__  # seq, ts, run, actor, key
_EXPECTED = re.compile(r"^Expected `(?P<want>[^`]+)`(?P<bound>.*?)(?:, got `(?P<got>[^`]+)`)?$")
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")
_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_WORDS = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "array": "an array",
    "object": "an object",
    "null": "null",
}
_SHOW_WIDTH = 40


@functools.cache
def _info(kind: str) -> mi.StructType:
    info = mi.type_info(ALL_KINDS[kind])
    assert isinstance(info, mi.StructType)
    return info


def explain_invalid(kind: str, obj: dict[str, Any], exc: msgspec.ValidationError) -> str:
    """Return msgspec's complaint about ``obj`` as one sentence naming kind, field, type, value."""
    m = _AT.match(str(exc))
    assert m is not None  # the pattern matches any text
    msg, path = m["msg"], m["path"] or ""
    where = f"{kind}{path}"
    expected = _EXPECTED.match(msg)
    if expected:
        want = " or ".join(_WORDS.get(w, w) for w in expected["want"].split(" | "))
        value = value_at(obj, path)
        found = value is not MISSING
        got = expected["got"]
        shown = show_json(value) if found else got
        if found and got and shown != got:  # 5 (int), but null, not null (null)
            shown += f" ({got})"
        tail = f", got {shown}" if shown else ""
        return f"{where} must be {want}{expected['bound']}{tail}"
    missing = _MISSING.match(msg)
    if missing:
        struct = _struct(_type_at(_info(kind), path))
        required = [f.encode_name for f in struct.fields if f.required] if struct else []
        listed = f" (required fields: {', '.join(required)})" if required else ""
        here = value_at(obj, path)
        extra = _extra_keys(here, struct, top=not path) if struct else []
        also = f"; {_not_fields(where, extra)}" if extra else ""
        return f"{where} is missing required field {missing['field']}{listed}{also}"
    return f"{where}: {msg[:1].lower()}{msg[1:]}"


def unknown_fields(kind: str, obj: dict[str, Any]) -> str | None:
    """Return why ``obj`` has a key that is not a field of ``kind`` (at any depth), else None."""
    return _unknown(obj, _info(kind), kind, top=True)


def _unknown(value: Any, t: mi.Type, where: str, *, top: bool = False) -> str | None:
    struct = _struct(t)
    if struct is not None and isinstance(value, dict):
        extra = _extra_keys(value, struct, top=top)
        if extra:
            return f"{_not_fields(where, extra)} (its fields: {', '.join(_fields(struct, top))})"
        for f in struct.fields:
            if f.encode_name in value:
                found = _unknown(value[f.encode_name], f.type, f"{where}.{f.encode_name}")
                if found:
                    return found
        return None
    item = _item(t)
    if item is not None and isinstance(value, list):
        for i, v in enumerate(value):
            found = _unknown(v, item, f"{where}[{i}]")
            if found:
                return found
    return None


def _extra_keys(value: Any, struct: mi.StructType, *, top: bool) -> list[str]:
    if not isinstance(value, dict):
        return []
    names = {f.encode_name for f in struct.fields}
    if top:
        names.add("kind")
    return [str(k) for k in value if k not in names]


def _not_fields(where: str, extra: list[str]) -> str:
    keys = ", ".join(f'"{k}"' for k in extra)
    return f"{where} has no field{'s' if len(extra) > 1 else ''} {keys}"


def _fields(struct: mi.StructType, top: bool) -> list[str]:
    names = [f.encode_name for f in struct.fields]
    if not top:
        return names
    own = [n for n in names if n not in _ENVELOPE]
    return own + [n for n in _ENVELOPE if n != "seq"]  # seq is assigned by the log


def _struct(t: mi.Type | None) -> mi.StructType | None:
    if isinstance(t, mi.StructType):
        return t
    if isinstance(t, mi.UnionType):
        return next((s for s in t.types if isinstance(s, mi.StructType)), None)
    return None


def _item(t: mi.Type | None) -> mi.Type | None:
    if isinstance(t, mi.ListType | mi.VarTupleType | mi.SetType | mi.FrozenSetType):
        return t.item_type
    if isinstance(t, mi.UnionType):
        return next((i for s in t.types if (i := _item(s)) is not None), None)
    return None


def _type_at(t: mi.Type | None, path: str) -> mi.Type | None:
    for step in path_steps(path):
        if isinstance(step, int):
            t = _item(t)
        else:
            struct = _struct(t)
            t = (
                next((f.type for f in struct.fields if f.encode_name == step), None)
                if struct
                else None
            )
    return t


def show_json(value: Any, width: int = _SHOW_WIDTH) -> str:
    """Return ``value`` as JSON, cut to ``width`` characters (ending in "…" when cut)."""
    text = msgspec.json.encode(value).decode()
    return text if len(text) <= width else text[: width - 1] + "…"


# Bytes and times a person typed (audit #7, #4)

MAX_AHEAD_S = 86_400.0  # a ts given by hand may be at most this far ahead of the clock
_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|.)", re.DOTALL)


class _Repeated(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Repeated(key)
        out[key] = value
    return out


def repeated_key(text: str) -> str | None:
    """The first key named twice in one object of ``text`` (JSON msgspec already accepted), or
    None. JSON leaves it undefined which of the two counts, so an event must not guess."""
    if text.count('"') < 4:  # no object with two keys
        return None
    try:
        json.loads(text, object_pairs_hook=_pairs)
    except _Repeated as exc:
        return exc.key
    except (ValueError, RecursionError):  # what only the stdlib parser refuses: not our check
        return None
    return None


def utf8_bytes_problem(raw: bytes) -> str | None:
    """Return ``not valid UTF-8: byte 0xff at offset 9`` for undecodable bytes, else None."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not valid UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start}"
    return None


def invalid_utf8(text: str) -> str | None:
    """Like ``utf8_bytes_problem`` for text Python decoded with ``surrogateescape`` (the command
    line, a terminal's stdin): the offset counts the bytes as they arrived."""
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as exc:  # a lone surrogate that did not come from a byte
        code = ord(text[exc.start])
        return f"not valid UTF-8: a lone surrogate U+{code:04X} at character {exc.start}"
    return utf8_bytes_problem(raw)


def explain_not_json(text: str, exc: Exception) -> str:
    """msgspec's reason ``text`` is not JSON, except that a lone UTF-16 surrogate escape
    (``\\ud800``), which msgspec reports as "Input data was truncated", is named as such."""
    pending: re.Match[str] | None = None  # a high surrogate escape waiting for its low half
    for m in _ESCAPE.finditer(text):
        code = int(m[1], 16) if m[1] else -1
        follows = pending is not None and m.start() == pending.end()
        if pending is not None and not (follows and 0xDC00 <= code <= 0xDFFF):
            return _lone(pending)
        if pending is not None:
            pending = None
            continue
        if 0xD800 <= code <= 0xDBFF:
            pending = m
        elif 0xDC00 <= code <= 0xDFFF:
            return _lone(m)
    if pending is not None:
        return _lone(pending)
    return str(exc)


def _lone(m: re.Match[str]) -> str:
    return (
        f"a lone UTF-16 surrogate escape {m[0]} at character {m.start()} (a JSON string holds "
        "valid Unicode only: pair a high \\ud800-\\udbff with a low \\udc00-\\udfff, or remove it)"
    )


def ts_problem(kind: str, ts: float, now: float) -> str | None:
    """Why a ``ts`` given by the user cannot go into the log, else None.

    Allowed: 0 (the log stamps the time of the append) or seconds since 1970-01-01 UTC up to one
    day ahead of ``now``; anything else (not finite, negative, a date past year 9999, or the far
    future) would break every reader that prints it, and the log is append-only.
    """
    if math.isfinite(ts) and 0 <= ts <= now + MAX_AHEAD_S:
        return None
    limit = dt.datetime.fromtimestamp(now + MAX_AHEAD_S, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"{kind}.ts = {ts!r} is not a usable time: ts is seconds since 1970-01-01 UTC, "
        f"from 0 up to one day ahead of now ({limit}); leave ts out to have the log stamp it"
    )
