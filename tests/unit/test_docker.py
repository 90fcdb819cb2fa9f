"""Container images: both Dockerfiles lint clean, and the CPU image installs exactly the
project's pinned dependencies (requirements.lock is the one list)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib

import pytest
from packaging.requirements import Requirement

from tests.conftest import REPO

HADOLINT = shutil.which("hadolint") or str(REPO / ".venv/bin/hadolint")


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.gpu"])
def test_dockerfiles_lint_clean(dockerfile):
    result = subprocess.run([HADOLINT, str(REPO / "docker" / dockerfile)], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _lock() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        name, _, version = line.partition("==")
        pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def test_cpu_image_installs_the_pinned_dependencies():
    text = (REPO / "docker" / "Dockerfile").read_text()
    assert re.search(r"^COPY requirements\.lock ", text, re.M)
    assert "pip install -c requirements.lock ." in text
    assert re.search(r"^USER \d+$", text, re.M)  # not root
    assert 'ENTRYPOINT ["gesturenet"]' in text


def test_the_lock_pins_every_runtime_dependency_within_its_range():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = _lock()
    for spec in project["dependencies"]:
        requirement = Requirement(spec)
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not in requirements.lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (name, pins[name])
