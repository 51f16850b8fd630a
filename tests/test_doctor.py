"""``swarmlog doctor``: the pre-flight checklist on healthy and broken workspaces."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import pytest
from fake_nvml import make_fake_nvml

from swarmlog.cli import main
from swarmlog.doctor import Check, check_clock, check_inotify, check_log, run_checks
from swarmlog.events import Note
from swarmlog.hardware import Probe
from swarmlog.log import FileLog, list_segments
from swarmlog.sim import SimServer, sim_model
from swarmlog.workspace import Workspace

SECRET = "sk-ant-api03-doctor-must-never-print-this-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fake_proc(root: Path, instances: int = 1024, watches: int = 524288) -> Path:
    base = root / "proc" / "sys" / "fs" / "inotify"
    base.mkdir(parents=True)
    (base / "max_user_instances").write_text(f"{instances}\n")
    (base / "max_user_watches").write_text(f"{watches}\n")
    return root / "proc"


def _workspace(root: Path, models: str, limits: str = "max_concurrent = 2") -> Workspace:
    assert main(["init", "--dir", str(root), "--no-detect"]) == 0
    (root / "swarmlog.toml").write_text(f"[limits]\n{limits}\n\n{models}")
    return Workspace(root)


def _profile(name: str, endpoint: str, model: str, **extra: object) -> str:
    lines = [f"[models.{name}]", f'endpoint = "{endpoint}"', f'model = "{model}"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    return "\n".join(lines) + "\n\n"


def _by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.check: c for c in checks}


def _load(url: str, model: str) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": False}
    httpx.post(f"{url}/api/chat", json=body, timeout=10).raise_for_status()


def test_doctor_passes_a_healthy_workspace(tmp_path: Path):
    models = [sim_model("qwen2.5:1.5b", 1.5, parallel=2), sim_model("qwen2.5:7b", 7.0)]
    with SimServer(models) as server:
        _load(server.url, "qwen2.5:1.5b")
        profiles = _profile(
            "fast", server.url, "qwen2.5:1.5b", parallel=2, keep_alive="60m"
        ) + _profile("mid", server.url, "qwen2.5:7b", parallel=2, keep_alive="-1", vram_gb=5.5)
        ws = _workspace(tmp_path / "ws", profiles)
        FileLog(ws.events).append([Note(text="ready")])
        checks = run_checks(
            ws,
            min_disk_gb=0.001,
            probe=Probe(nvml=make_fake_nvml()),
            proc=_fake_proc(tmp_path),
        )
    got = _by_name(checks)
    assert [c for c in checks if c.status == "fail"] == []
    assert got[f"server {server.url}"].status == "pass"
    assert got["model fast"] == Check(
        check="model fast", status="pass", detail="qwen2.5:1.5b is present and loaded"
    )
    assert got["model mid"].status == "pass" and "loadable" in got["model mid"].detail
    assert got["keep-alive"].status == "pass"
    slots = got["parallel slots"]
    assert slots.status == "pass" and "OLLAMA_NUM_PARALLEL=2" in slots.detail
    assert got["director API key"].status == "skip"
    for name in ("workspace writable", "disk free", "inotify limits", "clock sane", "log verify"):
        assert got[name].status == "pass", got[name]
    assert "1 records" in got["log verify"].detail


def test_doctor_fails_a_broken_workspace_with_fixes_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    dead = f"http://127.0.0.1:{_free_port()}"
    with SimServer([sim_model("qwen2.5:1.5b", 1.5)]) as server:
        profiles = _profile("gone", dead, "qwen2.5:1.5b", keep_alive="60m") + _profile(
            "typo", server.url, "qwen2.5:15b", keep_alive="5m", parallel=1
        )
        ws = _workspace(tmp_path / "ws", profiles, limits="max_concurrent = 4")
        capsys.readouterr()
        code = main(["doctor", "--dir", str(ws.root), "--min-disk-gb", "1e9", "--json"])
    assert code == 1
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    got = {r["check"]: r for r in rows}
    assert set(rows[0]) == {"check", "status", "detail", "fix"}
    down = got[f"server {dead}"]
    assert down["status"] == "fail" and "connection refused" in down["detail"]
    assert "ollama serve" in down["fix"]
    assert got["model typo"]["status"] == "fail"
    assert "ollama pull qwen2.5:15b" in got["model typo"]["fix"]
    assert got["model gone"]["status"] == "warn"  # not checkable: its server is down
    assert got["disk free"]["status"] == "fail" and got["disk free"]["fix"]
    assert got["keep-alive"]["status"] == "warn" and "typo (5m)" in got["keep-alive"]["detail"]
    assert got["parallel slots"]["status"] == "warn"  # 4 concurrent calls for 2 slots
    assert got["workspace writable"]["status"] == "pass"


def test_doctor_text_table_shows_fixes_and_never_the_api_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    profiles = _profile("director", "https://api.anthropic.com", "claude-x", api="anthropic")
    ws = _workspace(tmp_path / "ws", profiles)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert main(["doctor", "--dir", str(ws.root), "--min-disk-gb", "0"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  director API key" in out and "fix: export ANTHROPIC_API_KEY" in out
    assert "doctor: not ready" in out
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    main(["doctor", "--dir", str(ws.root), "--min-disk-gb", "0"])
    main(["doctor", "--dir", str(ws.root), "--min-disk-gb", "0", "--json"])
    captured = capsys.readouterr()
    assert "pass  director API key" in captured.out
    assert SECRET not in captured.out + captured.err
    assert SECRET[-12:] not in captured.out + captured.err


def test_slots_must_match_the_ollama_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    profiles = _profile("a", "http://127.0.0.1:1", "m:1b", parallel=2) + _profile(
        "b", "http://127.0.0.1:1", "m:32b", parallel=4
    )
    ws = _workspace(tmp_path / "ws", profiles)
    monkeypatch.setenv("OLLAMA_NUM_PARALLEL", "1")
    checks = run_checks(ws, timeout_s=0.2, probe=Probe(nvml=make_fake_nvml(fail_init=True)))
    slots = _by_name(checks)["parallel slots"]
    assert slots.status == "warn"
    assert "different slots [2, 4]" in slots.detail
    assert "OLLAMA_NUM_PARALLEL=1" in slots.detail


def test_a_model_too_large_for_the_vram_fails(tmp_path: Path):
    with SimServer([sim_model("huge:405b", 405.0)]) as server:
        ws = _workspace(tmp_path / "ws", _profile("huge", server.url, "huge:405b", vram_gb=240))
        checks = run_checks(ws, probe=Probe(nvml=make_fake_nvml()), proc=_fake_proc(tmp_path))
    huge = _by_name(checks)["model huge"]
    assert huge.status == "fail" and "does not fit" in huge.detail


def test_inotify_limits(tmp_path: Path):
    assert check_inotify(7, tmp_path / "nowhere").status == "skip"
    assert check_inotify(7, _fake_proc(tmp_path / "ok")).status == "pass"
    low = check_inotify(7, _fake_proc(tmp_path / "low", instances=8))
    assert low.status == "fail" and "max_user_instances" in low.fix
    assert check_inotify(7, _fake_proc(tmp_path / "few", watches=50)).status == "fail"
    assert check_inotify(7, _fake_proc(tmp_path / "tight", instances=15)).status == "warn"


def test_clock_checks():
    now = 1_800_000_000.0
    assert check_clock(now, now - 5).status == "pass"
    assert check_clock(now, 0.0).status == "pass"
    assert check_clock(1_000_000_000.0, 0.0).status == "fail"  # 2001
    behind = check_clock(now, now + 3600)
    assert behind.status == "fail" and "3600s before the log's last event" in behind.detail


def test_log_check_reports_damage_and_torn_tails(tmp_path: Path):
    ws = Workspace(tmp_path)
    assert check_log(ws)[0].status == "warn"  # no log yet
    log = FileLog(ws.events, clock=lambda: 1_800_000_000.0)
    log.append([Note(text="a"), Note(text="b")])
    log.close()
    check, last_ts = check_log(ws)
    assert check.status == "pass" and last_ts == 1_800_000_000.0
    seg = list_segments(ws.events)[-1][1]
    with open(seg, "ab") as fh:
        fh.write(b'{"kind":"note"')
    assert check_log(ws)[0].status == "warn"
    data = bytearray(seg.read_bytes())
    data[5] ^= 0x01
    seg.write_bytes(bytes(data))
    assert check_log(ws)[0].status == "fail"
