"""Starting ``swarmlog`` loads no heavy library: each command imports what it needs when it runs.

Every process of a run (supervisor, scheduler, monitor, renderer, each agent) and every operator
command imports ``swarmlog.cli``; the guard is behavioural (which modules a fresh interpreter holds
after building the full parser), not a timing.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "pydantic",
    "jinja2",
    "pynvml",
    "httpx",
    "psutil",
    "swarmlog.archive",
    "swarmlog.config",
    "swarmlog.doctor",
    "swarmlog.escalation",
    "swarmlog.hardware",
    "swarmlog.initconfig",
    "swarmlog.render",
    "swarmlog.replay",
    "swarmlog.routing",
    "swarmlog.snapshot",
    "swarmlog.watch",
)


def loaded_after(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; return which of HEAVY it left in ``sys.modules``."""
    report = f"print(json.dumps(sorted(m for m in sys.modules if m in {HEAVY!r})))"
    probe = f"{code}\nimport json, sys\n{report}"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    found: list[str] = json.loads(out.splitlines()[-1])
    return found


def test_importing_the_cli_and_building_every_parser_loads_no_heavy_module():
    assert loaded_after("import swarmlog.cli; swarmlog.cli.build_parser().format_help()") == []


def test_a_commands_help_loads_no_heavy_module():
    code = (
        "import contextlib, io, swarmlog.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert swarmlog.cli.main(['note', '--help']) == 0"
    )
    assert loaded_after(code) == []


def test_the_probe_sees_a_heavy_module_when_one_is_imported():
    """The guard is not vacuous: the same probe reports what a command imports when it runs."""
    found = loaded_after("import swarmlog.doctor")
    assert {"pydantic", "swarmlog.config", "swarmlog.doctor"} <= set(found)
