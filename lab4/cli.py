"""``lab4`` (or ``python -m lab4``): every command of the lab in one place.

Each command exits 0 on success and 2 with one line on bad input. The run commands (train, evaluate,
predict, score, export, make-data) live here; the others are registered from the module that does the
work (COMMANDS), and ``python -m <that module>`` is an alias. Flags are kebab-case (``--num-epoch``); the
config fields' snake_case (``--num_epoch``) is accepted too."""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
from pathlib import Path

from lab4.config import Config, PROFILES, make_config
from lab4.rundir import RunDir
from lab4.util.cliargs import KebabHelpFormatter, add_flag
from lab4.util.errors import Lab4Error
from lab4.util.paths import absolute, home


def _config_args(p: argparse.ArgumentParser) -> None:
    """Every config field as ``--field-name`` (``--field_name``, as in the notebooks' parameters cells, works too)."""
    g = p.add_argument_group("config fields (default: the lab's, then the profile's)")
    for f in dataclasses.fields(Config):
        if f.name in ("profile", "run_dir"):
            continue
        if isinstance(f.default, bool):
            add_flag(g, f.name, type=_bool, default=None, metavar="{true,false}")
        elif isinstance(f.default, tuple):
            add_flag(g, f.name, type=int, nargs="+", default=None)
        else:
            add_flag(g, f.name, type=type(f.default), default=None)


def _bool(s: str) -> bool:
    if s.lower() in ("1", "true", "yes", "on"):
        return True
    if s.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {s!r}")


def _overrides(args) -> dict:
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(Config)
            if f.name not in ("profile", "run_dir") and getattr(args, f.name, None) is not None}


def cmd_make_data(args) -> None:
    from lab4.datasets.official import default_synth_root
    from lab4.datasets.synth import make_synthdance
    out = absolute(args.out) if args.out else default_synth_root(args.preset)
    try:
        root = make_synthdance(out, preset=args.preset, seed=args.seed, height=args.height, width=args.width)
    except (ValueError, FileExistsError) as e:
        raise Lab4Error(str(e)) from None
    print(f"SynthDance '{args.preset}' in {root}")


def cmd_train(args) -> None:
    from lab4.train import Trainer
    kw = _overrides(args)
    name = make_config(args.profile, **kw).name  # given, else the schedule's
    run_dir = absolute(args.run_dir) if args.run_dir else home() / "runs" / args.profile / name
    cfg = make_config(args.profile, run_dir=str(run_dir), **kw)
    trainer = Trainer(cfg).fit(resume=args.resume)
    last = next((r for r in reversed(trainer.rows) if r["kind"] == "epoch"), {})
    msg = f"trained {cfg.name} for {trainer.epoch} epochs -> {cfg.run_dir}"
    if last.get("val_psnr") not in (None, ""):
        msg += f" (val PSNR {float(last['val_psnr']):.2f} dB, repeat-first-frame {float(last['baseline_psnr']):.2f} dB)"
    print(msg)


def cmd_evaluate(args) -> None:
    """On --data-root if given, else on the dataset the run trained on (gone or changed is an error)."""
    from lab4.runs import evaluate_run
    ev = evaluate_run(args.run_dir, args.data_root, seed=args.seed, checkpoint=args.checkpoint, device=args.device,
                      progress=True)
    print(f"{ev['name']}: validation PSNR {ev['mean_psnr']:.2f} dB, SSIM {ev['mean_ssim']:.3f} over {ev['frames'] - 1} "
          f"generated frames (repeat-first-frame {ev['baseline_mean_psnr']:.2f} dB) -> "
          f"{Path(args.run_dir) / RunDir.PSNR}")


def cmd_predict(args) -> None:
    from lab4.runs import predict_run
    pred = predict_run(args.run_dir, args.data_root, out=args.out, seed=args.seed, checkpoint=args.checkpoint,
                       device=args.device, progress=True)
    n = pred["sequences"]
    print(f"{n} test sequences -> {pred['submission']} and pred_seq0..{n - 1}.gif" + ("" if pred["public"] is None else
          f" (local score: public {pred['public']:.3f} dB, private {pred['private']:.3f} dB)"))


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


