"""Helpers the HTTP providers share: deadlines, error mapping, ``Retry-After``, secret scrubbing."""

from __future__ import annotations

import asyncio
import email.utils
import html
import math
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import httpx
import msgspec

from swarmlog.errors import ProviderError
from swarmlog.providers.base import ChatRequest, ChatResult, ProviderTimeout

__all__ = [
    "RETRYABLE_STATUSES",
    "decode_chunk",
    "elapsed_ms",
    "error_text",
    "guarded_call",
    "malformed_reply",
    "parse_retry_after",
    "request_timeout",
    "status_error",
]

# 408 request timeout, 425/429 back off, 499 client closed (Ollama), 5xx server trouble,
# 529 Anthropic overloaded.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 499, 500, 502, 503, 504, 529})

_MAX_SERVER_TEXT = 200


class _ErrorDetail(msgspec.Struct):
    message: str = ""
    type: str = ""


class _ErrorBody(msgspec.Struct):
    error: str | _ErrorDetail | None = None
    message: str = ""


def elapsed_ms(t0: float) -> float:
    """Return milliseconds since ``t0`` (a ``time.perf_counter`` reading)."""
    return (time.perf_counter() - t0) * 1000.0


def request_timeout(req: ChatRequest) -> httpx.Timeout:
    """Build the httpx timeouts for one call: every phase bounded by ``req.timeout_s``."""
    return httpx.Timeout(req.timeout_s, connect=min(req.timeout_s, 10.0))


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float:
    """Return the seconds a ``Retry-After`` header asks for (seconds or an HTTP date), else 0.

    A value that is not a finite number (``inf``, ``nan``, ``1e999``) is ignored like any other
    unreadable header: it would reach the log as ``retry_after_s``, and JSON has no infinity.
    """
    if not value:
        return 0.0
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else 0.0
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return 0.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


_HTML_HIDDEN = re.compile(r"<(head|script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_HTML_TAG = re.compile(r"<[^>]*>")
_HTML_TITLE = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)


def _page_text(text: str) -> str:
    """The words of an HTML error page (a proxy's 502): no head, scripts, styles or tags."""
    words = html.unescape(_HTML_TAG.sub(" ", _HTML_HIDDEN.sub(" ", text)))
    if words.strip():
        return words
    title = _HTML_TITLE.search(text)
    return html.unescape(title.group(1)) if title else ""


def _api_error(raw: bytes) -> bool:
    """Tell whether an error body is one of the APIs' own ({"error": ...} or {"message": ...})."""
    try:
        body = msgspec.json.decode(raw, type=_ErrorBody)
    except msgspec.DecodeError:
        return False
    return bool(body.error) or bool(body.message)


def error_text(raw: bytes) -> str:
    """Extract the server's error message from an error body of any of the three APIs."""
    try:
        body = msgspec.json.decode(raw, type=_ErrorBody)
    except msgspec.DecodeError:
        text = raw.decode("utf-8", "replace")
        if text.lstrip()[:1] == "<":
            text = _page_text(text)
    else:
        if isinstance(body.error, str):
            text = body.error
        elif isinstance(body.error, _ErrorDetail):
            text = body.error.message or body.error.type
        else:
            text = body.message or raw.decode("utf-8", "replace")
    text = " ".join(text.split())
    if len(text) > _MAX_SERVER_TEXT:
        text = text[:_MAX_SERVER_TEXT] + "…"
    return text or "(empty body)"


def status_error(
    *,
    api: str,
    endpoint: str,
    model: str,
    status: int,
    raw: bytes,
    headers: Mapping[str, str],
    scrub: Callable[[str], str] = str,
    sent_key: bool = False,
    path: str = "",
) -> ProviderError:
    """Map an HTTP error answer to a ``ProviderError`` that says what to do about it.

    ``sent_key`` tells whether the request carried an API key (a 401/403's advice depends on it);
    ``path`` is the request's path, named when a 404 says nothing serves it.
    """
    said = scrub(error_text(raw))
    retry_after = parse_retry_after(headers.get("retry-after"))
    location = headers.get("location")
    if 300 <= status < 400 and location:
        return ProviderError(
            f"{api} endpoint {endpoint} redirects to {scrub(location)[:200]} (HTTP {status}); "
            f"set the endpoint to the address it redirects to (swarmlog does not follow "
            f"redirects)",
            status=status,
        )
    if status == 404 and not _api_error(raw):
        # Not the API's own error body (Go's '404 page not found', FastAPI's {"detail": ...}):
        # nothing serves this API at that address, whatever the model.
        where = f"no {path}" if path else "no such API"
        return ProviderError(
            f"{api} endpoint {endpoint} has {where} (HTTP 404: {said}); check the endpoint URL "
            f"and the api setting ({api}) in swarmlog.toml",
            status=404,
        )
    if status == 404:
        if api in ("ollama", "sim"):
            hint = f'run "ollama pull {model}" on that host or fix the model name in swarmlog.toml'
        elif api == "openai":
            hint = "check the served model names (GET /v1/models) and swarmlog.toml"
        else:
            hint = "check the model name in swarmlog.toml"
        return ProviderError(
            f'model "{model}" not found at {endpoint} ({api} said: {said}); {hint}',
            status=404,
        )
    if status in (401, 403):
        if api == "anthropic":
            what, hint = "the credentials", "check ANTHROPIC_API_KEY and what the key may use"
        elif sent_key:
            what, hint = "the credentials", "check the API key"
        else:
            what = "the request"
            hint = (
                f"swarmlog sends no API key to {api} endpoints: serve the model without one, "
                f"or check what answers at this address (a proxy?)"
            )
        return ProviderError(
            f"{api} endpoint {endpoint} refused {what} (HTTP {status}: {said}); {hint}",
            status=status,
        )
    retryable = status in RETRYABLE_STATUSES
    what = "retrying later may help" if retryable else "fix the request or the configuration"
    return ProviderError(
        f"{api} endpoint {endpoint} answered HTTP {status} for model {model}: {said}; {what}",
        status=status,
        retryable=retryable,
        retry_after=retry_after,
    )


