"""``python -m lab4``: help for every subcommand, train -> evaluate -> predict -> score end to end,
and exit 2 with one line on stderr (no traceback) for bad input."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch

from lab4.cli import main

torch.set_num_threads(1)
SUBCOMMANDS = [
    "train",
    "evaluate",
    "predict",
    "score",
    "export",
    "make-data",
    "grid",
    "report",
    "bench",
    "speedrun",
    "gpucheck",
    "real-footage",
    "config-doc",
]
SMALL = ["--F_dim", "8", "--L_dim", "4", "--N_dim", "4", "--D_out_dim", "8", "--device", "cpu"]


def _env(tmp_path):
    env = dict(os.environ, LAB4_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    env.pop("LAB4_DATA", None)
    return env


def _run(args, tmp_path, cwd):
    return subprocess.run(
        [sys.executable, "-m", "lab4", *args],
        cwd=cwd,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _one_line_error(stderr):
    # what a terminal shows: tqdm bars (leave=False) are
    # overwritten with '\r', so keep each line's last segment
    lines = [line.split("\r")[-1] for line in stderr.split("\n")]
    lines = [line for line in lines if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert re.match(r"lab4 [a-z-]+: error: ", lines[0]), lines[0]
    return lines[0]


@pytest.mark.parametrize("cmd", SUBCOMMANDS)
def test_help_exits_zero(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_top_level_help_lists_subcommands(capsys):
    """The student's commands, then the maintainer's under their own heading; plain text, no reST."""
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert all(c in out for c in SUBCOMMANDS)
    student, maintainer = out.split("maintainer commands:")
    assert all(
        re.search(rf"^  {c} ", student, re.M)
        for c in ["train", "evaluate", "predict", "score", "export", "make-data", "report"]
    )
    assert all(
        re.search(rf"^  {c} ", maintainer, re.M)
        for c in ["grid", "study", "bench", "speedrun", "gpucheck", "real-footage"]
    )
    assert "``" not in out and "{train," not in out


def test_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out == f"lab4 {version('lab4')}\n"


# `python -m lab4 --help` in a fresh interpreter, then the modules it loaded (after a line of its own)
HELP_LOADS = """
import runpy, sys
sys.argv = ["lab4", "--help"]
try:
    runpy.run_module("lab4", run_name="__main__", alter_sys=True)
except SystemExit as e:
    assert e.code in (0, None), e.code
