"""Every command's help describes every option, and flags show no value type."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from creditflow.cli import app


def _commands(command, path: tuple[str, ...] = ()):
    yield path, command
    if hasattr(command, "commands"):  # a group (Typer's own Click classes)
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))


def test_every_option_is_described_and_no_flag_shows_a_type():
    root = typer.main.get_command(app)
    runner = CliRunner()
    checked = 0
    for path, command in _commands(root):
        undescribed = [param.name for param in command.params
                       if param.param_type_name == "option" and not param.help]
        assert not undescribed, (path, undescribed)
        result = runner.invoke(app, [*path, "--help"], terminal_width=120)
        assert result.exit_code == 0, result.output
        assert "<bool>" not in result.output, (path, result.output)
        checked += 1
    assert checked >= 10  # serve, worker, migrate, demo, catalog check, ledger check, keys ...
