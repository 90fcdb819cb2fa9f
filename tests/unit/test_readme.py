"""The README: its first commands, the generated spec reference, the test command CI calls."""

from __future__ import annotations

import re

from gesturenet_lib.specs import reference
from tests.conftest import REPO

README = (REPO / "README.md").read_text()


def test_the_two_commands_come_first():
    first_block = re.search(r"```bash\n(.*?)```", README, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()]
    assert commands[:2] == ["make demo", "make test"]
    assert README.index("make demo") < README.index("## Usage")


def test_spec_reference_matches_the_spec_classes():
    assert reference.splice(README) == README, (
        "README spec reference is stale: run `make docs`")


def test_ci_runs_the_readme_test_command():
    assert "make test" in (REPO / ".ci" / "run").read_text()