print("-- loaded --", *sorted(sys.modules))
"""


def test_top_level_help_loads_no_command_and_no_torch():
    """`lab4 --help` knows only the commands' names and help: no torch, no numpy, no command's module. What it
    loads, not how long it takes, is checked: a timing would fail on a busy machine."""
    r = subprocess.run([sys.executable, "-c", HELP_LOADS], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    shown, loaded = r.stdout.split("-- loaded --")
    assert "maintainer commands:" in shown and "--version" in shown
    loaded = loaded.split()
    assert "lab4.cli" in loaded  # runpy ran lab4/__main__.py, the entry point of `python -m lab4`
    assert "torch" not in loaded and "numpy" not in loaded
    work = [
        m
        for m in loaded
        if m.startswith(("lab4.grid", "lab4.perf", "lab4.report", "lab4.datasets", "lab4.run", "lab4.cli."))
        and m != "lab4.cli.flags"
    ]
    assert not work, work


@pytest.mark.timeout(600)  # several notebooks or processes: minutes on a slow 2-core CPU
def test_end_to_end_train_evaluate_predict_score(tiny_root, tmp_path):
    run = tmp_path / "run"
    r = _run(
        [
            "train",
            "--profile",
            "tiny",
            "--data-root",
            str(tiny_root),
            "--run-dir",
            str(run),
            "--num-epoch",
            "1",
            *SMALL,
        ],
        tmp_path,
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "trained" in r.stdout
    assert {"config.json", "metrics.csv", "last.pt"} <= {p.name for p in run.iterdir()}
    assert json.loads((run / "config.json").read_text())["data_root"] == str(tiny_root)

    r = _run(["evaluate", "--run-dir", str(run), "--device", "cpu"], tmp_path, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "validation PSNR" in r.stdout
    summary = json.loads((run / "val_summary.json").read_text())
    assert summary["frames"] == 24 and summary["mean_psnr"] > 0
    assert len((run / "psnr_per_frame.csv").read_text().strip().splitlines()) == 1 + 23

    r = _run(["predict", "--run-dir", str(run), "--device", "cpu"], tmp_path, tmp_path)
    assert r.returncode == 0, r.stderr
    sub = run / "submission.csv"
    lines = sub.read_text().splitlines()
    assert len(lines) == 1 + 5 * 24 and lines[0].startswith("id,0,1,")
    assert len(lines[0].split(",")) == 1 + 3 * 32 * 64
    assert (run / "pred_seq0.gif").is_file()

    out_json = tmp_path / "score.json"
    r = _run(
        ["score", str(sub), "--gt", str(tiny_root / "test_gt"), "--json", str(out_json)], tmp_path, tmp_path
    )
    assert r.returncode == 0, r.stderr
    assert "public" in r.stdout and "private" in r.stdout
    res = json.loads(out_json.read_text())
    assert 0 < res["public"] < 100 and 0 < res["private"] < 100 and len(res["per_sequence"]) == 5

    # a corrupt checkpoint: exit 2, one line naming the file, no traceback (through a real process)
    bad = tmp_path / "bad_run"
    shutil.copytree(run, bad)
    (bad / "last.pt").write_bytes(b"this is not a checkpoint")
    r = _run(["evaluate", "--run-dir", str(bad), "--device", "cpu"], tmp_path, tmp_path)
    assert r.returncode == 2
    assert str(bad / "last.pt") in _one_line_error(r.stderr)


def _help(args, capsys) -> str:
    with pytest.raises(SystemExit) as e:
        main([*args, "--help"])
    assert e.value.code == 0
    return capsys.readouterr().out


def _leaves(args, capsys) -> list[tuple[list[str], str]]:
    """(command path, its help) for every command that takes flags, nested ones (speedrun run, ...)
    included."""
    text = _help(args, capsys)
    usage = text.split("\n\n")[0]
    # a command of commands (its flags' choices have no "...")
    nested = re.search(r"\{([a-z,-]+)\} \.\.\.", usage)
    if nested:
        return [leaf for name in nested.group(1).split(",") for leaf in _leaves([*args, name], capsys)]
    return [(args, text)]


def test_every_flag_is_kebab_in_help_and_snake_is_accepted(capsys):
    from lab4.cli import build_parser

    shown_flags = 0
    for cmd in SUBCOMMANDS:
        for path, text in _leaves([cmd], capsys):
            flags = set(re.findall(r"(?<![\w-])--[A-Za-z][\w-]*", text)) - {"--help"}
            shown_flags += len(flags)
            # only the lower-case kebab spelling is shown
            assert all("_" not in f and f == f.lower() for f in flags), (path, sorted(flags))
    assert shown_flags > 60
    # a field with capitals answers to every old spelling: --f-dim is --F-dim, --F_dim and --f_dim
    for spelling in ("--f-dim", "--F-dim", "--F_dim", "--f_dim"):
        assert build_parser().parse_args(["train", spelling, "8"]).F_dim == 8
    # a two-word flag also answers to its snake_case spelling, on every kind of command
    for args in (
        ["gpucheck", "--out", "o", "--budget_s", "5", "--dry_run"],
        ["grid", "--train_deadline", "9"],
        ["real-footage", "build", "--out", "o", "--val_frames", "4"],
        ["bench", "--rollout_frames", "8"],
        ["report", "figures", "--runs", "r", "--figures_dir", "f"],
    ):
        assert vars(build_parser().parse_args(args)) == vars(
            build_parser().parse_args([a.replace("_", "-") for a in args])
        )
    # both spellings parse to the same values
    kebab = build_parser().parse_args(
        [
            "train",
            "--run-dir",
            "r",
            "--data-root",
            "d",
            "--num-epoch",
            "3",
            "--kl-anneal-type",
            "none",
            "--F-dim",
            "8",
            "--tfr-per-epoch",
            "true",
        ]
    )
    snake = build_parser().parse_args(
        [
            "train",
            "--run_dir",
            "r",
            "--data_root",
            "d",
            "--num_epoch",
            "3",
            "--kl_anneal_type",
            "none",
            "--F_dim",
            "8",
            "--tfr_per_epoch",
            "true",
        ]
    )
    assert vars(kebab) == vars(snake)
    assert (kebab.run_dir, kebab.data_root, kebab.num_epoch, kebab.kl_anneal_type, kebab.F_dim) == (
        "r",
        "d",
        3,
        "none",
        8,
    )
    assert vars(build_parser().parse_args(["evaluate", "--run_dir", "r", "--data_root", "d"])) == vars(
        build_parser().parse_args(["evaluate", "--run-dir", "r", "--data-root", "d"])
    )


def _main_error(args, capsys):
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 2
    return _one_line_error(err)


def test_missing_data_root(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LAB4_CACHE", str(tmp_path / "cache"))
    line = _main_error(
        [
            "train",
            "--profile",
            "tiny",
            "--data_root",
            str(tmp_path / "nowhere"),
            "--run-dir",
            str(tmp_path / "r"),
        ],
        capsys,
    )
    assert str(tmp_path / "nowhere") in line


@pytest.mark.parametrize(
    "flag, value",
    [("--kl_anneal_type", "linear"), ("--device", "gpu"), ("--synth-preset", "huge"), ("--profile", "nope")],
)
def test_a_value_that_is_not_a_choice_is_one_line(flag, value, capsys):
    """An enumeration's flag refuses anything but its choices before anything runs: one line that names the
    flag as help spells it, the value and the choices."""
    from lab4.config import choices

    with pytest.raises(SystemExit) as e:
        main(["train", "--profile", "tiny", flag, value])
    assert e.value.code == 2
    line = _one_line_error(capsys.readouterr().err)
    field = flag.lstrip("-").replace("-", "_")
    listed = ", ".join(choices(field))
    expected = f"argument {flag.replace('_', '-')}: invalid choice {value!r} (choose from {listed})"
    assert expected in line, line


def test_every_train_option_has_help_and_a_config_field_the_field_s(capsys):
    """`lab4 train --help`: every option has help; a config field's flag has the help and choices of the
    field's metadata (lab4/config/fields.py), the one text docs/config.md and the notebooks show too."""
    import argparse
    import dataclasses

    from lab4.cli import build_parser
    from lab4.config import Config, choices, field_help

    parser = build_parser()
    train = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["train"]
    train.load()
    actions = {a.dest: a for a in train._actions}
    assert all(a.help and a.help != argparse.SUPPRESS for a in actions.values()), [
        a.dest for a in actions.values() if not a.help
    ]
    for f in dataclasses.fields(Config):
        a = actions[f.name]
        assert a.option_strings[0] == "--" + f.name.lower().replace("_", "-")
        if f.name not in ("profile", "run_dir"):
            assert a.help == field_help(f.name), f.name
        if choices(f.name):
            assert a.metavar == "{" + ",".join(choices(f.name)) + "}", f.name
    assert parser.parse_args(["train", "--device", "cuda:1"]).device == "cuda:1"  # cuda:N stands for these
    text = _help(["train"], capsys)
    assert "{auto,cpu,cuda,cuda:N}" in text and "{lab,full,full-b16,gpu,quick,study,tiny}" in text


