"""A Hypothesis strategy for random task events: every status the shared claim rule can reach
(rival and void claims, slots and the run-wide cap, batches, heartbeats, expired leases, retries,
attempts used up, dependencies, new and resumed runs). Tests that fold two views of the task
board compare them after each such event."""

from __future__ import annotations

from hypothesis import strategies as st

from swarmlog.events import (
    ConfigLoaded,
    EventBase,
    Heartbeat,
    RunStarted,
    TaskBatched,
    TaskCancelled,
    TaskClaimed,
    TaskCompleted,
    TaskFailed,
    TaskRouted,
    TaskStarted,
    TaskSubmitted,
    TaskTimedOut,
)

_ids = st.sampled_from(["t1", "t2", "t3", "t4"])
_agents = st.sampled_from(["builder", "builder-2", "scout"])
_models = st.sampled_from(["m", "n"])


def task_events(lease: st.SearchStrategy[float]) -> st.SearchStrategy[EventBase]:
    """One random task event; ``lease`` draws lease ends (pick them around the events' ts)."""
    return st.one_of(
        st.builds(
            TaskSubmitted,
            task_id=_ids,
            title=st.just("T"),
            deps=st.lists(_ids, max_size=2, unique=True).map(tuple),
            max_attempts=st.integers(1, 3),
        ),
        st.builds(TaskRouted, task_id=_ids, model=_models),
        st.builds(
            TaskBatched,
            batch_id=st.sampled_from(["B1", "B2"]),
            task_ids=st.lists(_ids, min_size=1, max_size=3, unique=True).map(tuple),
            model=_models,
        ),
        st.builds(
            TaskClaimed, task_id=_ids, agent=_agents, lease_until=lease, attempt=st.integers(1, 3)
        ),
        st.builds(TaskStarted, task_id=_ids, agent=_agents),
        st.builds(Heartbeat, task_id=_ids, agent=_agents, lease_until=lease),
        st.builds(TaskCompleted, task_id=_ids, agent=_agents),
        st.builds(TaskFailed, task_id=_ids, agent=_agents, retryable=st.booleans()),
        st.builds(TaskTimedOut, task_id=_ids, agent=_agents),
        st.builds(TaskCancelled, task_id=_ids),
        st.builds(
            ConfigLoaded,
            config=st.fixed_dictionaries(
                {
                    "models": st.fixed_dictionaries(
                        {"m": st.fixed_dictionaries({"parallel": st.integers(0, 2)})}
                    ),
                    "limits": st.fixed_dictionaries({"max_concurrent": st.integers(0, 2)}),
                }
            ),
        ),
        st.builds(RunStarted, goal=st.just("g"), resumed=st.booleans()),
    )
