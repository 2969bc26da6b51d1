"""The grid driver's own CPU use while its runs train: driver + Dask workers, against the kernels that train.

    .venv/bin/python scripts/grid_overhead.py [--profile quick] [--runs 2] [--jobs 2] [--settle 40] \
        [--window 120] [--home /tmp/lab4-home] [--threads]

Starts ``python -m lab4 grid`` on a temporary grid of ``--runs`` entries with enough epochs not to finish,
waits until every kernel has run ``--settle`` seconds (imports and data loading done), then samples, with
psutil, the CPU seconds (user + system) of every process in the driver's tree over ``--window`` seconds:
the kernels (``ipykernel``, and anything they start) train; everything else (the driver with its scheduler,
nannies and client, the Dask worker processes, multiprocessing's resource tracker) is overhead, printed as
a percentage of all the machine's cores. ``--threads`` adds each overhead process's busiest threads. The
grid and its kernels are killed at the end; the temporary runs are deleted. Environment variables reach
the driver, its workers and the kernels, e.g. DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False to try a
Dask setting. The quick profile needs ``python -m lab4 make-data --preset small`` under the same LAB4_HOME.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]


def role(proc: psutil.Process, driver: int, kernels: set[int]) -> str:
    if proc.pid == driver:
        return "driver"
    if proc.pid in kernels:
        return "kernel"
    cmd = " ".join(proc.cmdline())
    if "resource_tracker" in cmd:
        return "tracker"
    return "worker" if "spawn_main" in cmd or "forkserver" in cmd else "other"


def tree(driver: psutil.Process) -> dict:
    """{(pid, create time): (role, process)} for the driver and its descendants; a kernel's children count as
    the kernel's."""
    procs = [driver, *driver.children(recursive=True)]
    kernels: set[int] = set()
    for p in procs:
        try:
            if any("ipykernel" in part for part in p.cmdline()):
                kernels.add(p.pid)
                kernels.update(c.pid for c in p.children(recursive=True))
        except psutil.Error:
            pass
    out = {}
    for p in procs:
        try:
            out[(p.pid, p.create_time())] = (role(p, driver.pid, kernels), p)
        except psutil.Error:
            pass
    return out


def cpu(proc: psutil.Process) -> tuple[float, dict]:
    """(user + system seconds, {thread id: seconds})"""
    t = proc.cpu_times()
    try:
        threads = {th.id: th.user_time + th.system_time for th in proc.threads()}
    except psutil.Error:
        threads = {}
    return t.user + t.system, threads


def snapshot(procs: dict) -> dict:
    out = {}
    for key, (_, p) in procs.items():
        try:
            out[key] = cpu(p)
        except psutil.Error:
            pass
    return out


def thread_name(pid: int, tid: int) -> str:
    try:
        return Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
    except OSError:
        return "?"


def processor() -> str:
    info = Path("/proc/cpuinfo").read_text().splitlines()
    first = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in info) if k.strip()}
    return f"{first.get('model name', '?')} (family {first.get('cpu family')}, model {first.get('model')})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--runs", type=int, default=2, help="grid entries")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=50, help="enough not to finish during the window")
    ap.add_argument("--settle", type=float, default=40, help="seconds each kernel runs before the window")
    ap.add_argument("--window", type=float, default=120, help="seconds sampled")
    ap.add_argument("--home", help="LAB4_HOME for the data (default: the environment's)")
    ap.add_argument(
        "--threads", action="store_true", help="list the busiest threads of each overhead process"
    )
    args = ap.parse_args()
    env = dict(os.environ)
    if args.home:
        env["LAB4_HOME"] = str(Path(args.home).resolve())
    cores = psutil.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="grid-overhead-") as tmp:
        grid = Path(tmp) / "grid.yaml"
        entries = [
            {"name": f"overhead-{i}", "overrides": {"num_epoch": args.epochs, "seed": i}}
            for i in range(args.runs)
        ]
        grid.write_text(yaml.safe_dump({"experiments": entries}))
        cmd = [sys.executable, "-m", "lab4", "grid", "--grid", str(grid), "--profile", args.profile]
        cmd += ["--runs", str(Path(tmp) / "runs"), "--jobs", str(args.jobs)]
        print("$", " ".join(cmd), flush=True)
        log = open(Path(tmp) / "driver.log", "w")  # noqa: SIM115 - closed with the folder
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        driver = psutil.Process(proc.pid)
        seen: dict = {}
        try:
            want = min(args.jobs, args.runs)
            while True:
                if proc.poll() is not None:
                    sys.exit(f"the grid ended early:\n{(Path(tmp) / 'driver.log').read_text()[-3000:]}")
                seen.update(procs := tree(driver))
                ages = [time.time() - p.create_time() for r, p in procs.values() if r == "kernel"]
                if len(ages) >= want and min(ages) >= args.settle:
                    break
                time.sleep(1)
            before, t0 = snapshot(procs), time.monotonic()
            time.sleep(args.window)
            procs = tree(driver)
            seen.update(procs)
            after, wall = snapshot(procs), time.monotonic() - t0
            report(seen, before, after, wall, cores, args.threads)
            print(f"processor: {processor()}; {cores} cores; load average {os.getloadavg()[0]:.2f}")
        finally:
            for _, p in seen.values():  # the kernels first: they are in sessions of their own
                if p.pid != proc.pid:
                    try:
                        p.kill()
                    except psutil.Error:
                        pass
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            log.close()


def report(procs: dict, before: dict, after: dict, wall: float, cores: int, threads: bool) -> None:
    sums: dict[str, float] = {}
    print(f"{'role':8} {'pid':>8} {'CPU s':>8} {'% of 1 core':>12}")
    for key in sorted(after, key=lambda k: procs[k][0]):
        r, p = procs[key]
        if key not in before:
            print(f"  {r} {p.pid} started during the window: not counted")
            continue
        d = after[key][0] - before[key][0]
        sums[r] = sums.get(r, 0.0) + d
        print(f"{r:8} {p.pid:>8} {d:8.2f} {100 * d / wall:11.2f}%")
        if threads and r != "kernel":
            busy = sorted(
                ((after[key][1][t] - before[key][1].get(t, 0.0), t) for t in after[key][1]), reverse=True
            )
            for s, tid in busy[:5]:
                print(f"         thread {tid} ({thread_name(p.pid, tid)}): {s:.2f} s")
    for key in before.keys() - after.keys():
        print(f"  {procs[key][0]} {key[0]} ended during the window: not counted")
    over = sum(v for r, v in sums.items() if r != "kernel")
    print(f"window {wall:.0f} s; share of all {cores} cores:")
    for r, v in sorted(sums.items()):
        print(f"  {r}: {100 * v / (wall * cores):.2f}%")
    print(f"OVERHEAD (all but the kernels): {100 * over / (wall * cores):.2f}% of {cores} cores")


if __name__ == "__main__":
    main()
