"""``swarmlog doctor`` and ``init`` reach model servers the way the night's calls do.

The night's calls trust a private CA named in ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` and send only
non-local hosts through the environment's proxy (``swarmlog.runtime.calls``). doctor and init
probed with ``trust_env=False``: a server with a privately signed certificate was 'unreachable'
to them while the night reached it, and a hosted server behind the proxy likewise. Each test runs
the real ``swarmlog`` command against loopback servers, in a workspace in ``tmp_path``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from swarmlog.config import load_config
from swarmlog.sim.http import Handler, HttpServer, Request, Response

pytestmark = pytest.mark.anyio

TAGS = {"models": [{"name": "qwen3:32b", "size": 19_000_000_000, "details": {}}]}
ROUTES: dict[str, object] = {
    "/api/version": {"version": "0.12.3"},
    "/api/ps": {"models": []},
    "/api/tags": TAGS,
    "/api/show": {"model_info": {}},
    "/v1/models": {"object": "list", "data": [{"id": "served-32b"}]},
}


async def ollama(req: Request, resp: Response) -> None:
    if req.path in ROUTES:
        await resp.send(200, json.dumps(ROUTES[req.path]), content_type="application/json")
    else:
        await resp.send(404, "404 page not found", content_type="text/plain")


class TlsServer(HttpServer):
    """The loopback HTTP server, over TLS with the given certificate."""

    def __init__(self, handler: Handler, ctx: ssl.SSLContext) -> None:
        super().__init__(handler)
        self._ctx = ctx

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._on_connection, self.host, self.port, ssl=self._ctx
        )
        self.port = self._server.sockets[0].getsockname()[1]


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "ca.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@asynccontextmanager
async def serving(server: HttpServer) -> AsyncIterator[str]:
    await server.start()
    try:
        yield server.url
    finally:
        await server.stop()


def tls_server(tmp_path: Path) -> tuple[TlsServer, Path]:
    cert, key = self_signed(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return TlsServer(ollama, ctx), cert


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k.upper() not in ("SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY")
        and k.upper() not in ("ALL_PROXY", "NO_PROXY")
    }
    return {**env, **extra}


async def swarmlog(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run the real CLI in a child process (the servers run on this test's event loop)."""
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "swarmlog", *args),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def workspace(root: Path, endpoint: str, api: str, model: str) -> Path:
    root.mkdir()
    for folder in ("memory/events", "alerts"):
        (root / folder).mkdir(parents=True)
    (root / "swarmlog.toml").write_text(
        "[limits]\nmax_concurrent = 2\n\n[models.m]\n"
        f'endpoint = "{endpoint}"\napi = "{api}"\nmodel = "{model}"\nkeep_alive = "60m"\n'
    )
    return root


async def doctor(root: Path, env: dict[str, str]) -> dict[str, dict[str, str]]:
    _, out, err = await swarmlog("--dir", str(root), "doctor", "--json", env=env)
    assert err == ""
    return {c["check"]: c for c in map(json.loads, out.splitlines())}


async def test_doctor_trusts_the_private_ca_in_ssl_cert_file(tmp_path: Path) -> None:
    server, cert = tls_server(tmp_path)
    async with serving(server) as url:
        root = workspace(tmp_path / "ws", url, "ollama", "qwen3:32b")
        trusted = await doctor(root, clean_env(SSL_CERT_FILE=str(cert)))
        untrusted = await doctor(root, clean_env())
    check = trusted[f"server {url}"]
    assert check["status"] == "pass", check
    assert check["detail"].startswith("ollama 0.12.3 answers; 1 model(s)")
    assert trusted["model m"]["status"] != "fail"
    # without the CA it is not trusted, and doctor says so rather than 'start Ollama'
    check = untrusted[f"server {url}"]
    assert check["status"] == "fail"
    assert (
        "TLS certificate is not trusted" in check["detail"] and "SSL_CERT_FILE" in check["detail"]
    )


async def test_init_detects_an_ollama_behind_a_private_ca(tmp_path: Path) -> None:
    server, cert = tls_server(tmp_path)
    root = tmp_path / "ws"
    async with serving(server) as url:
        env = clean_env(SSL_CERT_FILE=str(cert))
        code, out, err = await swarmlog("init", "--dir", str(root), "--ollama", url, env=env)
    assert (code, err) == (0, "")
    assert "Ollama" not in out  # no 'not detected: no Ollama at ...'
    models = tomllib.loads((root / "swarmlog.toml").read_text())["models"]
    assert models["qwen3-32b"]["endpoint"] == url and models["qwen3-32b"]["model"] == "qwen3:32b"
    load_config(root / "swarmlog.toml")


async def test_an_unreadable_ssl_cert_file_is_named_by_doctor_and_refused_by_init(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "missing-ca.pem"
    env = clean_env(SSL_CERT_FILE=str(missing))
    async with serving(HttpServer(ollama)) as url:
        root = workspace(tmp_path / "ws", url, "ollama", "qwen3:32b")
        checks = await doctor(root, env)
        code, out, err = await swarmlog(
            "init", "--dir", str(tmp_path / "new"), "--ollama", url, env=env
        )
    tls = checks["TLS trust"]
    assert tls["status"] == "fail"
    assert tls["detail"].startswith(f"cannot load the CA certificates of SSL_CERT_FILE={missing}")
    assert tls["fix"] == "point it at a PEM file of the model server's CA, or unset it"
    assert checks[f"server {url}"]["status"] == "fail"
    # init writes nothing: a config written without the servers would be kept by the next init
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert f"cannot load the CA certificates of SSL_CERT_FILE={missing}" in err
    assert not (tmp_path / "new" / "swarmlog.toml").exists()


async def test_a_hosted_server_is_probed_through_the_proxy_a_local_one_is_not(
    tmp_path: Path,
) -> None:
    seen: list[str] = []

    async def proxy(req: Request, resp: Response) -> None:
        seen.append(req.path)
        await ollama(req, resp)

    async with serving(HttpServer(proxy)) as proxy_url, serving(HttpServer(ollama)) as local:
        env = clean_env(HTTP_PROXY=proxy_url, ALL_PROXY=proxy_url)
        hosted = "http://models.example.invalid/v1"
        root = workspace(tmp_path / "ws", hosted, "openai", "served-32b")
        checks = await doctor(root, env)
        root = tmp_path / "new"
        code, out, err = await swarmlog(
            *("init", "--dir", str(root), "--ollama", local, "--openai", hosted), env=env
        )
    check = checks["server http://models.example.invalid/v1"]
    assert check["status"] == "pass", check
    assert checks["model m"]["status"] == "pass"
    assert (code, err) == (0, "") and "not detected: no" not in out
    models = tomllib.loads((root / "swarmlog.toml").read_text())["models"]
    assert models["served-32b"]["endpoint"] == hosted
    assert models["qwen3-32b"]["endpoint"] == local
    # the loopback Ollama was asked directly: only the hosted server's paths reached the proxy
    assert seen and all(p in ("/v1/models", "/metrics") for p in seen)
