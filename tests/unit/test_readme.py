"""The README and docs/: the first commands, the generated spec reference, the links, the test
command CI calls."""

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
    specs = (REPO / "docs" / "specs.md").read_text()
    assert reference.BEGIN in specs
    assert reference.splice(specs) == specs, (
        "docs/specs.md's spec reference is stale: run `make docs`")


def test_readme_is_short_and_links_only_existing_docs():
    assert len(README.splitlines()) <= 200
    links = re.findall(r"\]\((docs/[^)#]+)", README)
    assert links and all((REPO / link).is_file() for link in links), links


def test_docs_lines_stay_readable():
    for doc in (REPO / "docs").glob("*.md"):
        fenced = False
        for number, line in enumerate(doc.read_text().splitlines(), 1):
            fenced ^= line.startswith("```")
            if not fenced and not line.startswith("|"):
                assert len(line) <= 120, f"{doc.name}:{number} is {len(line)} characters"


def test_ci_runs_the_readme_test_command():
    assert "make test" in (REPO / ".ci" / "run").read_text()
