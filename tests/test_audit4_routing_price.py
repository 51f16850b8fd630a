"""``route --explain`` must let a reader rebuild every score from what it prints. Price multiplies
a candidate's score by 1 + cost_weight * cost / (the dearest eligible cost), but nothing printed
said so: with priced profiles, 'score 15.803  expected 15.050s' had no explanation."""

from __future__ import annotations

import re
from pathlib import Path

from tests.cli_helpers import swarmlog_in

CONFIG = """
[models.fast]
endpoint = "http://127.0.0.1:9/v1"
model = "m1"
cost_per_1k_tokens = 0.001

[models.deep]
endpoint = "http://127.0.0.1:9/v1"
model = "m2"
cost_per_1k_tokens = { input = 0.001, output = 0.003 }

[models.free]
endpoint = "http://127.0.0.1:9/v1"
model = "m3"
"""
LINE = re.compile(r"^ [ *] (\w+)\s+score\s+([\d.]+)\s+expected ([\d.]+)s\s+\S+ busy\s+(.*)$")


def _lines(ws: Path, *args: str) -> dict[str, tuple[float, float, str]]:
    done = swarmlog_in(ws, "route", "--explain", *args)
    assert done.returncode == 0, done.stderr
    rows = {}
    for line in done.stdout.splitlines():
        m = LINE.match(line)
        if m:
            rows[m[1]] = (float(m[2]), float(m[3]), m[4])
    assert set(rows) == {"fast", "deep", "free"}, done.stdout
    return rows


def test_explain_names_the_price_factor_of_each_score(tmp_path: Path) -> None:
    (tmp_path / "swarmlog.toml").write_text(CONFIG)
    rows = _lines(tmp_path)
    score, expected, reason = rows["fast"]
    # fast costs 0.002 per 1k tokens (in + out), deep 0.004: x(1 + 0.05 * 0.002 / 0.004)
    assert "price x1.025 ([routing] cost_weight 0.05 x 0.002/0.004 per 1k tokens)" in reason
    assert abs(score - expected * 1.025) < 0.002, rows["fast"]
    assert "price x1.050" in rows["deep"][2]
    free = rows["free"]
    assert "price" not in free[2] and free[0] == free[1]
    # Interactive tasks take the lowest expected time: no price, no factor printed.
    for score, expected, reason in _lines(tmp_path, "--interactive").values():
        assert score == expected and "price" not in reason
