"""Topology: every (sender, recipient, type, priority) per phase, from the pure rule and the CLI."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from swarmlog.cli import main
from swarmlog.errors import ProtocolViolation
from swarmlog.events import MessageRejected, MessageSent, PhaseEntered
from swarmlog.log import FileLog, MemoryLog
from swarmlog.team.messaging import admit, judge
from swarmlog.team.settings import (
    AGENTS,
    MESSAGE_TYPES,
    PRIORITIES,
    TopologyRule,
    TopologySettings,
    team_settings,
)
from swarmlog.team.topology import check_message, role_of

SENDERS = (*AGENTS, "human")
RECIPIENTS = (*AGENTS, "ALL")
PHASES = ("", "planning", "execution", "review", "iteration")
PEERS = {"builder", "refactorer", "inspector"}


def expected(sender: str, to: str, kind: str, priority: str, phase: str) -> bool:
    """The seed's topology (guide §5) written out independently of the rule table."""
    if sender == to:
        return False  # nobody messages itself
    if sender == "human":
        return True  # the operator may message anyone
    if kind == "DECISION":
        return sender == "director"  # only the Director decides, whatever the priority
    if to == "director" and priority == "EMERGENCY":
        return True  # EMERGENCY always reaches the Director
    if sender == "director":
        return True  # the Director messages anyone and broadcasts to ALL
    if sender == "scribe":
        return kind == "STATUS"  # the Scribe sends only state summaries, to anyone
    if to in ("director", "scribe"):
        return True  # everyone reports to the Director; the Scribe receives everything
    if to == "scout" and kind == "REQUEST":
        return True  # anyone may query the Scout
    if sender == "scout" and kind == "RESPONSE":
        return True  # and the Scout answers
    if sender == "architect":
        return kind in ("STATUS", "RESPONSE", "ALERT")  # advises, never directs
    if to == "ALL" and kind == "STATUS":
        return True  # a status broadcast (the seed's example 1)
    return sender in PEERS and to in PEERS and phase in ("review", "iteration")


MATRIX = list(itertools.product(SENDERS, RECIPIENTS, MESSAGE_TYPES, PRIORITIES, PHASES))


def test_matrix_is_complete_and_mixed():
    allowed = sum(expected(*case) for case in MATRIX)
    assert len(MATRIX) == 8 * 8 * 5 * 4 * 5
    assert 0 < allowed < len(MATRIX)


def test_every_pair_in_every_phase_matches_the_seed():
    wrong = []
    for case in MATRIX:
        reason = check_message(*case)
        if (reason is None) != expected(*case):
            wrong.append((case, reason))
        if reason is not None:
            assert "\n" not in reason and reason.strip()
    assert wrong == []


@pytest.mark.parametrize(
    ("sender", "to", "kind", "priority", "phase", "allowed"),
    [
        ("builder", "director", "STATUS", "NORMAL", "execution", True),
        ("director", "ALL", "DECISION", "HIGH", "review", True),
        ("scribe", "ALL", "STATUS", "LOW", "execution", True),
        ("scribe", "director", "REQUEST", "NORMAL", "execution", False),
        ("scribe", "director", "ALERT", "EMERGENCY", "execution", True),
        ("builder", "inspector", "REQUEST", "NORMAL", "execution", False),
        ("builder", "inspector", "REQUEST", "NORMAL", "review", True),
        ("inspector", "refactorer", "ALERT", "HIGH", "iteration", True),
        ("refactorer", "builder", "RESPONSE", "NORMAL", "planning", False),
        ("inspector", "scout", "REQUEST", "NORMAL", "planning", True),
        ("scout", "inspector", "RESPONSE", "NORMAL", "planning", True),
        ("scout", "inspector", "REQUEST", "NORMAL", "planning", False),
        ("architect", "builder", "REQUEST", "NORMAL", "execution", False),
        ("architect", "builder", "STATUS", "NORMAL", "execution", True),
        ("architect", "director", "DECISION", "EMERGENCY", "review", False),
        ("inspector", "director", "ALERT", "EMERGENCY", "", True),
        ("builder", "ALL", "REQUEST", "NORMAL", "review", False),
        ("human", "builder", "DECISION", "LOW", "", True),
    ],
)
def test_spot_checks_from_the_guide(sender, to, kind, priority, phase, allowed):
    assert (check_message(sender, to, kind, priority, phase) is None) is allowed


