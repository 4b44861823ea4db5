"""`study --help` and every subcommand's: each flag explains itself, with its default."""

from __future__ import annotations

import argparse

import yaml

from pipelines.cli import build_parser
from tests.conftest import REPO


def parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("study",)):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from parsers(child, (*path, name))


def test_every_flag_of_every_subcommand_has_help_and_shows_its_default():
    missing, no_default = [], []
    for path, parser in parsers(build_parser()):
        help_text = parser.format_help()
        assert "`" not in help_text, f"{' '.join(path)}: literal backticks in its help"
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            name = "/".join(action.option_strings) or action.dest
            if not action.help:
                missing.append(f"{' '.join(path)} {name}")
            elif (action.option_strings and action.default not in (None, False, [], argparse.SUPPRESS)
                  and "default" not in parser._get_formatter()._get_help_string(action)):
                no_default.append(f"{' '.join(path)} {name}")
    assert missing == [], f"flags without help: {missing}"
    assert no_default == [], f"flags whose help does not show the default: {no_default}"


def test_study_run_help_lists_every_profile_with_its_description():
    run = dict(parsers(build_parser()))[("study", "run")].format_help()
    profiles = yaml.safe_load((REPO / "components" / "core" / "profiles.yaml").read_text())
    for name, body in profiles.items():
        assert f"  {name}" in run and body["description"] in " ".join(run.split())


def test_sweep_stage_help_says_how_to_cut_trials():
    stage = " ".join(dict(parsers(build_parser()))[("study", "sweep", "stage")].format_help().split())
    assert "sweeps.max_trials.STAGE=N" in stage and "sweeps.epochs=N" in stage


def test_the_sweep_flags_follow_the_sweep_definitions(capsys):
    import pytest

    from tests.fixtures.trials.fourth_sweep import fourth_sweep

    def refused(*argv: str) -> str:
        with pytest.raises(SystemExit) as stopped:
            build_parser(argv[0]).parse_args(list(argv))
        assert stopped.value.code == 2
        return capsys.readouterr().err

    common = ("--data", "d", "--out", "o")
    assert "invalid choice: 'batch_size'" in refused("sweep", "stage", "batch_size", *common)
    assert "expected optimizer=..., activations=... or filters=..." in refused(
        "sweep", "stage", "filters", "--fixed", "batch_size=64", *common)
    with fourth_sweep():
        stage = " ".join(dict(parsers(build_parser()))[("study", "sweep", "stage")].format_help().split())
        assert "filters (81 trials), batch_size (2 trials)" in stage
        args = build_parser("sweep").parse_args(["sweep", "stage", "batch_size", "--fixed", "batch_size=64", *common])
        assert (args.stage, args.fixed) == ("batch_size", ["batch_size=64"])
        report = build_parser("report").parse_args(["report", "--data", "d", "--model", "m", "--evaluation", "e",
                                                    "--sweep", "batch_size=runs/x", "--out", "o"])
        assert report.sweep == ["batch_size=runs/x"]
    assert "STAGE one of optimizer, activations, filters" in refused(
        "report", "--data", "d", "--model", "m", "--evaluation", "e", "--sweep", "batch_size=runs/x", "--out", "o")
