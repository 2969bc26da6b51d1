"""The student's run commands: make-data, train, evaluate, predict, score, export.

Each command is its flags and what it runs; the work is lab4's (pipeline, runs, evaluate, checkpoint),
imported when the command runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from lab4.cli.flags import add_flag, config_flag
from lab4.config import SYNTH_PRESETS, Config, field_help, make_config, summary
from lab4.run.folder import RunDir
from lab4.util.errors import Lab4Error
from lab4.util.paths import absolute, run_folder, shown


def _config_args(p: argparse.ArgumentParser) -> None:
    """Every config field as ``--field-name``, with the help and choices of the field's metadata
    (``--field_name``, as in the notebooks' parameters cells, works too)."""
    g = p.add_argument_group("config fields (default: the lab's, then the profile's; docs/config.md)")
    for f in dataclasses.fields(Config):
        if f.name not in ("profile", "run_dir"):
            config_flag(g, f.name)


def _overrides(args) -> dict:
    return {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(Config)
        if f.name not in ("profile", "run_dir") and getattr(args, f.name, None) is not None
    }


def make_data_flags(s) -> None:
    add_flag(s, "preset", default="small", choices=SYNTH_PRESETS, help=field_help("synth_preset"))
    add_flag(
        s,
        "out",
        default="",
        help="folder (default data/synthdance-<preset> under $LAB4_HOME, else the checkout, else here)",
    )
    add_flag(s, "seed", type=int, default=0, help="the dataset's random seed: another seed, other dances")
    add_flag(s, "height", type=int, default=64, help="frame height in pixels, as written to the PNGs")
    add_flag(s, "width", type=int, default=128, help="frame width in pixels, as written to the PNGs")


def cmd_make_data(args) -> None:
    from lab4.datasets.official import default_synth_root
    from lab4.datasets.synth import make_synthdance

    out = absolute(args.out) if args.out else default_synth_root(args.preset)
    try:
        root = make_synthdance(out, preset=args.preset, seed=args.seed, height=args.height, width=args.width)
    except (ValueError, FileExistsError) as e:
        raise Lab4Error(str(e)) from None
    print(f"SynthDance '{args.preset}' in {root}")


def train_flags(s) -> None:
    config_flag(s, "profile", default="quick", help=f"{field_help('profile')} Default here: quick.")
    config_flag(
        s,
        "run_dir",
        default="",
        help=f"{summary('run_dir')} Default: runs/<profile>/<name> under $LAB4_HOME, else the checkout, else "
        "here.",
    )
    add_flag(
        s,
        "resume",
        action="store_true",
        help="continue the run in the folder from its last.pt; refused if the folder holds a run with other "
        "settings",
    )
    add_flag(
        s,
        "overwrite",
        action="store_true",
        help="replace the run in the folder, if there is one (it says what it removed)",
    )
    _config_args(s)


def cmd_train(args) -> None:
    """The whole run: train, validate, predict, summary.json (lab4.run.pipeline), as 02_train and the grid do
    it."""
    from lab4.run.pipeline import run_experiment

    kw = _overrides(args)
    name = make_config(args.profile, **kw).name  # given, else named after what it trains (run_name)
    run_dir = absolute(args.run_dir) if args.run_dir else run_folder(args.profile, name)
    cfg = make_config(args.profile, run_dir=str(run_dir), **kw)
    run_experiment(cfg, resume=args.resume, overwrite=args.overwrite)
    print(
        f"{cfg.name} -> {shown(cfg.run_dir)} (summary.json written; `lab4 report table --runs "
        f"{shown(Path(cfg.run_dir).parent)}` lists it)"
    )


def evaluate_flags(s) -> None:
    add_flag(s, "run_dir", required=True, help="the run folder (lab4 train's or 02_train's)")
    add_flag(
        s, "checkpoint", default=RunDir.LAST, help="in <run-dir>, or a path; ours or the course template's"
    )
    add_flag(s, "data_root", default="", help="dataset (default: the one the run trained on)")
    config_flag(s, "device", default="auto")
    add_flag(s, "seed", type=int, default=None, help="seed of the prior samples (default: the run's seed)")


def cmd_evaluate(args) -> None:
    """On --data-root if given, else on the dataset the run trained on (gone or changed is an error)."""
    from lab4.run.after_training import evaluate_run

    ev = evaluate_run(
        args.run_dir,
        args.data_root,
        seed=args.seed,
        checkpoint=args.checkpoint,
        device=args.device,
        progress=True,
    )
    print(
        f"{ev['name']}: validation PSNR {ev['mean_psnr']:.2f} dB, SSIM {ev['mean_ssim']:.3f} "
        f"over {ev['frames'] - 1} "
        f"generated frames (repeat-first-frame {ev['baseline_mean_psnr']:.2f} dB) -> "
        f"{Path(args.run_dir) / RunDir.PSNR}"
    )


def predict_flags(s) -> None:
    evaluate_flags(s)
    add_flag(s, "out", default="", help="default <run-dir>/submission.csv")


def cmd_predict(args) -> None:
    from lab4.run.after_training import predict_run

    pred = predict_run(
        args.run_dir,
        args.data_root,
        out=args.out,
        seed=args.seed,
        checkpoint=args.checkpoint,
        device=args.device,
        progress=True,
    )
    n = pred["sequences"]
    print(
        f"{n} test sequences -> {pred['submission']} and pred_seq0..{n - 1}.gif"
        + (
            ""
            if pred["public"] is None
            else f" (local score: public {pred['public']:.3f} dB, private {pred['private']:.3f} dB)"
        )
    )


def score_flags(s) -> None:
    s.add_argument("submission", help="the submission.csv to score")
    add_flag(s, "gt", default="", help="folder of test ground truth <gt>/<k>/frame<N>.png")
    add_flag(s, "data_root", default="", help="dataset whose test_gt/ to use (default SynthDance)")
    config_flag(
        s,
        "synth_preset",
        default="small",
        help="the SynthDance whose test_gt/ to use when no dataset is named",
    )
    add_flag(s, "json", default="", help="also write the scores here")


def cmd_score(args) -> None:
    from lab4.datasets.official import load_test_gt
    from lab4.evaluate import score

    if args.gt:
        gt_root = Path(args.gt)
    else:
        from lab4.datasets.official import resolve_data_root

        gt_root = resolve_data_root(args.data_root, args.synth_preset) / "test_gt"
    res = score(args.submission, load_test_gt(gt_root))
    print(f"public {res['public']:.3f} dB  private {res['private']:.3f} dB  (all {res['overall']:.3f} dB)")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")


def export_flags(s) -> None:
    add_flag(s, "run_dir", required=True, help="the run folder")
    add_flag(s, "checkpoint", default=RunDir.LAST, help="in <run-dir>, or a path")
    add_flag(s, "out", required=True, help="the file to write, e.g. model.ckpt")


def cmd_export(args) -> None:
    from lab4.checkpoint import load_checkpoint, save_template

    src = absolute(args.run_dir) / args.checkpoint
    state = load_checkpoint(src)
    if "config" not in state:  # a template checkpoint: its dims and schedule come from the run's config.json
        state["config"] = RunDir(absolute(args.run_dir)).load_config().to_dict()
    out = absolute(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_template(out, state)
    print(f"{src} -> {out} (the course template's layout: state_dict, optimizer, lr, tfr, last_epoch)")


# command -> (add its flags, run it)
COMMANDS = {
    "make-data": (make_data_flags, cmd_make_data),
    "train": (train_flags, cmd_train),
    "evaluate": (evaluate_flags, cmd_evaluate),
    "predict": (predict_flags, cmd_predict),
    "score": (score_flags, cmd_score),
    "export": (export_flags, cmd_export),
}