def test_reasons_name_the_rule_and_the_phase():
    reason = check_message("builder", "inspector", "REQUEST", "NORMAL", "execution")
    assert reason is not None
    assert "builder" in reason and "inspector" in reason and "during execution" in reason
    reason = check_message("architect", "builder", "REQUEST", "NORMAL", "")
    assert reason is not None and "advises" in reason and "between phases" in reason
    reason = check_message("builder", "director", "DECISION", "NORMAL", "review")
    assert reason is not None and "only the director" in reason


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("builder", "director", "GOSSIP", "NORMAL", ""), "unknown message type 'GOSSIP'"),
        (("builder", "director", "STATUS", "URGENT", ""), "unknown priority 'URGENT'"),
        (("mallory", "director", "STATUS", "NORMAL", ""), "unknown sender 'mallory'"),
        (("builder", "bob", "STATUS", "NORMAL", ""), "unknown recipient 'bob'"),
        (("director", "director", "STATUS", "NORMAL", ""), "itself"),
    ],
)
def test_malformed_messages_are_refused_with_the_offending_value(args, fragment):
    reason = check_message(*args)
    assert reason is not None and fragment in reason


def test_agent_ids_map_to_roles():
    topology = TopologySettings(roles={"qa-bot": "inspector"})
    assert role_of("builder-2") == "builder"
    assert role_of("Inspector") == "inspector"
    assert role_of("qa-bot", topology) == "inspector"
    assert role_of("all") == "ALL"
    # two builders are peers in review, and the mapped id inherits the inspector's rights
    assert check_message("builder-1", "builder-2", "REQUEST", "NORMAL", "review") is None
    assert check_message("qa-bot", "builder", "ALERT", "HIGH", "review", topology) is None
    assert check_message("qa-bot", "builder", "ALERT", "HIGH", "planning", topology) is not None


def test_rules_are_configurable_first_match_wins():
    topology = team_settings(
        {
            "topology": {
                "rules": [
                    {"sender": "builder", "to": "inspector", "types": ["REQUEST"]},
                    {"allow": False, "reason": "quiet night"},
                ]
            }
        }
    ).topology
    assert check_message("builder", "inspector", "REQUEST", "LOW", "planning", topology) is None
    reason = check_message("director", "ALL", "STATUS", "LOW", "planning", topology)
    assert reason is not None and "quiet night" in reason
    # a rule limited to phases and priorities
    only = TopologySettings(
        rules=(TopologyRule(to="scout", phases=("planning",), priorities=("HIGH",)),)
    )
    assert check_message("builder", "scout", "STATUS", "HIGH", "planning", only) is None
    assert check_message("builder", "scout", "STATUS", "LOW", "planning", only) is not None
    assert check_message("builder", "scout", "STATUS", "HIGH", "review", only) is not None


# Admission through the log


def _message(sender: str, to: str, kind: str, priority: str = "NORMAL", n: int = 1) -> MessageSent:
    return MessageSent(msg_id=f"m{n}", sender=sender, to=to, type=kind, priority=priority)


def test_admit_folds_the_phase_from_the_log_and_records_rejections():
    log = MemoryLog(clock=lambda: 1_795_000_000.0)
    log.append([PhaseEntered(phase="execution")])
    with pytest.raises(ProtocolViolation, match="during execution"):
        admit(log, _message("builder", "inspector", "REQUEST"), "builder")
    rejected = list(log.read())[-1]
    assert isinstance(rejected, MessageRejected)
    assert (rejected.sender, rejected.to, rejected.phase) == ("builder", "inspector", "execution")
    log.append([PhaseEntered(phase="review")])
    stored = admit(log, _message("builder", "inspector", "request", "normal", 2), "builder")
    assert isinstance(stored, MessageSent)
    assert (stored.phase, stored.type, stored.priority, stored.actor) == (
        "review",
        "REQUEST",
        "NORMAL",
        "builder",
    )
    assert stored.seq == log.last_seq()


def test_an_agent_cannot_send_as_another():
    log = MemoryLog()
    with pytest.raises(ProtocolViolation, match="not the appending process"):
        admit(log, _message("director", "ALL", "DECISION"), "builder")
    (rejected,) = list(log.read())
    assert isinstance(rejected, MessageRejected)
    assert rejected.sender == "builder" and "'director'" in rejected.reason
    # an empty sender is filled in from the identity
    stored = admit(log, _message("", "director", "STATUS"), "Scout")
    assert isinstance(stored, MessageSent) and stored.sender == "scout"


def test_judge_is_pure_and_canonicalises():
    verdict = judge(_message("BUILDER", "all", "status"), "builder", "execution")
    assert isinstance(verdict, MessageSent)
    assert (verdict.sender, verdict.to, verdict.type) == ("builder", "ALL", "STATUS")


def test_admit_honours_expected_seq(tmp_path: Path):
    from swarmlog.errors import SeqConflict

    log = FileLog(tmp_path / "events", sync="none")
    try:
        log.append([PhaseEntered(phase="review")])
        with pytest.raises(SeqConflict):
            admit(log, _message("builder", "director", "STATUS"), "builder", expected_seq=0)
        assert log.last_seq() == 1
        stored = admit(log, _message("builder", "director", "STATUS"), "builder", expected_seq=1)
        assert stored.seq == 2
    finally:
        log.close()


