"""Providers against loopback servers that misbehave the ways a night meets: what the calls
return, which ``model_call_finished`` events they leave in a real log, and the one-line error."""

from __future__ import annotations

import asyncio
import email.utils
import json
import re
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from swarmlog.events import ModelCallFinished
from swarmlog.log import FileLog, FileReader
from swarmlog.providers.retry import RetryPolicy
from swarmlog.runtime.agent import CallOutcome
from swarmlog.runtime.board import TaskView
from swarmlog.runtime.calls import ModelCalls
from swarmlog.runtime.replies import parse_reply
from swarmlog.sim.http import Request, Response, serve

pytestmark = pytest.mark.anyio

Handler = Callable[[Request, Response], Awaitable[None]]
TASK = TaskView(task_id="t1", title="Build it", task_kind="implement", role="builder")
FAST = RetryPolicy(max_attempts=2, base_s=0.01, max_s=0.02)


async def agent_call(url: str, api: str = "ollama", **profile: Any) -> CallOutcome:
    """One call the way an agent process makes it (ModelCalls), with fast retries."""
    calls = ModelCalls("builder-1", seed=3, policy=FAST)
    try:
        full = {"endpoint": url, "model": "qwen3:32b", "api": api, "timeout_s": 5, **profile}
        return await calls("worker", full, TASK, "do it")
    finally:
        await calls.aclose()


def through_the_log(tmp_path: Path, outcome: CallOutcome) -> list[ModelCallFinished]:
    """Append the call's events to a real log in tmp_path and read them back."""
    log = FileLog(tmp_path / "events")
    try:
        log.append(outcome.events)
    finally:
        log.close()
    reader = FileReader(tmp_path / "events")
    try:
        back = reader.poll()
    finally:
        reader.close()
    assert all(isinstance(e, ModelCallFinished) for e in back)
    return back  # type: ignore[return-value]


def one_line(text: str) -> bool:
    return bool(text) and "\n" not in text and len(text) < 600


# Retry-After


@pytest.mark.parametrize("header", ["1e999", "inf", "-inf", "nan", "Infinity"])
async def test_a_non_finite_retry_after_is_ignored_and_the_log_stays_readable(
    tmp_path: Path, header: str
) -> None:
    # float('1e999') is inf; msgspec writes inf as null, and a float field holding null no
    # longer decodes: one odd header made the log unreadable from that record on.
    async def handler(req: Request, resp: Response) -> None:
        await resp.send(503, json.dumps({"error": "server busy"}), headers={"Retry-After": header})

    async with serve(handler) as url:
        outcome = await agent_call(url)
    events = through_the_log(tmp_path, outcome)
    assert [(e.outcome, e.http_status, e.retry_after_s) for e in events] == [
        ("rejected", 503, 0.0),
        ("rejected", 503, 0.0),
    ]
    assert one_line(outcome.error) and "gave up after 2 attempts" in outcome.error


# Errors reported inside a 200 stream


def sse_stream(*lines: bytes) -> Handler:
    async def handler(req: Request, resp: Response) -> None:
        await resp.start(200, content_type="text/event-stream")
        for line in lines:
            await resp.write(line)
        await resp.end()

    return handler


@pytest.mark.parametrize(
    "error",
    [
        {"message": "Engine died\nsee the server log", "type": "InternalServerError", "code": 500},
        "Engine died\nsee the server log",
    ],
)
async def test_an_openai_error_mid_stream_is_reported_as_the_servers_words(
    tmp_path: Path, error: object
) -> None:
    first = {"model": "served-32b", "choices": [{"index": 0, "delta": {"content": "{"}}]}
    handler = sse_stream(
        b"data: " + json.dumps(first).encode() + b"\n\n",
        b"data: " + json.dumps({"error": error}).encode() + b"\n\n",
    )
    async with serve(handler) as url:
        outcome = await agent_call(url, api="openai")
    events = through_the_log(tmp_path, outcome)
    assert [(e.outcome, e.http_status) for e in events] == [("error", 200), ("error", 200)]
    assert "reported an error mid-stream" in outcome.error
    assert "Engine died see the server log" in outcome.error and one_line(outcome.error)


