"""Convergence rules (guide §6): when a review stops, and with which stance.

After each round the rules run in order and the first that holds stops the review:

1. ``unanimous``: every participant has a position and all agree (in round 0 or 1 as in any).
2. ``supermajority``: one stance holds more than ``supermajority`` of the trust-weighted vote of
   all participants (5 of 7 equal votes is 0.714 > 0.7); dissenters are recorded.
3. ``max_rounds``: the round limit is reached; the Director decides and the controversy is noted.
4. ``stable``: no position changed since the previous round; the trust-weighted majority stands.
5. ``diminishing_returns``: the trust-weighted stance shares moved by less than the threshold
   (total variation distance) since the previous round; the majority stands.

Positions carry forward: an agent's stance stands until it takes a new one. A participant without
a position counts in the denominator (absent, never agreeing). A tie for the lead is no majority:
``stable`` and ``diminishing_returns`` then let the review continue, so the Director settles it
at ``max_rounds``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from swarmlog.team.settings import DEFAULT_SETTINGS, ConvergenceSettings

__all__ = [
    "ABSENT",
    "RULES",
    "Verdict",
    "evaluate",
    "majority",
    "shares",
    "tally",
]

ABSENT = "(absent)"
RULES: tuple[str, ...] = (
    "unanimous",
    "supermajority",
    "max_rounds",
    "stable",
    "diminishing_returns",
)


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    """What the rules concluded about one round."""

    converged: bool
    rule: str = ""  # one of RULES when converged
    stance: str = ""  # the unanimous, supermajority or majority stance; "" on a tie
    share: float = 0.0  # the leading stance's share of the trust-weighted vote
    tally: dict[str, float] = msgspec.field(default_factory=dict)  # stance -> weight, ABSENT
    dissent: tuple[str, ...] = ()  # voters whose stance differs from ``stance``
    absent: tuple[str, ...] = ()  # participants without a position
    change: float = 1.0  # total variation distance of shares from the previous round


def _electorate(
    participants: Sequence[str], rounds: Sequence[Mapping[str, str]]
) -> tuple[str, ...]:
    seen = dict.fromkeys(participants)
    for positions in rounds:
        seen.update(dict.fromkeys(sorted(positions)))
    return tuple(seen)


def _weight(agent: str, trust: Mapping[str, float], default: float) -> float:
    return max(0.0, float(trust.get(agent, default)))


def tally(
    positions: Mapping[str, str],
    electorate: Sequence[str],
    trust: Mapping[str, float],
    default_trust: float = 7.0,
) -> dict[str, float]:
    """Return each stance's trust weight, with the weight of silent voters under ``ABSENT``."""
    out: dict[str, float] = {}
    for agent in sorted(electorate):
        stance = positions.get(agent, ABSENT)
        out[stance] = out.get(stance, 0.0) + _weight(agent, trust, default_trust)
    return dict(sorted(out.items()))


def shares(weights: Mapping[str, float]) -> dict[str, float]:
    """Return each stance's share of the total weight (all zero when nobody weighs anything)."""
    total = sum(weights.values())
    return {k: (v / total if total > 0 else 0.0) for k, v in weights.items()}


def majority(weights: Mapping[str, float]) -> str:
    """Return the stance with strictly the most weight, or ``""`` on a tie or with no votes."""
    votes = sorted(((w, s) for s, w in weights.items() if s != ABSENT), reverse=True)
    if not votes or votes[0][0] <= 0 or (len(votes) > 1 and votes[1][0] == votes[0][0]):
        return ""
    return votes[0][1]


def _change(before: Mapping[str, float], after: Mapping[str, float]) -> float:
    keys = set(before) | set(after)
    return 0.5 * sum(abs(before.get(k, 0.0) - after.get(k, 0.0)) for k in keys)


def evaluate(
    rounds: Sequence[Mapping[str, str]],
    participants: Sequence[str],
    trust: Mapping[str, float],
    settings: ConvergenceSettings = DEFAULT_SETTINGS.review,
    *,
    max_rounds: int | None = None,
    default_trust: float = 7.0,
) -> Verdict:
    """Run the convergence rules on the round just closed.

    Args:
        rounds: every round so far, oldest first, each as agent → stance with earlier stances
            carried forward; the last one is the round being closed.
        participants: who is expected to take a position (empty: whoever did).
        trust: agent → trust score; an agent missing here weighs ``default_trust``.
        settings: thresholds and switches.
        max_rounds: the review's own round limit (default: ``settings.max_rounds``).
        default_trust: the weight of an agent with no score yet.
    """
    if not rounds:
        return Verdict(converged=False)
    limit = settings.max_rounds if max_rounds is None else max_rounds
    current = rounds[-1]
    previous = rounds[-2] if len(rounds) > 1 else None
    voters = _electorate(participants, rounds)
    weights = tally(current, voters, trust, default_trust)
    now_shares = shares(weights)
    leader = majority(weights)
    share = now_shares.get(leader, 0.0) if leader else 0.0
    absent = tuple(a for a in voters if a not in current)
    change = 1.0
    if previous is not None:
        change = _change(shares(tally(previous, voters, trust, default_trust)), now_shares)

    def verdict(rule: str, stance: str) -> Verdict:
        dissent = tuple(a for a in sorted(current) if stance and current[a] != stance)
        return Verdict(
            converged=bool(rule),
            rule=rule,
            stance=stance,
            share=share,
            tally=weights,
            dissent=dissent,
            absent=absent,
            change=change,
        )

    stances = set(current.values())
    if current and not absent and len(stances) == 1:
        return verdict("unanimous", stances.pop())
    if leader and share > settings.supermajority:
        return verdict("supermajority", leader)
    if len(rounds) >= limit:
        return verdict("max_rounds", leader)
    if previous is not None and leader:
        if settings.stable and dict(previous) == dict(current):
            return verdict("stable", leader)
        if change < settings.diminishing_returns:
            return verdict("diminishing_returns", leader)
    return verdict("", leader)
