"""What the runtime does must not grow with the size of the night (bench/scale.py measures it)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from swarmlog.routing.complexity import estimate_tokens
from swarmlog.runtime.board import DONE, Board, TaskView
from swarmlog.runtime.context import EMPTY_CONTEXT
from swarmlog.runtime.prompts import render_prompt


def _work(n: int) -> TaskView:
    return TaskView(
        task_id=f"w-{n}",
        title=f"Implement part {n}",
        task_kind="implement",
        role="builder",
        status=DONE,
        output={
            "summary": f"Implemented part {n} " + "with care " * 20,
            "files": [f"src/part{n}.py"],
            "findings": [f"finding {n}"],
        },
    )


def _present(items: int) -> tuple[Board, TaskView]:
    work = [_work(n) for n in range(items)]
    present = TaskView(
        task_id="rv-0-r1-present",
        title="Present the work of iteration 0",
        task_kind="present",
        role="builder",
        deps=tuple(t.task_id for t in work),
        round=1,
    )
    return Board(tasks={t.task_id: t for t in [*work, present]}), present


def _prompt(board: Board, task: TaskView, budget: int) -> str:
    return render_prompt(
        role="builder", task=task, ctx=EMPTY_CONTEXT, board=board, attempt=1, budget_tokens=budget
    )


def test_a_review_of_a_big_nights_work_stays_within_the_context_budget() -> None:
    board, present = _present(400)
    small_board, small = _present(3)
    fixed = estimate_tokens(_prompt(small_board, small, budget=0))  # template, task, schema
    prompt = _prompt(board, present, budget=2000)
    assert estimate_tokens(prompt) <= fixed + 2000
    shown = prompt.count("### Implement part ")
    assert 0 < shown < 400
    assert f"{400 - shown} more of 400 items left out" in prompt
    # A small review keeps all of its material.
    whole = _prompt(small_board, small, budget=2000)
    assert whole.count("### Implement part ") == 3
    assert "left out" not in whole


def test_a_workspaces_second_night_holds_its_own_review() -> None:
    """The log keeps every night; review ids repeat each night (rv-0, rv-1, ...)."""
    import msgspec

    from swarmlog.events import (
        DecisionMade,
        Event,
        PhaseEntered,
        ReviewOpened,
        RunEnded,
        RunStarted,
    )
    from swarmlog.runtime.board import project_board
    from swarmlog.runtime.context import project_context
    from swarmlog.runtime.flow import FlowView, next_steps
    from swarmlog.team import reviews as team_reviews

    def night(run: str) -> list[Event]:
        return [
            RunStarted(goal="g", run=run),
            PhaseEntered(phase="review", iteration=0),
        ]

    first = [
        *night("r1"),
        ReviewOpened(review_id="rv-0", subject="the work of iteration 0"),
        DecisionMade(
            decision_id="d-rv-0",
            subject="s",
            outcome="approve",
            rule="unanimous",
            review_id="rv-0",
        ),
        RunEnded(outcome="completed"),
    ]
    events = [
        msgspec.structs.replace(e, seq=n, ts=float(n), run=e.run or ("r1" if n < 6 else "r2"))
        for n, e in enumerate([*first, *night("r2")], start=1)
    ]
    view = FlowView(
        board=project_board(events),
        ctx=project_context(events),
        reviews=team_reviews.project(events),
    )
    steps = next_steps(view, now=100.0)
    opened = [e for e in steps if isinstance(e, ReviewOpened)]
    assert [e.review_id for e in opened] == ["rv-0"]  # not taken for the first night's decision
    assert opened[0].key == "review:r2:rv-0"


def test_the_renderer_renders_an_alert_file_again_only_when_the_alert_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from swarmlog import render
    from swarmlog.events import AlertRaised, HumanCommand, Note, RunStarted
    from swarmlog.state import project

    rendered: list[str] = []
    real = render._render

    def counting(env: Any, name: str, **context: Any) -> str:
        if name == "alert.md.j2":
            rendered.append(context["alert"].alert_id)
        return real(env, name, **context)

    monkeypatch.setattr(render, "_render", counting)
    events = [
        RunStarted(goal="g", run="r", seq=1, ts=1.0),
        *(
            AlertRaised(alert_id=f"A{n}", level=3, rule="queue_depth", title="t", seq=n + 2,
                        ts=2.0 + n)
            for n in range(50)
        ),
    ]  # fmt: skip
    env = render.make_environment(tmp_path)
    state = project(events)
    first = render.render_all(state, env)
    assert len(rendered) == 50
    later = project([Note(text="much later", seq=60, ts=60.0)], state)
    again = render.render_all(later, env)
    assert {k: v for k, v in again.items() if k.startswith("alerts/")} == {
        k: v for k, v in first.items() if k.startswith("alerts/")
    }
    assert len(rendered) == 50  # nothing an alert file shows changed: none rendered again
    acked = project([HumanCommand(command="ack", target="A7", seq=61, ts=61.0)], later)
    files = render.render_all(acked, env)
    assert rendered[50:] == ["A7"]
    assert "yes, by" in next(v for k, v in files.items() if k.endswith("-9.md"))
    # A workspace's template edited while the renderer runs is picked up at once.
    folder = tmp_path / "templates"
    folder.mkdir()
    override = folder / "alert.md.j2"
    override.write_text("# {{ alert.alert_id }} in {{ run }}\n")
    env = render.make_environment(folder)
    path = next(k for k in files if k.endswith("-2.md"))
    assert render.render_all(acked, env)[path] == "# A0 in r\n"
    override.write_text("# {{ alert.alert_id }} at {{ seq }}\n")
    os.utime(override, (override.stat().st_mtime + 10,) * 2)
    assert render.render_all(acked, env)[path] == "# A0 at 61\n"