# From the command line


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    assert main(["--dir", str(ws), "init"]) == 0
    return ws


def _cli_send(ws: Path, sender: str, fields: dict[str, str]) -> int:
    os.environ["SWARMLOG_AGENT"] = sender
    try:
        return main(
            ["--dir", str(ws), "append", "--sync", "none", "message_sent", json.dumps(fields)]
        )
    finally:
        del os.environ["SWARMLOG_AGENT"]


@pytest.mark.parametrize("phase", ["execution", "review"])
def test_every_pair_from_the_cli(workspace: Path, phase: str, capsys: pytest.CaptureFixture[str]):
    # NORMAL priority here; the priority dimension is covered by the pure matrix above.
    assert (
        main(["--dir", str(workspace), "append", "phase_entered", json.dumps({"phase": phase})])
        == 0
    )
    wrong = []
    for n, (sender, to, kind) in enumerate(itertools.product(AGENTS, RECIPIENTS, MESSAGE_TYPES)):
        fields = {"msg_id": f"m{n}", "to": to, "type": kind, "content": "hi"}
        code = _cli_send(workspace, sender, fields)
        if code != (0 if expected(sender, to, kind, "NORMAL", phase) else 1):
            wrong.append((sender, to, kind, code))
    assert wrong == []
    err = capsys.readouterr().err.splitlines()
    assert err and all(line.startswith("swarmlog: error: message ") for line in err)
    log = FileLog(workspace / "memory" / "events", create=False)
    try:
        events = list(log.read())
    finally:
        log.close()
    sent = [e for e in events if isinstance(e, MessageSent)]
    rejected = [e for e in events if isinstance(e, MessageRejected)]
    assert len(sent) + len(rejected) == len(AGENTS) * len(RECIPIENTS) * len(MESSAGE_TYPES)
    assert len(rejected) == len(err)
    assert all(e.phase == phase and e.actor == e.sender for e in sent)


def test_cli_sender_field_cannot_impersonate(workspace: Path, capsys: pytest.CaptureFixture[str]):
    fields = {"msg_id": "x", "sender": "director", "to": "ALL", "type": "DECISION"}
    assert _cli_send(workspace, "builder", fields) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not the appending process 'builder'" in err


def test_cli_stdin_messages_are_admitted_too(workspace: Path, monkeypatch, capsys):
    import io

    lines = [
        {"kind": "phase_entered", "phase": "planning"},
        {"kind": "message_sent", "msg_id": "a", "to": "director", "type": "STATUS"},
        {"kind": "message_sent", "msg_id": "b", "to": "builder", "type": "REQUEST"},
    ]
    monkeypatch.setenv("SWARMLOG_AGENT", "inspector")
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(json.dumps(x) for x in lines)))
    assert main(["--dir", str(workspace), "append", "--stdin", "--sync", "none"]) == 1
    out, err = capsys.readouterr()
    assert out.split() == ["1", "2"]
    assert "refused (message_rejected seq 3)" in err and "during planning" in err


def test_agent_processes_are_bound_to_their_identity(workspace: Path):
    """Real processes: SWARMLOG_AGENT decides who sends, whatever the JSON claims."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWARMLOG_")}
    script = (
        "import sys; from swarmlog.cli import main; "
        "sys.exit(main(['--dir', sys.argv[1], 'append', 'message_sent', sys.argv[2]]))"
    )
    cases = [
        (
            "inspector",
            {"msg_id": "p1", "to": "director", "type": "ALERT", "priority": "EMERGENCY"},
            0,
        ),
        ("scribe", {"msg_id": "p2", "sender": "director", "to": "ALL", "type": "DECISION"}, 1),
        ("architect", {"msg_id": "p3", "to": "builder", "type": "REQUEST"}, 1),
    ]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(workspace), json.dumps(fields)],
            env={**env, "SWARMLOG_AGENT": who},
            stderr=subprocess.PIPE,
            text=True,
        )
        for who, fields, _ in cases
    ]
    for proc, (_, _, code) in zip(procs, cases, strict=True):
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == code, err
        assert (err == "") is (code == 0)
    log = FileLog(workspace / "memory" / "events", create=False)
    try:
        events = list(log.read())
    finally:
        log.close()
    seen = sorted(
        (type(e).__name__, e.msg_id, e.sender)
        for e in events
        if isinstance(e, MessageSent | MessageRejected)
    )
    assert seen == [
        ("MessageRejected", "p2", "scribe"),
        ("MessageRejected", "p3", "architect"),
        ("MessageSent", "p1", "inspector"),
    ]