async def test_an_ollama_error_mid_stream_is_one_line_and_bounded(tmp_path: Path) -> None:
    trace = "llama runner process has terminated: CUDA error\n" + "  at frame\n" * 200

    async def handler(req: Request, resp: Response) -> None:
        await resp.start(200)
        piece = {"model": "qwen3:32b", "message": {"content": "{"}, "done": False}
        await resp.write(json.dumps(piece).encode() + b"\n")
        await resp.write(json.dumps({"error": trace}).encode() + b"\n")
        await resp.end()

    async with serve(handler) as url:
        outcome = await agent_call(url)
    events = through_the_log(tmp_path, outcome)
    assert [(e.outcome, e.http_status) for e in events] == [("error", 200), ("error", 200)]
    assert "reported an error mid-stream" in outcome.error
    assert "llama runner process has terminated: CUDA error at frame" in outcome.error
    assert one_line(outcome.error) and all(one_line(e.error) for e in events)


# A 200 that is not the protocol's reply


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            "Overloaded",
        ),
        ({"id": "msg_1", "type": "message", "role": "assistant"}, "content"),
    ],
)
async def test_an_anthropic_200_without_content_is_an_error_not_an_empty_reply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: object, said: str
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-KEY-42")

    async def handler(req: Request, resp: Response) -> None:
        await resp.send(200, json.dumps(body))

    async with serve(handler) as url:
        outcome = await agent_call(url, api="anthropic")
    events = through_the_log(tmp_path, outcome)
    assert [(e.outcome, e.http_status, e.reply) for e in events] == [("error", 200, "")] * 2
    assert outcome.text == "" and said in outcome.error and one_line(outcome.error)
    assert "sk-ant-test-KEY-42" not in outcome.error


async def test_an_anthropic_reply_of_tool_or_thinking_blocks_keeps_only_the_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-KEY-42")
    body = {
        "model": "claude-x",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "s"},
            {"type": "text", "text": '{"summary": "ok"}'},
            {"type": "tool_use", "id": "t", "name": "n", "input": {"text": "not this"}},
        ],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 3, "output_tokens": 4, "cache_read_input_tokens": None},
    }

    async def handler(req: Request, resp: Response) -> None:
        await resp.send(200, json.dumps(body))

    async with serve(handler) as url:
        outcome = await agent_call(url, api="anthropic")
    (event,) = through_the_log(tmp_path, outcome)
    assert outcome.error == "" and outcome.text == '{"summary": "ok"}'
    assert (event.outcome, event.prompt_tokens, event.completion_tokens) == ("ok", 3, 4)


async def test_an_openai_server_that_ignores_stream_true_is_read_as_one_completion(
    tmp_path: Path,
) -> None:
    # Some OpenAI-compatible gateways answer stream=true with one JSON completion. It was
    # reported as 'closed the stream before data: [DONE]; retrying may help', and retried.
    body = {
        "id": "c1",
        "model": "served-32b",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": '{"a": 1}'},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14},
    }

    async def handler(req: Request, resp: Response) -> None:
        await resp.send(200, json.dumps(body, indent=2))  # pretty-printed: several lines

    async with serve(handler) as url:
        outcome = await agent_call(url + "/v1", api="openai")
    (event,) = through_the_log(tmp_path, outcome)
    assert outcome.error == "" and outcome.text == '{"a": 1}'
    assert (event.outcome, event.http_status, event.model_name) == ("ok", 200, "served-32b")
    assert (event.prompt_tokens, event.completion_tokens) == (9, 5)


@pytest.mark.parametrize(
    ("body", "ctype", "said"),
    [
        (
            json.dumps({"error": {"message": "quota exhausted", "type": "x"}}),
            "application/json",
            "quota exhausted",
        ),
        ("<html><body>Sign in to the proxy</body></html>", "text/html", "Sign in to the proxy"),
    ],
)
async def test_an_openai_200_that_is_neither_events_nor_a_completion_says_what_came(
    tmp_path: Path, body: str, ctype: str, said: str
) -> None:
    async def handler(req: Request, resp: Response) -> None:
        await resp.send(200, body, content_type=ctype)

    async with serve(handler) as url:
        outcome = await agent_call(url, api="openai")
    events = through_the_log(tmp_path, outcome)
    assert [(e.outcome, e.http_status) for e in events] == [("error", 200)] * 2
    assert "neither server-sent events nor a chat completion" in outcome.error
    assert said in outcome.error and one_line(outcome.error)


