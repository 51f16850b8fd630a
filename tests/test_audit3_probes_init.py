"""``swarmlog init`` against an Ollama whose /api/tags or /api/show replies are odd or slow.

init read /api/tags a second time itself, unguarded: a non-object entry in "models",
``details: "x"`` or ``model_info: "x"`` raised AttributeError, ``size: 1e400`` OverflowError, and
a server dripping that answer a byte at a time held init forever. It must write what it can and
say, on one line each, what it could not read. Each test runs the real CLI in a child process
against a loopback server and loads the config it wrote in ``tmp_path``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from swarmlog.config import load_config
from swarmlog.sim.http import HttpServer, Request, Response

pytestmark = pytest.mark.anyio

GOOD_TAG = {"name": "qwen2.5:1.5b", "size": 986_000_000, "details": {"parameter_size": "1.5B"}}
SHOW_OK = {
    "model_info": {
        "general.architecture": "qwen2",
        "qwen2.block_count": 28,
        "qwen2.attention.head_count_kv": 2,
        "qwen2.attention.key_length": 128,
        "qwen2.context_length": 32768,
    }
}


LLAMA_SHOW = (
    '{"model_info": {"general.architecture": "llama", "llama.block_count": 1e400,'
    ' "llama.attention.head_count_kv": 8, "llama.attention.key_length": 128,'
    ' "llama.context_length": 1e300}, "parameters": "num_ctx 1e999"}'
)


@asynccontextmanager
async def ollama(tags: str, shows: dict[str, str], drip_tags_after: int = 0) -> AsyncIterator[str]:
    """An Ollama on loopback. ``tags`` and ``shows`` are raw JSON texts (1e400 is not a float
    json.dumps writes); with ``drip_tags_after`` = n, /api/tags answers n times at once and then
    one byte every 50 ms."""
    tags_asked = 0

    async def handler(req: Request, resp: Response) -> None:
        nonlocal tags_asked
        if req.path == "/api/version":
            await resp.send(200, '{"version": "0.12.3"}', content_type="application/json")
        elif req.path == "/api/ps":
            await resp.send(200, '{"models": []}', content_type="application/json")
        elif req.path == "/api/tags":
            tags_asked += 1
            if not drip_tags_after or tags_asked <= drip_tags_after:
                await resp.send(200, tags, content_type="application/json")
                return
            await resp.start(200, content_type="application/json")
            for byte in tags.encode() * 50:
                await resp.write(bytes([byte]))
                await asyncio.sleep(0.05)
            await resp.end()
        elif req.path == "/api/show":
            body = shows.get(str(req.json()["model"]), json.dumps(SHOW_OK))
            await resp.send(200, body, content_type="application/json")
        else:
            await resp.send(404, "404 page not found", content_type="text/plain")

    server = HttpServer(handler)
    await server.start()
    try:
        yield server.url
    finally:
        await server.stop()


async def init(root: Path, url: str, *extra: str) -> tuple[int, str, str, float]:
    """Run 'swarmlog init' in a child process; a child still running after 30 s is killed."""
    env = {
        k: v for k, v in os.environ.items() if k.upper() not in ("SSL_CERT_FILE", "SSL_CERT_DIR")
    }
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "swarmlog", "init", "--dir", str(root), "--ollama", url, *extra),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail("swarmlog init was still running after 30 s")
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode(), time.perf_counter() - t0


def written(root: Path) -> tuple[str, dict[str, dict[str, object]]]:
    text = (root / "swarmlog.toml").read_text()
    load_config(root / "swarmlog.toml")  # it loads and validates
    return text, tomllib.loads(text)["models"]


async def test_odd_tags_and_show_replies_are_written_around_and_named(tmp_path: Path) -> None:
    tags = (
        '{"models": ["qwen3:1.7b", 7, null, {"digest": "no name"},'
        ' {"name": "qwen3:32b", "details": "x", "size": 1e400},'
        ' {"name": "llama3:8b", "details": {"parameter_size": "8B"}, "size": "big"},'
        f" {json.dumps(GOOD_TAG)}]}}"
    )
    shows = {"qwen3:32b": '{"model_info": "x"}', "llama3:8b": LLAMA_SHOW}
    root = tmp_path / "ws"
    async with ollama(tags, shows) as url:
        code, out, err, _ = await init(root, url)
    assert (code, err) == (0, "")
    text, models = written(root)
    # every model that has a name is there, its size read from its name where the reply's is odd
    assert (models["qwen3-32b"]["model"], models["qwen3-32b"]["tier"]) == ("qwen3:32b", "deep")
    assert (models["llama3-8b"]["model"], models["llama3-8b"]["tier"]) == ("llama3:8b", "fast")
    assert '# model = "qwen2.5:1.5b"' in text  # the smaller fast one, offered as a comment
    # what could not be read: one line each on stdout, and in the config's header
    said = [line for line in out.splitlines() if line.startswith("not detected: ")]
    for words in (
        "4 entries of /api/tags",
        "details of qwen3:32b",
        "size of qwen3:32b",
        "size of llama3:8b",
        "shape of qwen3:32b",
    ):
        (line,) = [s for s in said if words in s]
        assert f"# Not detected: {line.removeprefix('not detected: ')}" in text


async def test_a_tags_reply_that_drips_ends_within_the_deadline(tmp_path: Path) -> None:
    # The probe's own /api/tags answers at once; init's second read of it drips a byte every
    # 50 ms. httpx bounds each read, not the answer, so init waited for minutes.
    tags = json.dumps({"models": [GOOD_TAG]})
    root = tmp_path / "ws"
    async with ollama(tags, {}, drip_tags_after=1) as url:
        code, out, err, elapsed = await init(root, url, "--timeout", "0.5")
    assert (code, err) == (0, "") and elapsed < 20
    _, models = written(root)
    assert models["qwen2-5-1-5b"]["model"] == "qwen2.5:1.5b"  # from the probe's list
    (line,) = [s for s in out.splitlines() if "/api/tags" in s]
    assert line.startswith("not detected: ") and "no complete answer within 1s" in line
