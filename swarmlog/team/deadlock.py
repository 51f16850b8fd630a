"""Deadlock prevention (guide §10: no circular dependencies): find a cycle in a task graph.

The scheduler refuses a submission that would close a cycle, so no task ever waits on itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["find_cycle"]

_WHITE, _GREY, _BLACK = 0, 1, 2


def find_cycle(tasks: Mapping[str, Sequence[str]]) -> list[str] | None:
    """Return one dependency cycle as ``[a, b, …, a]`` (a depends on b …), or None.

    ``tasks`` maps each task to the tasks it depends on; a dependency that is not a key is a
    task outside the graph (already done, or unknown) and cannot be part of a cycle. The search
    is iterative (no recursion limit) and visits tasks in the mapping's order, so the same graph
    always yields the same cycle.
    """
    colour = dict.fromkeys(tasks, _WHITE)
    for root in tasks:
        if colour[root] != _WHITE:
            continue
        path: list[str] = [root]
        stack = [iter(tasks[root])]
        colour[root] = _GREY
        while stack:
            dep = next(stack[-1], None)
            if dep is None:
                colour[path.pop()] = _BLACK
                stack.pop()
                continue
            state = colour.get(dep)
            if state is None or state == _BLACK:
                continue
            if state == _GREY:
                return [*path[path.index(dep) :], dep]
            colour[dep] = _GREY
            path.append(dep)
            stack.append(iter(tasks[dep]))
    return None