# Proxies from the environment


async def test_calls_to_model_servers_ignore_proxy_variables_as_doctor_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # doctor and init probe with trust_env=False; the agents' calls used the environment's
    # proxy, so with HTTP_PROXY set (and no NO_PROXY) doctor said the Ollama was fine while
    # every call of the night failed 'cannot connect ... is the server running?'.
    async def handler(req: Request, resp: Response) -> None:
        await resp.start(200)
        done = {"model": "qwen3:32b", "message": {"content": "{}"}, "done": True}
        await resp.write(json.dumps(done).encode() + b"\n")
        await resp.end()

    async def proxy(req: Request, resp: Response) -> None:
        seen.append(req.path)
        if req.path == "/v1/messages":
            body: dict[str, object] = {
                "model": "claude-x",
                "content": [{"type": "text", "text": "via proxy"}],
            }
        else:  # an OpenAI-compatible API on the internet, answered as one completion
            body = {"choices": [{"message": {"content": "hosted via proxy"}}]}
        await resp.send(200, json.dumps(body))

    seen: list[str] = []
    async with serve(handler) as url, serve(proxy) as proxy_url:
        for var in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
            monkeypatch.setenv(var, proxy_url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-KEY-42")
        outcome = await agent_call(url)
        # the Director's hosted API still goes through the proxy the environment names
        director = await agent_call("http://api.anthropic.invalid", api="anthropic")
        # so does a hosted OpenAI-compatible API: only local and private addresses skip it
        hosted = await agent_call("http://models.example.invalid/v1", api="openai")
        for host in ("localhost", "gpu-box", "ollama.lan", "10.1.2.3", "100.100.1.2", "[fd00::7]"):
            local = await agent_call(f"http://{host}:9", api="openai", timeout_s=1)
            assert local.error, host  # nothing serves it; what matters: not via the proxy
    (event,) = through_the_log(tmp_path, outcome)
    assert outcome.error == "" and outcome.text == "{}" and event.outcome == "ok"
    assert director.error == "" and director.text == "via proxy"
    assert hosted.error == "" and hosted.text == "hosted via proxy"
    assert seen == ["/v1/messages", "/v1/chat/completions"]


# A stream with a line that does not decode


@pytest.mark.parametrize(
    ("api", "lines", "shown"),
    [
        (
            "ollama",  # an OpenAI-compatible server configured as api = "ollama"
            [b'data: {"choices": [{"delta": {"content": "x"}}]}\n\n', b"data: [DONE]\n\n"],
            'data: {"choices"',
        ),
        (
            "ollama",
            [
                json.dumps({"message": {"content": "{"}, "done": False}).encode() + b"\n",
                b'{"message": {"content": "x"}, "done": fal\n',
            ],
            '{"message": {"content": "x"}, "done": fal',
        ),
        ("openai", [b"data: {not json at all}\n\n", b"data: [DONE]\n\n"], "{not json at all}"),
    ],
)
async def test_a_line_that_does_not_decode_is_shown_in_the_error(
    tmp_path: Path, api: str, lines: list[bytes], shown: str
) -> None:
    async def handler(req: Request, resp: Response) -> None:
        await resp.start(200, content_type="application/x-ndjson")
        for line in lines:
            await resp.write(line)
        await resp.end()

    async with serve(handler) as url:
        outcome = await agent_call(url, api=api)
    events = through_the_log(tmp_path, outcome)
    assert [(e.outcome, e.http_status) for e in events] == [("error", 200)] * 2
    assert "sent a malformed response" in outcome.error and shown in outcome.error
    assert "check that the api setting" in outcome.error and one_line(outcome.error)


# Replies that are not what the task asked for


async def test_a_degenerate_reply_of_nested_brackets_is_an_invalid_reply_not_a_crash() -> None:
    # A small model looping on '[' until max_tokens: json.loads raised RecursionError out of
    # parse_reply, which the agent does not catch, so the agent process died on a reply.
    async def handler(req: Request, resp: Response) -> None:
        await resp.start(200)
        for _ in range(50):
            piece = {"model": "qwen3:32b", "message": {"content": "[" * 100}, "done": False}
            await resp.write(json.dumps(piece).encode() + b"\n")
        done = {"model": "qwen3:32b", "message": {"content": ""}, "done": True}
        await resp.write(json.dumps({**done, "done_reason": "length"}).encode() + b"\n")
        await resp.end()

    async with serve(handler) as url:
        outcome = await agent_call(url)
    assert outcome.error == "" and len(outcome.text) == 5000
    for kind in ("implement", "plan", "critique"):
        data, error = parse_reply(kind, outcome.text)
        assert data is None and one_line(error)
        assert error.startswith("reply is not JSON (nested deeper than")
        assert "answer with one JSON object" in error


async def test_the_directors_json_after_a_sentence_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The Messages API has no JSON mode: the Director's reply is asked for JSON in the prompt
    # and often comes with a sentence around it. A fenced block was read; bare JSON after a
    # sentence was 'reply is not JSON (Expecting value at char 0)', a paid retry each time.
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-KEY-42")
    plan = {
        "summary": "two steps",
        "tasks": [{"id": "a", "title": "A"}, {"id": "b", "title": "B", "deps": ["a"]}],
    }
    text = f"Here is the plan:\n\n{json.dumps(plan, indent=1)}\n\nSay {{if}} more is needed."

    async def handler(req: Request, resp: Response) -> None:
        body = {"model": "claude-x", "content": [{"type": "text", "text": text}]}
        await resp.send(200, json.dumps(body))

    async with serve(handler) as url:
        outcome = await agent_call(url, api="anthropic")
    data, error = parse_reply("plan", outcome.text)
    assert error == "" and data is not None
    assert [t["id"] for t in data["tasks"]] == ["a", "b"] and data["tasks"][1]["deps"] == ["a"]
    # text with no JSON object in it still gets the plain error
    assert parse_reply("plan", "I cannot do that.")[1].startswith("reply is not JSON (")
    assert parse_reply("plan", "I {cannot} do that.")[1].startswith("reply is not JSON (")


def test_a_reply_cut_short_still_says_it_is_not_json() -> None:
    # an inner object of a reply cut at its token limit must not be read as the reply
    cut = '{"results": [{"task_id": "a", "summary": "done"}, {"task_id": "b", "summary": "hal'
    data, error = parse_reply("batch", cut)
    assert data is None and error.startswith("reply is not JSON (Unterminated string")


@pytest.mark.parametrize(("load", "load_ms"), [("1.25e9", 1250.0), ("-5", 0.0), ("null", 0.0)])
async def test_ollama_timings_sent_as_floats_or_null_do_not_fail_the_call(
    tmp_path: Path, load: str, load_ms: float
) -> None:
    # The timing fields are optional; a compatible server that writes them as floats (or null)
    # failed the whole call as 'malformed', the reply thrown away.
    async def handler(req: Request, resp: Response) -> None:
        await resp.start(200)
        piece = {"model": "qwen3:32b", "message": {"content": '{"summary": "ok"}'}, "done": False}
        done = {
            "model": "qwen3:32b",
            "message": {"content": ""},
            "done": True,
            "done_reason": "stop",
            "load_duration": "LOAD",
            "total_duration": 2.5e9,
            "prompt_eval_count": 12.0,
            "eval_count": 7,
            "eval_duration": None,
        }
        for obj in (piece, done):
            await resp.write(json.dumps(obj).replace('"LOAD"', load).encode() + b"\n")
        await resp.end()

    async with serve(handler) as url:
        outcome = await agent_call(url)
    (event,) = through_the_log(tmp_path, outcome)
    assert outcome.error == "" and outcome.text == '{"summary": "ok"}'
    assert (event.outcome, event.load_ms, event.prompt_tokens, event.completion_tokens) == (
        "ok",
        load_ms,
        12,
        7,
    )


# Refused credentials


@pytest.mark.parametrize(
    ("api", "status", "body", "hint"),
    [
        (
            "openai",  # vLLM started with --api-key
            401,
            {"error": {"message": "Unauthorized", "type": "invalid_request_error"}},
            "swarmlog sends no API key to openai endpoints",
        ),
        ("ollama", 403, {"error": "forbidden by proxy"}, "swarmlog sends no API key to ollama"),
        (
            "anthropic",
            401,
            {"type": "error", "error": {"type": "authentication_error", "message": "bad key"}},
            "check ANTHROPIC_API_KEY",
        ),
    ],
)
async def test_refused_credentials_say_what_can_be_done_for_that_api(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    api: str,
    status: int,
    body: object,
    hint: str,
) -> None:
    # 'check the API key' was the advice for every api, though only the Director's API gets
    # a key (ANTHROPIC_API_KEY) and no setting gives one to an ollama or openai endpoint.
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-KEY-42")

    async def handler(req: Request, resp: Response) -> None:
        await resp.send(status, json.dumps(body))

    async with serve(handler) as url:
        outcome = await agent_call(url, api=api)
    (event,) = through_the_log(tmp_path, outcome)  # not retried
    assert (event.outcome, event.http_status) == ("error", status)
    assert f"HTTP {status}" in outcome.error and hint in outcome.error
    assert one_line(outcome.error) and "sk-ant-test-KEY-42" not in outcome.error


# Error pages


NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title>\r\n"
    + '<meta name="viewport" content="width=device-width, initial-scale=1">\r\n' * 3
    + "<style>body { font-family: sans-serif; margin: 0 auto; max-width: 40em }</style>\r\n"
    + "<script>window.dataLayer = window.dataLayer || [];</script></head>\r\n"
    + "<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n"
    + "<hr><center>upstream llama-server is down</center>\r\n</body>\r\n</html>\r\n"
)


