"""The maintainer's measuring and data commands: bench, speedrun, gpucheck (lab4.perf) and real-footage.

Each command's help comes from its working module, imported (with torch, where it needs it) only when the
command is chosen.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from lab4.cli.flags import KebabHelpFormatter, KebabRawHelpFormatter, add_flag
from lab4.util.errors import Lab4Error


def bench_flags(ap) -> None:
    from lab4.perf import bench

    ap.description = bench.__doc__.splitlines()[0]
    add_flag(ap, "device", default="auto", help="where to measure: auto, cpu, cuda or cuda:N (default auto)")
    add_flag(ap, "seconds", type=float, default=None, help="timed seconds per training mode (CPU 8, GPU 30)")
    add_flag(ap, "out", default="bench.json", help="the JSON record to write (default bench.json)")
    add_flag(ap, "data-root", default="", help="dataset (default: $LAB4_DATA, else SynthDance small)")
    add_flag(ap, "dims", default="128,32,12,192", help="F,L,N,D (the lab's defaults)")
    add_flag(ap, "batch", type=int, default=None, help="fast-path batch (CPU 2, GPU 16)")
    add_flag(ap, "rollout-frames", type=int, default=None, help="frames rolled out (CPU 16, GPU 630)")
    add_flag(ap, "workers", type=int, default=None, help="reference DataLoader workers (CPU 0, GPU 4)")


def cmd_bench(a) -> int:
    from lab4.datasets import official
    from lab4.perf.bench import measure, table
    from lab4.util.device import pick_device

    try:
        dims = tuple(int(v) for v in a.dims.split(","))
        if len(dims) != 4:
            raise ValueError
    except ValueError:
        raise Lab4Error(f"--dims {a.dims!r}: expected four integers F,L,N,D") from None
    device = pick_device(a.device)  # before making data: a missing GPU is a one-line error at once
    root = official.resolve_data_root(a.data_root, "small")
    result, _ = measure(
        root,
        dims,
        device,
        a.seconds,
        a.batch,
        a.rollout_frames,
        a.workers,
        log=lambda m: print(m, flush=True),
    )
    print(table(result))
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {a.out}")
    return 0


def speedrun_flags(ap) -> None:
    from lab4.perf import speedrun

    ap.description = speedrun.__doc__.splitlines()[0]
    sub = ap.add_subparsers(dest="step", required=True)
    for name in ("run", "all", "table"):
        s = sub.add_parser(name, formatter_class=KebabHelpFormatter)
        add_flag(s, "out", default=speedrun.DEFAULT_OUT, help="folder of the per-run JSONs")
        if name == "table":
            continue
        add_flag(s, "budget_s", type=float, default=45.0, help="training CPU-seconds per run")
        add_flag(s, "profile", default="quick", help="the profile the levers change (default quick)")
        add_flag(
            s, "data_root", default="", help="dataset (default: $LAB4_DATA, else the profile's SynthDance)"
        )
        if name == "run":
            add_flag(s, "variant", required=True, help=", ".join(speedrun.VARIANTS))
            add_flag(s, "seed", type=int, default=0, help="the run's seed (default 0)")
        else:
            add_flag(
                s,
                "variants",
                default=",".join(v for v in speedrun.VARIANTS if v != "threads2"),
                help="comma-separated variants to run (default: all but threads2)",
            )
            add_flag(s, "seeds", default="0,1,2", help="comma-separated seeds per variant (default 0,1,2)")
            add_flag(s, "jobs", type=int, default=2, help="processes at a time, one thread each")


def cmd_speedrun(a) -> int:
    from lab4.perf.speedrun import VARIANTS, run_all, run_one, table

    if a.step == "table":
        print(table(Path(a.out)))
        return 0
    if a.budget_s <= 0:
        raise Lab4Error("--budget-s must be > 0")
    if a.step == "run":
        rec = run_one(a.variant, a.seed, a.budget_s, Path(a.out), a.profile, a.data_root)
        print(
            f"{a.variant} seed {a.seed}: val PSNR {rec['val_psnr']:.2f} dB, "
            f"first 10 {rec['first10_psnr']:.2f} dB, "
            f"{rec['iters']} iterations in {rec['train_cpu_s']:.0f} CPU-s",
            flush=True,
        )
    else:
        variants = [v for v in a.variants.split(",") if v]
        unknown = [v for v in variants if v not in VARIANTS]
        if unknown:
            raise Lab4Error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
        try:
            seeds = [int(s) for s in a.seeds.split(",") if s]
        except ValueError:
            raise Lab4Error(f"--seeds {a.seeds!r}: expected integers separated by commas") from None
        if a.jobs < 1:
            raise Lab4Error("--jobs must be >= 1")
        run_all(variants, seeds, a.budget_s, Path(a.out), a.jobs, a.profile, a.data_root)
        print(table(Path(a.out)))
    return 0


def gpucheck_flags(p) -> None:
    from lab4.perf import gpucheck

    p.formatter_class = KebabRawHelpFormatter
    p.description = gpucheck.__doc__
    add_flag(
        p, "out", required=True, help="output folder (gpucheck.json, results/bench/, results/gpu/, work/)"
    )
    add_flag(p, "budget-s", type=float, default=540.0, help="seconds for all steps together (default 540)")
    add_flag(p, "dry-run", action="store_true", help="rehearse every step on the CPU, tiny, in seconds")
    add_flag(
        p,
        "steps",
        default=",".join(gpucheck.STEPS),
        help=f"comma-separated subset of {','.join(gpucheck.STEPS)}",
    )
    add_flag(p, "data-root", default="", help="dataset (default: SynthDance full; tiny with --dry-run)")


def cmd_gpucheck(a) -> int:
    from lab4.perf.gpucheck import STEPS, GpuCheck

    steps = [s.strip() for s in a.steps.split(",") if s.strip()]
    if set(steps) & {"correctness", "bench", "grid"} and "data" not in steps:
        steps.append("data")  # they need the dataset (made or found in seconds when it is there)
    bad = [s for s in steps if s not in STEPS]
    if bad:
        raise Lab4Error(f"--steps: unknown step(s) {', '.join(bad)}; choose from {', '.join(STEPS)}")
    if a.budget_s <= 0:
        raise Lab4Error("--budget-s must be > 0")
    rec = GpuCheck(a.out, a.budget_s, a.dry_run, steps, a.data_root).run()
    failed = [n for n, r in rec["steps"].items() if r["status"].startswith("failed")]
    return 1 if failed else 0


def real_footage_flags(ap) -> None:
    from lab4.datasets import real_footage

    ap.description = real_footage.__doc__.split("\n\n")[0]
    sub = ap.add_subparsers(dest="step", required=True)
    b = sub.add_parser(
        "build", formatter_class=KebabHelpFormatter, help="write the dataset in the official layout"
    )
    add_flag(b, "out", required=True, help="dataset folder to write, e.g. data/real-vtest")
    add_flag(b, "video", default="", help=f"video file (default: {real_footage.VTEST})")
    add_flag(b, "val_frames", type=int, default=630, help="last frames that form val (the rest is train)")
    add_flag(b, "frames", type=int, default=0, help="use only the first N frames (0: all)")
    add_flag(b, "height", type=int, default=64, help="frame height in pixels (default 64)")
    add_flag(b, "width", type=int, default=128, help="frame width in pixels (default 128)")


def cmd_real_footage(a) -> int:
    from lab4.datasets.real_footage import build

    root = build(
        a.out, a.video or None, a.val_frames, a.frames, a.height, a.width, progress=sys.stderr.isatty()
    )
    info = json.loads((root / "real_footage.json").read_text())
    print(
        f"{root}: {info['n_train']} train + {info['n_val']} val frames, {info['height']}x{info['width']}, "
        f"{100 * info['moving_fraction']:.1f}% of condition pixels moving"
    )
    return 0


# command -> (add its flags, run it)
COMMANDS = {
    "bench": (bench_flags, cmd_bench),
    "speedrun": (speedrun_flags, cmd_speedrun),
    "gpucheck": (gpucheck_flags, cmd_gpucheck),
    "real-footage": (real_footage_flags, cmd_real_footage),
}
