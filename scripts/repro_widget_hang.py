"""Run notebooks/04_explore.ipynb many times under papermill with a short per-cell deadline, and count
the executions that hit it (issue 21: a widget cell that sometimes never returns).

    .venv/bin/python scripts/repro_widget_hang.py --n 300 --jobs 2 [--deadline 60] [--unpatched]

Trains one tiny run first (seconds), then executes the explorer on it ``--n`` times, ``--jobs`` at once.
--unpatched runs papermill as it comes, without lab4's deadline-sliced message polling, to count the hangs
the workaround removes. Prints one line per hang and a closing count.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--deadline", type=float, default=60.0, help="seconds per cell")
    p.add_argument(
        "--unpatched", action="store_true", help="plain papermill, without lab4's polling workaround"
    )
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from lab4.config import make_config
    from lab4.datasets.synth import make_synthdance
    from lab4.train import Trainer
    from lab4.util import notebooks as notebook_run

    tmp = Path(tempfile.mkdtemp(prefix="lab4-hang-"))
    root = make_synthdance(tmp / "data", preset="tiny", progress=False)
    Trainer(make_config("tiny", data_root=str(root), run_dir=str(tmp / "runs" / "tiny"), num_epoch=1)).fit()
    nb = ROOT / "notebooks" / "04_explore.ipynb"
    params = dict(runs_dir=str(tmp / "runs"), run="tiny")

    def once(i: int) -> tuple[int, str, float]:
        t0 = time.perf_counter()
        try:
            notebook_run.execute(
                nb,
                tmp / f"out{i % (2 * args.jobs)}.ipynb",
                params,
                cell_timeout=args.deadline,
                patched=not args.unpatched,
            )
            return i, "ok", time.perf_counter() - t0
        except notebook_run.NotebookTimeout as e:
            return i, f"HANG {e}", time.perf_counter() - t0
        except Exception as e:  # noqa: BLE001 - counted, not raised: the loop goes on
            return (
                i,
                f"ERROR {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                time.perf_counter() - t0,
            )

    counts: dict[str, int] = {}
    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.jobs) as pool:
        for i, status, secs in pool.map(once, range(args.n)):
            kind = status.split()[0]
            counts[kind] = counts.get(kind, 0) + 1
            if kind != "ok":
                print(f"run {i}: {status} ({secs:.1f}s)", flush=True)
            if (i + 1) % 25 == 0:
                print(f"{i + 1}/{args.n} done, {counts} ({time.perf_counter() - t0:.0f}s)", flush=True)
    mode = "unpatched" if args.unpatched else "patched"
    print(
        f"{mode}: {args.n} executions of 04_explore, deadline {args.deadline:g}s per cell: "
        f"{counts.get('HANG', 0)} hung, {counts.get('ERROR', 0)} other errors, {counts.get('ok', 0)} ok "
        f"({time.perf_counter() - t0:.0f}s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