def test_corrupt_checkpoint_in_process(tiny_run, tmp_path, capsys):
    bad = tmp_path / "run"
    shutil.copytree(tiny_run, bad)
    (bad / "last.pt").write_bytes((tiny_run / "last.pt").read_bytes()[:1000])  # truncated
    line = _main_error(["evaluate", "--run-dir", str(bad), "--device", "cpu"], capsys)
    assert str(bad / "last.pt") in line


@pytest.mark.parametrize("content", ["", "id,0,1\n0,1,2\n", "garbage\n"])
def test_malformed_submission_for_score(tiny_root, tmp_path, capsys, content):
    p = tmp_path / "sub.csv"
    p.write_text(content)
    line = _main_error(["score", str(p), "--gt", str(tiny_root / "test_gt")], capsys)
    assert str(p) in line


def test_missing_submission_for_score(tiny_root, tmp_path, capsys):
    line = _main_error(["score", str(tmp_path / "none.csv"), "--gt", str(tiny_root / "test_gt")], capsys)
    assert "none.csv" in line


def test_a_run_is_named_after_its_schedule_unless_named(tmp_path):
    """`lab4 train --kl-anneal-type none` names its run `none` (it used to record the lab's default,
    cyclical)."""
    from lab4.config import make_config

    assert make_config("tiny", kl_anneal_type="none").name == "none"
    assert make_config("tiny").name == make_config("tiny").kl_anneal_type
    assert make_config("tiny", kl_anneal_type="none", name="mine").name == "mine"


def test_every_option_of_every_command_has_help():
    """Not only train's: each subcommand's parser is loaded and every option (maintainer commands too) says
    what it does."""
    import argparse

    from lab4 import cli

    bare, seen = [], 0

    def walk(parser, path):
        nonlocal seen
        if hasattr(parser, "load"):
            parser.load()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, [*path, name])
            elif action.dest != "help":
                seen += 1
                if not action.help:
                    bare.append(f"{' '.join(path)} {action.option_strings or action.dest}")

    walk(cli.build_parser(), [])
    assert seen > 100 and not bare, bare
