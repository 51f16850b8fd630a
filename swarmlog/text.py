"""Text from the log made safe for a terminal or a Markdown file: no control characters, no
escape sequences, no bidi overrides, cut to what is shown before it is cleaned.

Kept apart from ``swarmlog.render`` (Jinja) so that commands printing to a terminal (``log``,
``alerts``, ``watch``) can use it without loading the templates.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["SPACE", "clean", "head", "plain_line"]

_BIDI = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"), None)
SPACE = re.compile(r"\s+")
# Format characters that text needs and that cannot hide or reorder it: the zero-width joiner
# and non-joiner (emoji sequences such as a family, Persian and Indic words), the left-to-right,
# right-to-left and Arabic letter marks, the soft hyphen.
_KEPT_FORMAT = frozenset("\u200c\u200d\u200e\u200f\u061c\u00ad")
# Not "Cn" (unassigned): that is this Python's Unicode version, and emoji newer than it (U+1FAE8)
# were shown as U+FFFD.
_REPLACED = frozenset({"Cc", "Cf", "Cs", "Co"})


def clean(value: object) -> str:
    """Return text safe to embed: valid UTF-8, no control or bidi-override characters (line
    ends and tabs are kept for the callers to fold or fence)."""
    text = value if isinstance(value, str) else str(value)
    if not text.isascii():
        # Lone surrogates (undecodable bytes kept by surrogateescape) become U+FFFD.
        text = text.encode("utf-8", "replace").decode("utf-8").translate(_BIDI)
    if text.isprintable():
        return text
    return "".join(
        ch
        if ch in "\r\n\t" or ch in _KEPT_FORMAT or unicodedata.category(ch) not in _REPLACED
        else "\ufffd"
        for ch in text
    )


def head(value: object, limit: int, strip: str | None = None) -> tuple[str, bool]:
    """The start of ``value`` that can hold ``limit`` shown characters, and whether more was cut.

    Cleaning and collapsing whitespace cost a pass over every character: each render cleaned a
    1 MB rationale or error in full (about half a second, every batch of events while following
    the log) to show its first few hundred. ``strip``: what is dropped from the start first.
    """
    text = value if isinstance(value, str) else str(value)
    text = text.lstrip(strip)
    bound = 2 * limit + 1024  # room for what cleaning removes: CRs, bidi overrides, spaces
    if limit and len(text) > bound:
        return text[:bound], True
    return text, False


def plain_line(value: object, limit: int = 0) -> str:
    """Return ``value`` as one line of plain text for a terminal (``status``, ``replay
    --explain``): every control character, ANSI escape sequence included, and every bidi
    override becomes U+FFFD, so text from a model cannot colour, retitle or rewrite the
    terminal; runs of whitespace, newlines too, become one space. At most ``limit`` characters
    (0: any)."""
    raw, cut = head(value, limit)
    text = SPACE.sub(" ", clean(raw)).strip()
    if limit and (len(text) > limit or cut):
        text = text[: limit - 1].rstrip() + "…"
    return text
