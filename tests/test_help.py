"""Every command's help explains it and shows an example a user can type."""

from __future__ import annotations

import pytest
from helpers_cli import hpctune

from hpctune.cli import cli


def test_top_level_help_has_an_example_and_lists_every_command(capsys):
    shown = hpctune(capsys, "--help")
    assert shown.code == 0
    assert "Example:" in shown.out and "hpctune run jobs/example.yaml" in shown.out
    assert "Exit codes:" in shown.out
    for name in cli.commands:
        assert f"  {name} " in shown.out, name


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_command_help_has_an_example(capsys, name):
    shown = hpctune(capsys, name, "--help")
    assert shown.code == 0
    example = shown.out.split("Example:", 1)
    assert len(example) == 2, f"hpctune {name} --help shows no example"
    assert f"hpctune {name} " in example[1]
    assert "--set KEY=VALUE" in shown.out, "every command takes overrides"
    assert "Exit codes:" in shown.out
    for param in cli.commands[name].params:
        if param.param_type_name == "option":
            assert param.help, f"hpctune {name} {param.opts[0]} has no help text"
