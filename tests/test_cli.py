"""Every `lcasr-jax` command answers --help with its usage and exit status 0."""

import pytest

from lcasr_jax import cli


def _run(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except SystemExit as e:  # argparse's --help exits
        return int(e.code or 0)


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_command_has_help(name, capsys):
    assert _run([name, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: lcasr-jax {name}"), out[:200]


@pytest.mark.parametrize("name, sub", [
    *[("data", s) for s in ("synth", "build", "convert", "inspect", "cache")],
    *[("analyze", s) for s in ("attention", "attribution", "figures")]])
def test_subcommands_have_help(name, sub, capsys):
    assert _run([name, sub, "--help"]) == 0
    assert capsys.readouterr().out.startswith(f"usage: lcasr-jax {name} {sub}")


def test_top_level_usage_lists_every_command(capsys):
    assert _run(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name} " in out for name in cli.COMMANDS)
    assert _run(["nope"]) == 2
