"""A huge price: cost_per_1k_tokens = 1e308 (input and output) summed to inf, so the dearest cost
was inf and every candidate's price weight (cost_weight / dearest) became 0: the dearest model
lost its price penalty altogether and was scored on time alone."""

from __future__ import annotations

from swarmlog.events import ConfigLoaded, TaskSubmitted
from swarmlog.routing import choose_route, project


def test_a_price_near_the_float_limit_still_weighs() -> None:
    models = {
        "dear": {"endpoint": "http://127.0.0.1:1", "model": "a", "cost_per_1k_tokens": 1e308},
        "cheap": {"endpoint": "http://127.0.0.1:2", "model": "b", "cost_per_1k_tokens": 0.0},
    }
    task = TaskSubmitted(seq=2, ts=10.0, task_id="t", title="t", task_kind="general", prompt="x")
    state = project([ConfigLoaded(seq=1, ts=10.0, config={"models": models}), task])
    scores = {c.model: c for c in choose_route(state, task).candidates}
    dear, cheap = scores["dear"], scores["cheap"]
    assert dear.expected_s == cheap.expected_s  # same priors: only the price tells them apart
    assert dear.score is not None and dear.expected_s is not None
    assert abs(dear.score - dear.expected_s * 1.05) < 1e-5, dear
    assert cheap.score == cheap.expected_s
