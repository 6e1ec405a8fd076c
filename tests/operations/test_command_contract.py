"""Every Confirma management command: help on every option, the shared exit statuses, and
a line in the README's operations table (the periodic ones in its cron lines too)."""

import argparse
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import get_commands, load_command_class

from core.commands import ConfirmaCommand

ROOT = Path(__file__).resolve().parents[2]
APPS = ("config", "payments", "notifications", "tickets", "subscriptions", "orders")
# Options every Django command has; Django documents them.
DJANGO_DEFAULTS = {
    "help",
    "version",
    "verbosity",
    "settings",
    "pythonpath",
    "traceback",
    "no_color",
    "force_color",
    "skip_checks",
}


def confirma_commands() -> dict[str, str]:
    """Command name → app, for the commands Confirma's own apps define."""
    return {name: app for name, app in get_commands().items() if app in APPS}


def test_the_project_has_the_commands_the_operations_table_describes():
    names = set(confirma_commands())
    # A sanity check of the walk below: it sees the commands of every app.
    assert {"run_periodic", "prune", "prune_events", "recover_print_jobs"} <= names
    assert {"expire_payment_sessions", "complete_machine_sessions"} <= names


def parsers_of(name: str, app: str):
    parser = load_command_class(app, name).create_parser("manage.py", name)
    pending = [(name, parser)]
    while pending:
        label, current = pending.pop()
        yield label, current
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                pending.extend((f"{label} {sub}", p) for sub, p in action.choices.items())


@pytest.mark.parametrize("name", sorted(confirma_commands()))
def test_every_option_of_every_command_has_help(name):
    app = confirma_commands()[name]
    missing = []
    for label, parser in parsers_of(name, app):
        for action in parser._actions:
            if action.dest in DJANGO_DEFAULTS:
                continue
            text = (action.help or "").strip()
            if not text or text == argparse.SUPPRESS:
                missing.append(f"{label} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, f"options without help: {missing}"
    assert (load_command_class(app, name).help or "").strip(), f"{name} has no help"


@pytest.mark.parametrize("name", sorted(confirma_commands()))
def test_every_command_keeps_the_shared_exit_statuses(name):
    assert isinstance(load_command_class(confirma_commands()[name], name), ConfirmaCommand)


def operations_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("\n## Operations")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def test_every_command_is_in_the_readme_operations_table():
    rows = [line for line in operations_section().splitlines() if line.startswith("| `")]
    # The first cell of a row names one or more commands: `name …` / `name …`.
    listed = {
        command.split()[0]
        for row in rows
        for command in re.findall(r"`([a-z_]+[^`]*)`", row.split("|")[1])
    }
    missing = sorted(set(confirma_commands()) - listed)
    assert not missing, f"commands missing from the README's operations table: {missing}"


def test_every_periodic_job_has_a_cron_line_in_the_readme():
    cron = re.search(r"```cron\n(.*?)```", operations_section(), re.S)
    assert cron, "the Operations section has no cron block"
    lines = cron.group(1).splitlines()
    for job in settings.PERIODIC_JOBS:
        command = " ".join(["manage.py", job["command"], *job.get("args", [])])
        assert any(command in line for line in lines), f"no cron line runs {command}"
