"""Numbers in swarmlog.toml that the event log cannot hold: a whole number beyond 64 bits, inf or
nan. `config check` passed them and `run` then died with a traceback (OverflowError writing the
snapshot) or its agents crash-looped; now each is refused on one line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_helpers import one_error_line
from tests.cli_helpers import swarmlog_in as _swarmlog


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    ws = tmp_path / "night"
    assert _swarmlog(ws, "init", "--no-detect").returncode == 0
    return ws


def _set(ws: Path, table: str, line: str) -> None:
    text = (ws / "swarmlog.toml").read_text()
    assert f"\n[{table}]\n" in text
    (ws / "swarmlog.toml").write_text(text.replace(f"\n[{table}]\n", f"\n[{table}]\n{line}\n", 1))


@pytest.mark.parametrize(
    ("table", "line", "path", "shown"),
    [
        ("limits", "max_attempts = 99999999999999999999999", "limits.max_attempts", "9999999"),
        ("limits", "lease_s = inf", "limits.lease_s", "inf"),
        ("models.fast", "timeout_s = nan", "models.fast.timeout_s", "nan"),
        ("agents.builder", "timeout_s = 1e400", "agents.builder.timeout_s", "inf"),
        ("escalation", "queue_depth = 99999999999999999999", "escalation.queue_depth", "9999999"),
        ("escalation.budget", "cost = inf", "escalation.budget.cost", "inf"),
    ],
)
def test_config_check_refuses_a_number_the_log_cannot_hold(
    ws: Path, table: str, line: str, path: str, shown: str
) -> None:
    # The key is deleted first where init wrote it, so the table holds it once.
    key = line.split(" = ")[0]
    text = (ws / "swarmlog.toml").read_text()
    lines = text.split("\n")
    start = lines.index(f"[{table}]")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    kept = [x for x in lines[start + 1 : end] if not x.startswith(f"{key} =")]
    (ws / "swarmlog.toml").write_text("\n".join([*lines[: start + 1], *kept, *lines[end:]]))
    _set(ws, table, line)
    done = _swarmlog(ws, "config", "check")
    assert done.returncode == 1, done
    err = one_error_line(done.stderr)
    assert f"{path} = " in err and shown in err, err


def test_run_refuses_it_before_starting_anything(ws: Path) -> None:
    _set(ws, "limits", "queue_depth = 99999999999999999999999")
    text = (ws / "swarmlog.toml").read_text()
    (ws / "swarmlog.toml").write_text(text.replace("queue_depth = 100 ", "# was 100 ", 1))
    done = _swarmlog(ws, "run", "lint the repo")
    assert done.returncode == 1, done
    err = one_error_line(done.stderr)
    assert "limits.queue_depth" in err, err
    logged = "".join(p.read_text() for p in (ws / "memory" / "events").glob("*.ndjson"))
    assert "run_started" not in logged


def test_large_finite_numbers_within_64_bits_still_load(ws: Path) -> None:
    with (ws / "swarmlog.toml").open("a") as fh:
        fh.write("\n[routing]\nseed = 9223372036854775807\n")
    done = _swarmlog(ws, "config", "check")
    assert done.returncode == 0, done


def test_a_config_that_is_not_utf8_says_so(ws: Path) -> None:
    text = (ws / "swarmlog.toml").read_bytes()
    (ws / "swarmlog.toml").write_bytes(text.replace(b"# swarmlog.toml", b"# swarml\xe9g.toml", 1))
    done = _swarmlog(ws, "config", "check")
    assert done.returncode == 1, done
    err = one_error_line(done.stderr)
    assert "not UTF-8" in err and "0xe9" in err and "line 1" in err, err
    assert "codec" not in err and "fix the syntax" not in err, err
