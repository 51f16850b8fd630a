"""The night committed under memory/ and alerts/ is a real, replayable run history.

A newcomer can read it on GitHub, and `swarmlog replay --verify` and `swarmlog render` must keep
working on it: the events decode, every recorded decision re-derives, and the Markdown renders
back byte for byte.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from swarmlog.cli import main
from swarmlog.events import RunEnded
from swarmlog.log import FileLog

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_EVENTS = REPO / "memory" / "events"


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A copy of the committed history (commands may add files beside it)."""
    segments = sorted(EXAMPLE_EVENTS.glob("*.ndjson"))
    assert segments, "no example history is committed under memory/events/"
    ws = tmp_path / "example"
    (ws / "memory" / "events").mkdir(parents=True)
    for segment in segments:
        shutil.copy(segment, ws / "memory" / "events" / segment.name)
    return ws


def test_the_example_is_a_whole_demo_night(example: Path) -> None:
    events = list(FileLog(example / "memory" / "events", create=False).read())
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    ended = [e for e in events if isinstance(e, RunEnded)]
    assert [e.outcome for e in ended] == ["completed"]


def test_replay_verify_passes_on_the_example(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--dir", str(example), "replay", "--verify"]) == 0, capsys.readouterr().out


def test_render_reproduces_the_committed_markdown_byte_for_byte(example: Path) -> None:
    assert main(["--dir", str(example), "render"]) == 0
    committed = sorted(
        [*(REPO / "memory").glob("*.md"), *(REPO / "alerts").glob("ALERT-*.md")],
    )
    assert committed
    for path in committed:
        rendered = example / path.relative_to(REPO)
        assert rendered.read_bytes() == path.read_bytes(), f"{path.relative_to(REPO)} differs"
    rendered_names = {p.name for p in (example / "memory").glob("*.md")}
    assert rendered_names == {p.name for p in (REPO / "memory").glob("*.md")}