def malformed_reply(
    *,
    api: str,
    endpoint: str,
    model: str,
    status: int,
    exc: Exception,
    line: str | bytes,
    scrub: Callable[[str], str] = str,
) -> ProviderError:
    """The error for a reply line that does not decode: what msgspec said and the line itself."""
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    text = " ".join(text.split())
    if len(text) > 80:
        text = text[:80] + "…"
    return ProviderError(
        f"{api} endpoint {endpoint} (model {model}) sent a malformed response "
        f"({scrub(str(exc))} in {scrub(text)!r}); check that the api setting matches the server",
        status=status,
        retryable=True,
    )


class _HasError(Protocol):
    @property
    def error(self) -> Any: ...


_C = TypeVar("_C", bound=_HasError)


def decode_chunk(
    decoder: msgspec.json.Decoder[_C],
    line: str,
    *,
    api: str,
    endpoint: str,
    model: str,
    status: int,
    scrub: Callable[[str], str] = str,
) -> _C:
    """Decode one streamed chunk; ``ProviderError`` if it is malformed or reports an error."""
    try:
        chunk = decoder.decode(line)
    except msgspec.DecodeError as exc:
        raise malformed_reply(
            api=api, endpoint=endpoint, model=model, status=status, exc=exc, line=line, scrub=scrub
        ) from exc
    if chunk.error is not None:
        said = scrub(error_text(msgspec.json.encode({"error": chunk.error})))  # one line
        raise ProviderError(
            f"{api} endpoint {endpoint} reported an error mid-stream for "
            f"model {model}: {said}; retrying may help",
            status=status,
            retryable=True,
        )
    return chunk


def _certificate_error(exc: BaseException) -> str | None:
    """The reason a TLS handshake refused the server's certificate, if that is the failure."""
    seen: BaseException | None = exc
    for _ in range(8):  # httpx wraps httpcore's error, which wraps ssl's
        if seen is None:
            break
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen.verify_message or str(seen)
        seen = seen.__cause__ or seen.__context__
    return None


async def guarded_call(
    call: Callable[[float], Awaitable[ChatResult]],
    req: ChatRequest,
    *,
    api: str,
    endpoint: str,
    scrub: Callable[[str], str] = str,
) -> ChatResult:
    """Run ``call(t0)`` under the request's overall deadline; map transport failures to errors."""
    t0 = time.perf_counter()
    where = f"{api} endpoint {endpoint} (model {req.model})"
    try:
        async with asyncio.timeout(req.timeout_s):
            return await call(t0)
    except TimeoutError as exc:
        raise ProviderTimeout(
            f"{where} did not finish within timeout_s={req.timeout_s:g}; "
            f"raise the model's timeout or check the server",
            retryable=True,
        ) from exc
    except httpx.TimeoutException as exc:
        raise ProviderTimeout(
            f"{where} timed out ({type(exc).__name__}) with timeout_s={req.timeout_s:g}; "
            f"raise the model's timeout or check the server",
            retryable=True,
        ) from exc
    except httpx.ConnectError as exc:
        untrusted = _certificate_error(exc)
        if untrusted is not None:
            raise ProviderError(
                f"the TLS certificate of {endpoint} is not trusted ({untrusted}); point "
                f"SSL_CERT_FILE at the CA that signed it, or fix the server's certificate",
            ) from exc
        raise ProviderError(
            f"cannot connect to {where}: {scrub(str(exc)) or type(exc).__name__}; "
            f"is the server running?",
            retryable=True,
        ) from exc
    except httpx.HTTPError as exc:
        raise ProviderError(
            f"connection to {where} failed ({type(exc).__name__}: "
            f"{scrub(str(exc)) or 'no detail'}); retrying may help",
            retryable=True,
        ) from exc
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ProviderError(
            f"{where} sent a malformed response ({scrub(str(exc))}); check that the api "
            f"setting matches the server",
            retryable=True,
        ) from exc
