"""`swarmlog hw` on a machine without a GPU, with the config `init` writes: the Director's model is
hosted by Anthropic, so it needs no local memory; hw told the user to set its vram_gb or load it
on its server (Ollama /api/ps), which cannot apply to it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli_helpers import swarmlog_in as _swarmlog


def test_hw_says_a_hosted_model_needs_no_local_memory(tmp_path: Path) -> None:
    ws = tmp_path / "night"
    assert _swarmlog(ws, "init", "--no-detect").returncode == 0
    assert 'api = "anthropic"' in (ws / "swarmlog.toml").read_text()

    done = _swarmlog(ws, "hw", "--json")
    assert done.returncode == 0, done
    placement = {p["model"]: p for p in json.loads(done.stdout)["placement"]}
    director = placement["director"]
    assert "hosted" in director["reason"] and "vram_gb" not in director["reason"], director
    assert director["fits"] is True and director["need_gb"] is None
    # A local profile of unknown size still gets the advice.
    assert "set vram_gb" in placement["fast"]["reason"]

    text = _swarmlog(ws, "hw")
    assert text.returncode == 0, text
    line = next(x for x in text.stdout.splitlines() if x.startswith("model director"))
    assert "hosted" in line and "vram_gb" not in line, line


def test_hw_without_a_config_says_which_file_is_missing(tmp_path: Path) -> None:
    done = _swarmlog(tmp_path, "hw")
    assert done.returncode == 0, done
    last = done.stdout.splitlines()[-1]
    assert last.startswith(f"no {tmp_path / 'swarmlog.toml'}: run 'swarmlog init'"), last
