"""The command line: help at each level, unknown subtasks, the key from the environment."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gesturenet_lib import cli, keys
from gesturenet_lib.cli import SUBTASKS
from gesturenet_lib.errors import UserInputError
from tests.conftest import REPO, SPECS

BIN = REPO / ".venv" / "bin" / "gesturenet"


def _subtask_names():
    return [m.__name__.rsplit(".", 1)[1] for m in SUBTASKS]


def test_help_lists_every_existing_subtask(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in _subtask_names():
        assert name in out


@pytest.mark.parametrize("name", _subtask_names())
def test_each_subtask_has_help(name, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([name, "--help"])
    assert exc.value.code == 0
    assert f"usage: gesturenet {name}" in capsys.readouterr().out


def test_unknown_subtask_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["trian"])
    assert exc.value.code == 2
    assert "invalid choice: 'trian'" in capsys.readouterr().err


def test_validate_without_a_spec_exits_2(capsys):
    assert cli.main(["validate"]) == 2
    assert "give at least one of" in capsys.readouterr().err


@pytest.mark.parametrize("entry", ["script", "module"])
def test_console_script_and_python_m_run(entry):
    cmd = [str(BIN)] if entry == "script" else [sys.executable, "-m", "gesturenet_lib"]
    if entry == "script" and not BIN.exists():
        pytest.skip("console script not installed in .venv")
    ok = subprocess.run(cmd + ["validate", "-e", str(SPECS / "train_spec.json")],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(cmd + ["nope"], capture_output=True, text=True)
    assert bad.returncode == 2


def test_key_flag_wins_over_environment(monkeypatch):
    monkeypatch.setenv(keys.KEY_ENV, "from-env")
    assert keys.resolve_key("from-flag") == "from-flag"
    assert keys.resolve_key(None) == "from-env"


def test_missing_key_is_a_user_error(monkeypatch):
    monkeypatch.delenv(keys.KEY_ENV, raising=False)
    with pytest.raises(UserInputError, match="GESTURENET_KEY"):
        keys.resolve_key(None)


def test_cli_does_not_import_heavy_libraries():
    code = ("import sys, gesturenet_lib.cli; "
            "print(sorted(m for m in ('tensorflow', 'kfp', 'apache_beam') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.stdout.strip() == "[]", out.stderr


def test_a_key_that_is_not_utf8_text_is_refused_at_the_edge():
    # Bytes that are not UTF-8 reach Python as lone surrogates; the refusal comes before any
    # work (train would otherwise fail after its first epochs, when it encrypts).
    env = {**os.environ, keys.KEY_ENV: os.fsdecode(b"\xff\xfeabc")}
    proc = subprocess.run([sys.executable, "-m", "gesturenet_lib", "train", "-e",
                           str(SPECS / "train_spec.json")],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    assert "GESTURENET_KEY" in proc.stderr and "not UTF-8" in proc.stderr
    with pytest.raises(UserInputError, match="-k/--key: the key is not UTF-8"):
        keys.optional_key(os.fsdecode(b"k\xe9y"))
