"""The README's commands are the ones CI and users run; keep them true."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return [b.strip() for b in re.findall(r"```sh\n(.*?)```", text, re.S)]


def test_readme_has_setup_and_test_commands_first():
    setup, tests = readme_commands()[:2]
    assert "pip install -c constraints.txt" in setup and "archdsl" in setup
    assert "pytest" in tests


def test_ci_runs_exactly_the_readme_test_command():
    test_command = readme_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command in ci.splitlines(), "README test command and .ci/run differ"


def test_constraints_pin_cpu_torch():
    assert "torch==2.13.0" in (ROOT / "constraints.txt").read_text().splitlines()