@pytest.mark.parametrize("api", ["ollama", "openai", "anthropic"])
async def test_an_html_error_page_is_shown_as_its_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    # The page's markup (head, meta, style) filled the 200 characters kept of a server's
    # error, so the words that explain it never reached the person.
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-KEY-42")

    async def handler(req: Request, resp: Response) -> None:
        await resp.send(502, NGINX_502, content_type="text/html")

    async with serve(handler) as url:
        outcome = await agent_call(url, api=api)
    events = through_the_log(tmp_path, outcome)
    assert [(e.outcome, e.http_status) for e in events] == [("error", 502)] * 2
    assert "HTTP 502 for model qwen3:32b: 502 Bad Gateway upstream llama-server is down;" in (
        outcome.error
    )
    assert "<" not in outcome.error and one_line(outcome.error)


# 404: an unknown model or no such API at that address


@pytest.mark.parametrize(
    ("api", "suffix", "body", "ctype"),
    [
        # api = "ollama" with an OpenAI-style endpoint: POST /v1/api/chat; Ollama's router
        # answers an unknown path with Go's plain-text 404
        ("ollama", "/v1", "404 page not found", "text/plain"),
        ("openai", "", json.dumps({"detail": "Not Found"}), "application/json"),  # FastAPI
    ],
)
async def test_a_404_for_a_path_the_server_lacks_is_not_called_an_unknown_model(
    tmp_path: Path, api: str, suffix: str, body: str, ctype: str
) -> None:
    paths: list[str] = []

    async def handler(req: Request, resp: Response) -> None:
        paths.append(req.path)
        await resp.send(404, body, content_type=ctype)

    async with serve(handler) as url:
        outcome = await agent_call(url + suffix, api=api)
    (event,) = through_the_log(tmp_path, outcome)
    assert (event.outcome, event.http_status) == ("error", 404)
    assert "ollama pull" not in outcome.error and "not found at" not in outcome.error
    assert f"no {paths[0]} (HTTP 404" in outcome.error
    assert f"check the endpoint URL and the api setting ({api})" in outcome.error