def cmd_export(args) -> None:
    from lab4.checkpoint import load_checkpoint
    from lab4.checkpoint import save_template
    src = absolute(args.run_dir) / args.checkpoint
    state = load_checkpoint(src)
    if "config" not in state:  # a template checkpoint: its dims and schedule come from the run's config.json
        state["config"] = RunDir(absolute(args.run_dir)).load_config().to_dict()
    out = absolute(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_template(out, state)
    print(f"{src} -> {out} (the course template's layout: state_dict, optimizer, lr, tfr, last_epoch)")


# command -> the module that defines HELP, add_arguments(parser) and run(args) -> exit status
COMMANDS = {
    "grid": "lab4.grid.driver",
    "study": "lab4.grid.study",
    "report": "lab4.report.build",
    "bench": "lab4.perf.bench",
    "speedrun": "lab4.perf.speedrun",
    "gpucheck": "lab4.perf.gpucheck",
    "real-footage": "lab4.datasets.real_footage",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lab4", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, fn, text):
        s = sub.add_parser(name, help=text, description=text, formatter_class=KebabHelpFormatter)
        s.set_defaults(fn=fn)
        return s

    s = command("make-data", cmd_make_data, "generate SynthDance in the official layout")
    add_flag(s, "preset", default="small", choices=["tiny", "small", "full"])
    add_flag(s, "out", default="", help="folder (default data/synthdance-<preset> under $LAB4_HOME, else the checkout, else here)")
    add_flag(s, "seed", type=int, default=0)
    add_flag(s, "height", type=int, default=64)
    add_flag(s, "width", type=int, default=128)

    s = command("train", cmd_train, "train one experiment into a run folder")
    add_flag(s, "profile", default="quick", choices=list(PROFILES))
    add_flag(s, "run_dir", default="", help="default runs/<profile>/<name> under $LAB4_HOME, else the checkout, else here")
    add_flag(s, "resume", action="store_true", help="continue from <run-dir>/last.pt")
    _config_args(s)

    for name, fn, text in (("evaluate", cmd_evaluate, "validation rollout: PSNR/SSIM per frame, figure, samples"),
                           ("predict", cmd_predict, "test rollout: submission.csv and pred_seq<k>.gif")):
        s = command(name, fn, text)
        add_flag(s, "run_dir", required=True)
        add_flag(s, "checkpoint", default="last.pt", help="in <run-dir>, or a path; ours or the course template's")
        add_flag(s, "data_root", default="", help="dataset (default: the one the run trained on)")
        add_flag(s, "device", default="auto")
        add_flag(s, "seed", type=int, default=None, help="seed of the prior samples (default: the run's seed)")
        if name == "predict":
            add_flag(s, "out", default="", help="default <run-dir>/submission.csv")

    s = command("score", cmd_score, "score a submission as the course does (public/private PSNR)")
    s.add_argument("submission")
    add_flag(s, "gt", default="", help="folder of test ground truth <gt>/<k>/frame<N>.png")
    add_flag(s, "data_root", default="", help="dataset whose test_gt/ to use (default SynthDance)")
    add_flag(s, "synth_preset", default="small")
    add_flag(s, "json", default="", help="also write the scores here")

    s = command("export", cmd_export, "write a run's checkpoint in the course template's layout")
    add_flag(s, "run_dir", required=True)
    add_flag(s, "checkpoint", default="last.pt", help="in <run-dir>, or a path")
    add_flag(s, "out", required=True, help="the file to write, e.g. model.ckpt")

    for name, module in COMMANDS.items():
        m = importlib.import_module(module)
        s = sub.add_parser(name, help=m.HELP, formatter_class=KebabHelpFormatter)
        m.add_arguments(s)
        s.set_defaults(fn=m.run, interrupted=getattr(m, "INTERRUPTED", ""))
    return p


def main(argv=None) -> int:
    """The one error handler: a Lab4Error is one line and exit 2, Ctrl-C exit 130."""
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args) or 0
    except Lab4Error as e:
        print(f"lab4 {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = getattr(args, "interrupted", "")
        print(f"lab4 {args.command}: interrupted" + (f" ({hint})" if hint else ""), file=sys.stderr)
        return 130
