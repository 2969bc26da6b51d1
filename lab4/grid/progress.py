"""One progress display for the whole grid: runs done, each running run's epoch, elapsed time and ETA.

It reads which runs are running from Dask's task states (the driver passes them in) and how far each one
is from its ``metrics.csv``, which the Trainer rewrites after every epoch (RunDir reads it afresh at every
look). On a terminal it is one tqdm bar counted in epochs over the grid; anywhere else (CI, a log file)
it prints one line per finished epoch instead of redrawing. The executed notebooks keep their own output.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

from lab4.run.folder import RunDir


class GridProgress:
    """``tick(running)`` while the tasks run, ``finish(name, line)`` as each ends, ``close()`` at the end.

    runs: the runs to execute (``name``, ``run_dir``, ``notebook``); epochs: each one's configured epochs;
    total_runs / done_runs: the whole grid's size and the runs already settled (skipped) before these.
    """

    def __init__(
        self, runs, epochs: dict, total_runs: int, done_runs: int = 0, shown=str, live=None, out=None
    ):
        self.runs = {r.name: r for r in runs}
        self.epochs = dict(epochs)
        self.shown, self.out = shown, out or sys.stdout
        self.live = sys.stderr.isatty() if live is None else live
        self.total_runs, self.done_runs = total_runs, done_runs
        self.dirs = {name: RunDir(r.run_dir) for name, r in self.runs.items()}
        # a resumed run starts part-way
        self.seen = {name: min(d.epochs_done(), self.epochs[name]) for name, d in self.dirs.items()}
        self.attempts = {name: len(d.attempts()) for name, d in self.dirs.items()}
        self.total, self.start = sum(self.epochs.values()), sum(self.seen.values())
        self.started, self.finished = set(), set()
        self.t0 = time.monotonic()
        self.bar = None
        if self.live:
            self.bar = tqdm(
                total=self.total,
                initial=self.start,
                unit="epoch",
                file=sys.stderr,
                dynamic_ncols=True,
                desc=self._desc(),
            )

    # -- what the driver calls ---------------------------------------------------------------------
    def tick(self, running: set[str]) -> None:
        for name in sorted(running - self.started - self.finished):
            self.started.add(name)
            r = self.runs[name]
            self.write(
                f"{name}: running -> {self.shown(r.notebook)} "
                f"(progress in {self.shown(r.run_dir / RunDir.METRICS)})"
            )
        for name in sorted(running - self.finished):
            self._poll(name)
        if self.bar is not None:
            self.bar.set_postfix_str(
                ", ".join(f"{n} {self.seen[n]}/{self.epochs[n]}" for n in sorted(running - self.finished)),
                refresh=False,
            )
            self.bar.set_description_str(self._desc(), refresh=False)
            self.bar.refresh()

    def finish(self, name: str, line: str) -> None:
        """A run's task ended: report its last epochs, count all of its epochs as done, print its line."""
        self._poll(name)
        self.finished.add(name)
        self.done_runs += 1
        self._advance(name, self.epochs[name])
        if self.bar is not None:
            self.bar.set_description_str(self._desc())
        self.write(line)

    def write(self, line: str) -> None:
        if self.bar is not None:
            tqdm.write(line, file=self.out)
        else:
            print(line, file=self.out, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- inside ----------------------------------------------------------------------------------------
    def _desc(self) -> str:
        return f"grid: {self.done_runs}/{self.total_runs} runs done"

    def _poll(self, name: str) -> None:
        d = self.dirs[name]
        lines = d.attempts()
        for line in lines[self.attempts[name] :]:  # the task tries again, resuming from last.pt
            self.write(f"  {name}: {line.split(': ', 1)[-1]} -> trying again from last.pt")
        self.attempts[name] = max(self.attempts[name], len(lines))
        n, psnr = min(d.epochs_done(), self.epochs[name]), d.last_val_psnr()
        # one line per finished epoch, even when several finished since the last look
        while self.seen[name] < n:
            self._advance(name, self.seen[name] + 1)
            if self.bar is None:
                val = f", val PSNR {psnr:.2f} dB" if psnr is not None and self.seen[name] == n else ""
                self.write(f"  {name}: epoch {self.seen[name]}/{self.epochs[name]}{val}  [{self._status()}]")

    def _advance(self, name: str, to: int) -> None:
        step = max(0, to - self.seen[name])
        self.seen[name] += step
        if self.bar is not None and step:
            self.bar.update(step)

    def _status(self) -> str:
        elapsed = time.monotonic() - self.t0
        done = sum(self.seen.values())
        rate = (done - self.start) / elapsed if elapsed > 0 else 0.0
        eta = tqdm.format_interval((self.total - done) / rate) if rate > 0 else "?"
        runs = f"{self.done_runs}/{self.total_runs} runs done"
        return f"{runs}, {tqdm.format_interval(elapsed)} elapsed, ETA {eta}"