@pytest.mark.parametrize(
    ("api", "body", "hint"),
    [
        ("ollama", {"error": "model 'qwen3:32b' not found"}, 'run "ollama pull qwen3:32b"'),
        (
            "openai",  # vLLM's error body
            {"object": "error", "message": "The model `qwen3:32b` does not exist.", "code": 404},
            "GET /v1/models",
        ),
    ],
)
async def test_a_404_for_an_unknown_model_still_names_the_model(
    tmp_path: Path, api: str, body: object, hint: str
) -> None:
    async def handler(req: Request, resp: Response) -> None:
        await resp.send(404, json.dumps(body))

    async with serve(handler) as url:
        outcome = await agent_call(url, api=api)
    through_the_log(tmp_path, outcome)
    assert outcome.error.startswith('model "qwen3:32b" not found at') and hint in outcome.error


# TLS


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subject = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    files = ["-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            *subject,
            *files,
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@asynccontextmanager
async def tls_ollama(cert: Path, key: Path) -> AsyncIterator[str]:
    """An Ollama /api/chat over TLS on loopback, answering each request with one final chunk."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    done = {"model": "qwen3:32b", "message": {"content": "{}"}, "done": True}
    body = json.dumps(done).encode() + b"\n"

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length:\s*(\d+)", head)
            await reader.readexactly(int(length.group(1)) if length else 0)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
                + b"Content-Length: %d\r\nConnection: close\r\n\r\n%b" % (len(body), body)
            )
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass  # a client that refused the certificate hangs up during the handshake
        finally:
            writer.close()

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0, ssl=ctx)
    try:
        yield f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


async def test_ssl_cert_file_is_honoured_for_a_model_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The model servers' clients ignore proxy variables, but a private CA named in
    # SSL_CERT_FILE is still how a TLS endpoint is trusted.
    cert, key = _self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    async with tls_ollama(cert, key) as url:
        outcome = await agent_call(url)
    assert outcome.error == "" and outcome.text == "{}"


@pytest.mark.parametrize("api", ["ollama", "anthropic"])
async def test_an_unreadable_ssl_cert_file_is_the_calls_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing-ca.pem"))
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-KEY-42")
    outcome = await agent_call("https://127.0.0.1:9", api=api)
    assert outcome.events == [] and one_line(outcome.error)
    assert outcome.error.startswith(f"cannot load the CA certificates of SSL_CERT_FILE={tmp_path}")


async def test_an_untrusted_tls_certificate_is_named_and_not_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It read 'cannot connect ... [SSL: CERTIFICATE_VERIFY_FAILED] ...; is the server running?'
    # and was retried, though the server was running and a retry cannot change the certificate.
    cert, key = _self_signed(tmp_path)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    async with tls_ollama(cert, key) as url:
        outcome = await agent_call(url)
    (event,) = through_the_log(tmp_path, outcome)
    assert event.outcome == "error" and one_line(outcome.error)
    assert f"the TLS certificate of {url} is not trusted" in outcome.error
    assert "self-signed certificate" in outcome.error and "SSL_CERT_FILE" in outcome.error
    assert "is the server running" not in outcome.error


# Redirects


@pytest.mark.parametrize("api", ["ollama", "openai"])
async def test_a_redirect_names_where_it_points_and_is_not_retried(
    tmp_path: Path, api: str
) -> None:
    # httpx does not follow redirects; a server moved to https (or behind a path) answered
    # 'HTTP 301 ...: (empty body); fix the request or the configuration'.
    async def handler(req: Request, resp: Response) -> None:
        await resp.send(
            301,
            "",
            content_type="text/plain",
            headers={"Location": "https://models.lan" + req.path},
        )

    async with serve(handler) as url:
        outcome = await agent_call(url, api=api)
    (event,) = through_the_log(tmp_path, outcome)
    assert (event.outcome, event.http_status) == ("error", 301) and one_line(outcome.error)
    assert "redirects to https://models.lan/" in outcome.error
    assert "set the endpoint to the address it redirects to" in outcome.error


async def test_a_retry_after_beyond_the_limit_names_both_values(tmp_path: Path) -> None:
    when = email.utils.formatdate(time.time() + 40.4, usegmt=True)  # an HTTP date: 39-40 s

    async def handler(req: Request, resp: Response) -> None:
        await resp.send(429, json.dumps({"error": "slow down"}), headers={"Retry-After": when})

    calls = ModelCalls("builder-1", seed=3, policy=RetryPolicy(max_retry_after_s=10))
    try:
        async with serve(handler) as url:
            profile = {"endpoint": url, "model": "qwen3:32b", "api": "ollama", "timeout_s": 5}
            outcome = await calls("worker", profile, TASK, "do it")
    finally:
        await calls.aclose()
    (event,) = through_the_log(tmp_path, outcome)
    assert event.outcome == "rejected" and 38 < event.retry_after_s <= 40.4
    assert re.search(
        r"\(Retry-After (39|40)(\.\d)?s exceeds max_retry_after_s=10s\)$", outcome.error
    )


async def test_an_anthropic_endpoint_written_with_v1_is_not_doubled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 'https://api.anthropic.com/v1' (as the OpenAI-style endpoints are written) posted to
    # /v1/v1/messages, and Anthropic's 404 body read as 'model ... not found'.
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-KEY-42")
    paths: list[str] = []

    async def handler(req: Request, resp: Response) -> None:
        paths.append(req.path)
        if req.path != "/v1/messages":
            error = {"type": "not_found_error", "message": "Not Found"}
            await resp.send(404, json.dumps({"type": "error", "error": error}))
            return
        await resp.send(200, json.dumps({"content": [{"type": "text", "text": "{}"}]}))

    async with serve(handler) as url:
        outcome = await agent_call(url + "/v1/", api="anthropic")
    assert outcome.error == "" and outcome.text == "{}" and paths == ["/v1/messages"]


# JSON mode a server does not offer


async def test_an_openai_server_refusing_json_object_mode_is_asked_again_without_it(
    tmp_path: Path,
) -> None:
    # LM Studio answers response_format {"type": "json_object"} with HTTP 400
    # "'response_format.type' must be 'json_schema' or 'text'": every call failed, not retried,
    # 'fix the request or the configuration', and no setting changes the request.
    bodies: list[dict[str, Any]] = []

    async def handler(req: Request, resp: Response) -> None:
        body = req.json()
        bodies.append(body)
        if body.get("response_format", {}).get("type") == "json_object":
            error = "'response_format.type' must be 'json_schema' or 'text'"
            await resp.send(400, json.dumps({"error": error}))
            return
        await resp.start(200, content_type="text/event-stream")
        chunk = {"model": "lmstudio-model", "choices": [{"delta": {"content": '{"a": 1}'}}]}
        await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n")
        await resp.end()

    calls = ModelCalls("builder-1", seed=3, policy=FAST)
    try:
        async with serve(handler) as url:
            profile = {"endpoint": url + "/v1", "model": "m", "api": "openai", "timeout_s": 5}
            first = await calls("worker", profile, TASK, "do it")
            second = await calls("worker", profile, TASK, "do it again")
    finally:
        await calls.aclose()
    assert (first.error, first.text, second.error, second.text) == ("", '{"a": 1}', "", '{"a": 1}')
    events = through_the_log(tmp_path, CallOutcome(text="", events=first.events + second.events))
    assert [e.outcome for e in events] == ["ok", "ok"]  # the refused request is no attempt
    # asked once with json_object, then without; the endpoint's answer is remembered
    assert [b.get("response_format") for b in bodies] == [{"type": "json_object"}, None, None]


async def test_other_400s_are_still_reported_at_once(tmp_path: Path) -> None:
    async def handler(req: Request, resp: Response) -> None:
        error = {"message": "This model's maximum context length is 8192 tokens", "code": 400}
        await resp.send(400, json.dumps({"object": "error", **error}))

    async with serve(handler) as url:
        outcome = await agent_call(url, api="openai")
    (event,) = through_the_log(tmp_path, outcome)
    assert (event.outcome, event.http_status) == ("error", 400)
    assert "maximum context length is 8192 tokens" in outcome.error


async def test_an_openai_server_refusing_stream_options_is_asked_again_without_them(
    tmp_path: Path,
) -> None:
    # Mistral's API (422) and older vLLM (400) refuse stream_options: 'Extra inputs are not
    # permitted'. Without them the reply streams as before, only without token counts.
    bodies: list[dict[str, Any]] = []

    async def handler(req: Request, resp: Response) -> None:
        body = req.json()
        bodies.append(body)
        if "stream_options" in body:
            detail = [{"type": "extra_forbidden", "loc": ["body", "stream_options"]}]
            msg = {"object": "error", "message": {"detail": detail}, "type": "invalid_request"}
            await resp.send(422, json.dumps(msg))
            return
        await resp.start(200, content_type="text/event-stream")
        chunk = {"choices": [{"delta": {"content": '{"a": 1}'}, "finish_reason": "stop"}]}
        await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\ndata: [DONE]\n\n")
        await resp.end()

    async with serve(handler) as url:
        outcome = await agent_call(url, api="openai")
    (event,) = through_the_log(tmp_path, outcome)
    assert outcome.error == "" and outcome.text == '{"a": 1}' and event.outcome == "ok"
    assert ["stream_options" in b for b in bodies] == [True, False]
    assert all(b["response_format"] == {"type": "json_object"} for b in bodies)
