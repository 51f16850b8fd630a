"""Rendering: golden files, hostile strings, template overrides, writing only what changed."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from test_render_scenario import scripted

from swarmlog.errors import TemplateError
from swarmlog.render import (
    EMERGENCY_PATH,
    make_environment,
    md_block,
    md_cell,
    md_inline,
    render_all,
    write_outputs,
)
from swarmlog.state import project
from swarmlog.workspace import Workspace

GOLDEN = Path(__file__).parent / "golden"


def _golden_name(rel: str) -> str:
    return rel.replace("/", "__")


@pytest.mark.parametrize("resolve", [True, False], ids=["resolved", "emergency"])
def test_scripted_night_renders_the_committed_markdown(resolve):
    files = render_all(project(scripted(resolve=resolve)), make_environment(None))
    folder = GOLDEN / ("resolved" if resolve else "emergency")
    if os.environ.get("UPDATE_GOLDEN"):
        folder.mkdir(parents=True, exist_ok=True)
        for rel, text in files.items():
            (folder / _golden_name(rel)).write_text(text, encoding="utf-8")
    expected = {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.iterdir())}
    assert {_golden_name(rel): text for rel, text in files.items()} == expected
    assert (EMERGENCY_PATH in files) is (not resolve)


def test_team_state_has_the_seed_sections_in_order():
    text = render_all(project(scripted()), make_environment(None))["memory/team-state.md"]
    heads = [
        "## Current Phase: 2 - Execution (run ended: completed)",
        "## Last Checkpoint: ",
        "### Agent Status",
        "| Agent | Status | Current Task | Trust |",
        "### Pending Decisions",
        "- [ ] Choice between REST vs GraphQL",
        "### Blockers",
        "### Next Checkpoint Trigger",
        "- Builder completes auth module",
    ]
    positions = [text.index(h) for h in heads]
    assert positions == sorted(positions)
    assert "| Director | Active | Monitoring | N/A |" in text
    assert "| Builder | Idle | - | 6/10 |" in text
    assert "night-0128" in text.splitlines()[0] and "seq 50" in text


HOSTILE = [
    "| a | b |\n|---|---|",
    "```\n# Heading\n```",
    "<script>alert(1)</script><!--",
    "\n---\n",
    "x" * 5000,
    "bad \udcff\udcfe bytes \x00\x1b[31m \u202e",
    "~~~\n",
    "\n# injected section\n",
]


def _table_rows_ok(text: str) -> None:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|") and i + 1 < len(lines) and re.match(r"^\|[-| ]+\|$", lines[i + 1]):
            width = _cells(line)
            j = i + 2
            while j < len(lines) and lines[j].startswith("|"):
                assert _cells(lines[j]) == width, lines[j]
                j += 1


def _outside_fences(text: str) -> str:
    """Return the lines a Markdown renderer treats as structure (fenced blocks dropped)."""
    out, fence = [], ""
    for line in text.splitlines():
        m = re.match(r"^(`{3,})", line)
        if fence:
            if m and m.group(1) == fence and line.strip() == fence:
                fence = ""
            continue
        if m:
            fence = m.group(1)
            continue
        out.append(line)
    assert not fence, "a fence was left open"
    return "\n".join(out)


def _cells(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line)) - 1


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_strings_keep_every_file_well_formed(hostile):
    clean = render_all(project(scripted(resolve=False)), make_environment(None))
    dirty = render_all(project(scripted(hostile=hostile, resolve=False)), make_environment(None))
    assert dirty.keys() == clean.keys()
    for rel, full in dirty.items():
        full.encode("utf-8")  # no lone surrogates survive
        text = _outside_fences(full)
        assert "<script>" not in text and "\x00" not in text and "\u202e" not in text
        assert not re.search(r"^#+ injected", text, re.M), rel
        # The section headings and table shapes are exactly those of the clean render.
        heads = [ln for ln in text.splitlines() if re.match(r"^#{1,6} ", ln)]
        clean_heads = [ln for ln in clean[rel].splitlines() if re.match(r"^#{1,6} ", ln)]
        assert [h.split(":")[0].split(" · ")[0] for h in heads] == [
            h.split(":")[0].split(" · ")[0] for h in clean_heads
        ]
        _table_rows_ok(text)
        assert all(len(ln) < 21_000 for ln in full.splitlines())


def test_filters_escape_structure():
    assert md_cell("a|b\nc") == "a\\|b c"
    assert md_cell("") == "-"
    assert md_inline("# x") == "\\# x" and md_inline("<b>") == "&lt;b&gt;"
    assert md_block("a ````` b").startswith("``````text\n")
    assert md_block("") == "_(none)_"
    assert len(md_cell("y" * 500)) == 120


def test_workspace_template_overrides_the_packaged_one(tmp_path):
    ws = Workspace(tmp_path)
    ws.templates.mkdir()
    (ws.templates / "team-state.md.j2").write_text("custom {{ run }} {{ seq }}\n")
    files = render_all(project(scripted()), make_environment(ws))
    assert files["memory/team-state.md"] == "custom night-0128 50\n"
    assert files["memory/decisions.md"].startswith("# Decision Log")


def test_a_template_using_an_undefined_name_fails_loudly(tmp_path):
    ws = Workspace(tmp_path)
    ws.templates.mkdir()
    (ws.templates / "team-state.md.j2").write_text("{{ no_such_thing }}\n")
    with pytest.raises(TemplateError, match="team-state"):
        render_all(project(scripted()), make_environment(ws))


def test_write_outputs_writes_only_changes_and_removes_a_resolved_emergency(tmp_path):
    env = make_environment(None)
    open_files = render_all(project(scripted(resolve=False)), env)
    changed = write_outputs(tmp_path, open_files)
    assert EMERGENCY_PATH in changed and (tmp_path / EMERGENCY_PATH).exists()
    assert write_outputs(tmp_path, open_files) == []
    changed = write_outputs(tmp_path, render_all(project(scripted()), env))
    assert EMERGENCY_PATH in changed and not (tmp_path / EMERGENCY_PATH).exists()


def test_an_alert_renders_from_its_event_alone_at_the_renderers_path():
    from swarmlog.events import AlertRaised
    from swarmlog.render import render_alert_event

    event = next(e for e in scripted() if isinstance(e, AlertRaised))
    path, text = render_alert_event(event, make_environment(None))
    full = render_all(project(scripted(resolve=False)), make_environment(None))
    assert path in full and text.splitlines()[0] == full[path].splitlines()[0]
    assert "| Run | night-0128 |" in text
