"""``swarmlog init``: detection on loopback servers, the generated config, never overwriting."""

from __future__ import annotations

import json
import socket
import tomllib
from pathlib import Path

import pytest
from fake_nvml import make_fake_nvml

from swarmlog.cli import main
from swarmlog.config import load_config
from swarmlog.escalation.settings import DEFAULT_ESCALATION, escalation_settings
from swarmlog.events import ConfigLoaded, GpuSample, HardwareSampled
from swarmlog.hardware import Probe
from swarmlog.initconfig import Detection, ServerModel, ServerSeen, detect, render_config
from swarmlog.routing import TaskFeatures, choose_route, project
from swarmlog.sim import GIB, SimServer, sim_model


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _route(config_path: Path, kind: str) -> str:
    cfg = load_config(config_path)
    state = project([ConfigLoaded(config=cfg.to_event_dict(), seq=1, ts=1.0)])
    return choose_route(state, TaskFeatures(task_id=f"t-{kind}", task_kind=kind)).model


def _no_gpu() -> Probe:
    return Probe(nvml=make_fake_nvml(fail_init=True))


def test_init_against_a_loopback_ollama_writes_a_config_that_loads_and_routes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    models = [sim_model("qwen2.5:1.5b", 1.5, parallel=4), sim_model("qwen2.5:32b", 32.0)]
    with SimServer(models) as server:
        code = main(["init", "--dir", str(tmp_path), "--ollama", server.url, "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert str(tmp_path / "swarmlog.toml") in out["created"]
    assert not any("Ollama" in line for line in out["not_detected"])
    text = (tmp_path / "swarmlog.toml").read_text()
    data = tomllib.loads(text)
    fast = data["models"]["qwen2-5-1-5b"]
    deep = data["models"]["qwen2-5-32b"]
    assert fast["endpoint"] == server.url and fast["model"] == "qwen2.5:1.5b"
    assert fast["tier"] == "fast" and {"syntax", "format", "lint"} <= set(fast["capabilities"])
    assert deep["tier"] == "deep"
    assert {"architecture", "refactor", "security"} <= set(deep["capabilities"])
    assert fast["keep_alive"] == "60m" and 1 <= fast["parallel"] <= 4
    assert fast["parallel"] == deep["parallel"]  # OLLAMA_NUM_PARALLEL is one per server
    assert data["models"]["director"]["api"] == "anthropic"
    assert data["models"]["director"]["capabilities"] == ["director"]
    assert data["agents"]["director"]["capabilities"] == ["director"]
    assert set(data["agents"]) == {
        "director",
        "architect",
        "scout",
        "builder",
        "refactorer",
        "inspector",
        "scribe",
    }
    assert data["limits"]["max_concurrent"] == 2
    assert escalation_settings(data["escalation"]) == DEFAULT_ESCALATION
    assert "# [alerts]" in text and "alerts" not in data
    assert _route(tmp_path / "swarmlog.toml", "lint") == "qwen2-5-1-5b"
    assert _route(tmp_path / "swarmlog.toml", "architecture") == "qwen2-5-32b"
    assert (tmp_path / ".gitattributes").read_text().startswith("# Written by 'swarmlog init'")


def test_init_with_nothing_reachable_still_writes_a_usable_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    port = _free_port()
    dead = f"http://127.0.0.1:{port}"
    ws = tmp_path / "ws"
    code = main(["init", "--dir", str(ws), "--ollama", dead, "--openai", f"{dead}/v1"])
    assert code == 0
    out = capsys.readouterr().out
    assert f"not detected: no Ollama at 127.0.0.1:{port}: connection refused" in out
    assert f"no OpenAI-compatible server at 127.0.0.1:{port}: connection refused" in out
    text = (ws / "swarmlog.toml").read_text()
    assert "# Not detected: no Ollama" in text
    assert _route(ws / "swarmlog.toml", "lint") == "fast"
    assert _route(ws / "swarmlog.toml", "security") == "deep"


def test_init_never_overwrites_and_skips_detection_when_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    assert main(["init", "--dir", str(tmp_path), "--no-detect"]) == 0
    assert "detection skipped" in capsys.readouterr().out
    (tmp_path / "swarmlog.toml").write_text("# mine\n")
    (tmp_path / ".gitattributes").write_text("mine\n")
    assert main(["init", "--dir", str(tmp_path), "--ollama", "http://127.0.0.1:1"]) == 0
    assert "nothing changed" in capsys.readouterr().out
    assert (tmp_path / "swarmlog.toml").read_text() == "# mine\n"
    assert (tmp_path / ".gitattributes").read_text() == "mine\n"


def test_init_detects_openai_compatible_servers(tmp_path: Path):
    with SimServer([sim_model("Qwen/Qwen2.5-7B-Instruct", 7.0)]) as server:
        det = detect(ollama_url=None, openai_urls=[f"{server.url}/v1"], probe=_no_gpu())
    assert [s.api for s in det.servers] == ["openai"]
    assert det.servers[0].endpoint == f"{server.url}/v1"
    path = tmp_path / "swarmlog.toml"
    path.write_text(render_config(det))
    data = tomllib.loads(path.read_text())
    profile = data["models"]["qwen-qwen2-5-7b-instruct"]
    assert profile["api"] == "openai" and profile["endpoint"] == f"{server.url}/v1"
    # The only worker model takes every kind of task, so nothing is left without a route.
    assert _route(path, "lint") == _route(path, "architecture") == "qwen-qwen2-5-7b-instruct"


def test_slots_follow_the_vram_and_loaded_models_come_first(tmp_path: Path):
    small = ServerModel(
        name="a:1b", size=1 * 10**9, params_b=1.0, kv_bytes_per_token=28672, context_length=8192
    )
    loaded = ServerModel(name="b:3b", size=2 * 10**9, params_b=3.0, loaded=True)
    big = ServerModel(name="c:70b", size=40 * 10**9, params_b=70.0, kv_bytes_per_token=327680)
    server = ServerSeen(
        endpoint="http://127.0.0.1:11434", api="ollama", models=(small, loaded, big)
    )
    roomy = HardwareSampled(gpus=(GpuSample(index=0, mem_total=80 * GIB),))
    tight = HardwareSampled(gpus=(GpuSample(index=0, mem_total=48 * GIB),))
    text = render_config(Detection(servers=(server,), hardware=roomy))
    data = tomllib.loads(text)
    assert set(data["models"]) == {"b-3b", "c-70b", "director"}  # loaded b:3b beats a:1b
    assert "# [models.a-1b]" in text  # the rest stay as comments to enable
    assert data["models"]["c-70b"]["parallel"] == 4
    data = tomllib.loads(render_config(Detection(servers=(server,), hardware=tight)))
    assert data["models"]["c-70b"]["parallel"] < 4
    assert data["models"]["c-70b"]["parallel"] == data["models"]["b-3b"]["parallel"]
    assert data["models"]["c-70b"]["vram_gb"] > 40


def test_embedding_models_are_never_profiles():
    emb = ServerModel(name="nomic-embed-text", params_b=0.1, embedding=True)
    chat = ServerModel(name="qwen3:32b", params_b=32.0)
    server = ServerSeen(endpoint="http://h:11434", api="ollama", models=(emb, chat))
    data = tomllib.loads(render_config(Detection(servers=(server,))))
    assert set(data["models"]) == {"qwen3-32b", "director"}
