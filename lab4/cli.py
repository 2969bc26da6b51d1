"""``python -m lab4 {make-data,train,evaluate,predict,score}``: exit 0 on success, 2 with one line on bad input."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from .config import Config, PROFILES, make_config
from .errors import Lab4Error


def _config_args(p: argparse.ArgumentParser) -> None:
    """Every config field as ``--field`` (same name as in the notebooks' parameters cells)."""
    g = p.add_argument_group("config fields (default: the lab's, then the profile's)")
    for f in dataclasses.fields(Config):
        if f.name in ("profile", "run_dir"):
            continue
        flag = f"--{f.name}"
        if isinstance(f.default, bool):
            g.add_argument(flag, type=_bool, default=None, metavar="{true,false}")
        elif isinstance(f.default, tuple):
            g.add_argument(flag, type=int, nargs="+", default=None)
        else:
            g.add_argument(flag, type=type(f.default), default=None)


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
    from .data import default_synth_root
    from .synth import generate
    out = Path(args.out) if args.out else default_synth_root(args.preset)
    try:
        root = generate(out, preset=args.preset, seed=args.seed, height=args.height, width=args.width)
    except (ValueError, FileExistsError) as e:
        raise Lab4Error(str(e)) from None
    print(f"SynthDance '{args.preset}' in {root}")


def cmd_train(args) -> None:
    from .train import Trainer
    kw = _overrides(args)
    run_dir = args.run_dir or f"runs/{args.profile}/{kw.get('name', 'cyclical')}"
    cfg = make_config(args.profile, run_dir=run_dir, **kw)
    trainer = Trainer(cfg).fit(resume=args.resume)
    last = next((r for r in reversed(trainer.rows) if r["kind"] == "epoch"), {})
    msg = f"trained {cfg.name} for {trainer.epoch} epochs -> {cfg.run_dir}"
    if last.get("val_psnr") not in (None, ""):
        msg += f" (val PSNR {float(last['val_psnr']):.2f} dB, repeat-first-frame {float(last['baseline_psnr']):.2f} dB)"
    print(msg)


def _data_root(args, cfg):
    from .data import resolve_data_root
    return resolve_data_root(args.data_root or cfg.data_root, cfg.synth_preset)


def cmd_evaluate(args) -> None:
    from .data import load_split
    from .evaluate import validate, write_psnr_csv
    from .plots import plot_psnr_run, save_strip
    from .train import load_trained
    model, cfg = load_trained(args.run_dir, args.checkpoint, args.device)
    val = load_split(_data_root(args, cfg), "val", cfg.frame_H, cfg.frame_W)
    res = validate(model, val, seed=args.seed)
    run = Path(args.run_dir)
    write_psnr_csv(run / "psnr_per_frame.csv", res)
    plot_psnr_run(run / "psnr_per_frame.png", res, title=cfg.name)
    save_strip(run / "samples.png", val.frames, res["pred"])
    (run / "val_summary.json").write_text(json.dumps(dict(
        mean_psnr=res["mean_psnr"], mean_ssim=res["mean_ssim"], baseline_mean_psnr=res["baseline_mean_psnr"],
        frames=len(val)), indent=2) + "\n")
    print(f"{cfg.name}: validation PSNR {res['mean_psnr']:.2f} dB, SSIM {res['mean_ssim']:.3f} over {len(val) - 1} "
          f"generated frames (repeat-first-frame {res['baseline_mean_psnr']:.2f} dB) -> {run / 'psnr_per_frame.csv'}")


def cmd_predict(args) -> None:
    from .data import load_test
    from .evaluate import predict_test, write_gif, write_submission
    from .train import load_trained
    model, cfg = load_trained(args.run_dir, args.checkpoint, args.device)
    seqs = load_test(_data_root(args, cfg), cfg.frame_H, cfg.frame_W)
    preds = predict_test(model, seqs, seed=args.seed)
    out = Path(args.out or Path(args.run_dir) / "submission.csv")
    write_submission(out, preds)
    for k, p in enumerate(preds):
        write_gif(out.parent / f"pred_seq{k}.gif", p)
    print(f"{len(preds)} test sequences -> {out} and pred_seq0..{len(preds) - 1}.gif")


def cmd_score(args) -> None:
    from .data import load_test_gt
    from .evaluate import score
    if args.gt:
        gt_root = Path(args.gt)
    else:
        from .data import resolve_data_root
        gt_root = resolve_data_root(args.data_root, args.synth_preset) / "test_gt"
    res = score(args.submission, load_test_gt(gt_root))
    print(f"public {res['public']:.3f} dB  private {res['private']:.3f} dB  (all {res['overall']:.3f} dB)")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lab4", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("make-data", help="generate SynthDance in the official layout")
    s.add_argument("--preset", default="small", choices=["tiny", "small", "full"])
    s.add_argument("--out", default="", help="folder (default data/synthdance-<preset>)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--height", type=int, default=64)
    s.add_argument("--width", type=int, default=128)
    s.set_defaults(fn=cmd_make_data)

    s = sub.add_parser("train", help="train one experiment into a run folder")
    s.add_argument("--profile", default="quick", choices=list(PROFILES))
    s.add_argument("--run-dir", default="", help="default runs/<profile>/<name>")
    s.add_argument("--resume", action="store_true", help="continue from <run-dir>/last.pt")
    _config_args(s)
    s.set_defaults(fn=cmd_train)

    for name, fn, text in (("evaluate", cmd_evaluate, "validation rollout: PSNR/SSIM per frame, figure, samples"),
                           ("predict", cmd_predict, "test rollout: submission.csv and pred_seq<k>.gif")):
        s = sub.add_parser(name, help=text)
        s.add_argument("--run-dir", required=True)
        s.add_argument("--checkpoint", default="last.pt")
        s.add_argument("--data-root", default="", help="dataset (default: the run's, else SynthDance)")
        s.add_argument("--device", default="auto")
        s.add_argument("--seed", type=int, default=0, help="seed of the prior samples")
        if name == "predict":
            s.add_argument("--out", default="", help="default <run-dir>/submission.csv")
        s.set_defaults(fn=fn)

    s = sub.add_parser("score", help="score a submission as the course does (public/private PSNR)")
    s.add_argument("submission")
    s.add_argument("--gt", default="", help="folder of test ground truth <gt>/<k>/frame<N>.png")
    s.add_argument("--data-root", default="", help="dataset whose test_gt/ to use (default SynthDance)")
    s.add_argument("--synth-preset", default="small")
    s.add_argument("--json", default="", help="also write the scores here")
    s.set_defaults(fn=cmd_score)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.fn(args)
    except Lab4Error as e:
        print(f"lab4: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lab4: interrupted", file=sys.stderr)
        return 130
    return 0
