"""The grid's executor: each run is one Dask task, on a LocalCluster here or on any cluster by address.

Why Dask: the same driver then scales from a laptop to a lab cluster (``--scheduler tcp://host:8786``,
workers from ``dask worker`` or dask-jobqueue's ``SLURMCluster``), and its dashboard shows the grid.

GPUs are a worker resource. A run that trains on CUDA asks for ``resources={"GPU": 1}``; a LocalCluster
on a machine with GPUs starts its workers with that resource and pins worker ``i`` to GPU ``i mod n``
through CUDA_VISIBLE_DEVICES, which the notebook's kernel (a child of the worker) inherits. On a remote
cluster the workers declare ``--resources GPU=1`` themselves and get their GPU from the batch system.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings

import dask
from distributed import WorkerPlugin, wait

from lab4.util.errors import Lab4Error

CPU_JOBS = 3  # runs at once without GPUs: `make experiments`' default, measured on 2 cores
POLL_S = 2.0  # how often the driver looks at task states and metrics.csv when no run ends; at 0.5 s the
# driver and its workers took a quarter of one of 2 cores away from the runs (make study, Zen 4)
# Dask's housekeeping in a LocalCluster, paced for tasks that are notebook runs of minutes to hours. At Dask's
# defaults the driver and its 3 workers took 8% of 2 cores while the runs trained, with these and
# slow_heartbeats under 1% (scripts/grid_overhead.py, docs/reliability.md). Each feeds only the dashboard.
QUIET = {
    # a statistical profiler in every worker's event loop, 100 samples a second, of a task that waits on zmq
    "distributed.worker.profile.enabled": False,
    # the event-loop health check in every server (scheduler, each nanny, each worker), 50 a second; it still
    # notices a loop blocked past distributed.admin.tick.limit (3 s)
    "distributed.admin.tick.interval": "1s",
    # psutil's process, disk and network counters for the dashboard in every server, twice a second
    "distributed.admin.system-monitor.interval": "5s",
}
HEARTBEAT_S = 5.0  # worker heartbeats: Dask asks every 0.5 s of clusters under 11 workers; a worker that
# dies is seen by its nanny and its closed connection at once, the heartbeats only feed the dashboard


def visible_gpus() -> list[str]:
    """The ids of the GPUs this process may use, as CUDA_VISIBLE_DEVICES names them (or 0..n-1)."""
    import torch

    n = torch.cuda.device_count()
    if n == 0:
        return []
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is None:
        return [str(i) for i in range(n)]
    return [s.strip() for s in env.split(",") if s.strip()][:n]


def default_jobs(gpus: list[str]) -> int:
    """One run per GPU when there are GPUs, else the CPU default."""
    return len(gpus) or CPU_JOBS


def uses_cuda(device: str, have_gpus: bool) -> bool:
    """Whether a run with this config ``device`` trains on CUDA, on workers that do or don't have GPUs."""
    return device.startswith("cuda") or (device == "auto" and have_gpus)


def gpu_runs(configs: dict, have_gpus: bool) -> set[str]:
    """Names of the runs (``{name: Config}``) that must ask for a GPU; none where no worker has one (a run
    that insists on CUDA then fails in its notebook with the reason, instead of waiting forever)."""
    if not have_gpus:
        return set()
    return {name for name, cfg in configs.items() if uses_cuda(cfg.device, have_gpus)}


def gpu_for_worker(name, gpus: list[str]) -> str:
    """LocalCluster names its workers 0, 1, ...; more workers than GPUs share them round-robin."""
    return gpus[int(name) % len(gpus)]


class PinGPU(WorkerPlugin):
    """Sets the worker process's CUDA_VISIBLE_DEVICES to its own GPU before it runs any task.

    The scheduler replays plugins to a restarted worker, so a worker that died and came back is pinned again.
    """

    name = "lab4-pin-gpu"

    def __init__(self, gpus: list[str]):
        self.gpus = list(gpus)

    def setup(self, worker):
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu_for_worker(worker.name, self.gpus)


def _has_bokeh() -> bool:
    """The dashboard needs bokeh (the `lab` extra brings it); without it, it is only a "needs bokeh" page."""
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


def local_cluster(jobs: int, gpus: list[str]):
    """``jobs`` single-threaded worker processes; with GPUs each has the GPU resource (PinGPU pins it)."""
    from distributed import LocalCluster

    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // jobs))
    kw = dict(
        n_workers=jobs,
        threads_per_worker=1,
        processes=True,
        silence_logs=logging.ERROR,
        dashboard_address=":8787" if _has_bokeh() else None,
        memory_limit=0,
        # the kernels share the cores instead of each spinning up a thread per core
        env={"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads},
    )
    if gpus:
        kw["resources"] = {"GPU": 1}
    # Dask sets MALLOC_TRIM_THRESHOLD_ for its workers, and the kernels would inherit it: glibc then hands
    # freed memory back at once, which costs torch on the CPU. The kernels keep the default, as in a terminal.
    no_trim = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
    # the scheduler, the nannies and (through the config each nanny hands its worker) the workers read these
    # as they are made, here; a worker that a nanny restarts gets them again
    with warnings.catch_warnings(), dask.config.set({**QUIET, **no_trim}):
        warnings.simplefilter("ignore")  # "port 8787 is in use, using another": the link printed says which
        return LocalCluster(**kw)


@contextlib.contextmanager
def slow_heartbeats(seconds: float = HEARTBEAT_S):
    """Workers of the schedulers in this process heartbeat every ``seconds`` at most, while inside.

    Dask has no setting for it: its scheduler tells each worker, in every heartbeat's reply, to come back
    after ``distributed.scheduler.heartbeat_interval(workers)``, 0.5 s for a small cluster; 4 heartbeats a
    second from 2 workers were about 0.5% of 2 cores, 40% of what QUIET left. The scheduler paces its
    clients at 10 times that (50 s), which nothing here waits on. Only a LocalCluster's scheduler lives in
    this process; a remote one keeps its own pace."""
    from distributed import scheduler

    dask_interval = getattr(scheduler, "heartbeat_interval", None)
    if dask_interval is None:  # another Dask: its own pace
        yield
        return
    scheduler.heartbeat_interval = lambda n: max(seconds, dask_interval(n))
    try:
        yield
    finally:
        scheduler.heartbeat_interval = dask_interval


@contextlib.contextmanager
def connect(scheduler: str | None, jobs: int, gpus: list[str]):
    """(client, have_gpus): a new LocalCluster of ``jobs`` workers, or the cluster at ``scheduler``."""
    from distributed import Client

    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, ValueError) as e:  # unreachable, timed out, or not an address
            raise Lab4Error(f"cannot reach the Dask scheduler at {scheduler} ({e})") from None
        with client:
            workers = client.scheduler_info().get("workers", {}).values()
            yield client, any(w.get("resources", {}).get("GPU") for w in workers)
        return
    with slow_heartbeats(), local_cluster(jobs, gpus) as cluster, Client(cluster) as client:
        if gpus:
            client.register_plugin(PinGPU(gpus))
        yield client, bool(gpus)


def dashboard_link(client, local: bool) -> str | None:
    """The dashboard's address, or None: a LocalCluster without bokeh serves only a "needs bokeh" page."""
    if local and not _has_bokeh():
        return None
    try:
        return client.dashboard_link
    except (KeyError, AttributeError, TypeError):
        return None


def run_key(run) -> str:
    """The same run (folder, profile, overrides) gets the same key from every driver: a second driver on
    the same scheduler then waits for the task that is already running instead of starting it again."""
    from dask.base import tokenize

    return f"lab4-run-{run.name}-{tokenize(str(run.run_dir), run.profile, run.overrides)}"


def submit(client, fn, runs, gpu_runs: set[str]) -> dict:
    """{future: run}, one task ``fn(run)`` per run; runs named in ``gpu_runs`` ask for one GPU."""
    return {
        client.submit(
            fn, run, key=run_key(run), pure=False, resources={"GPU": 1} if run.name in gpu_runs else None
        ): run
        for run in runs
    }


def _executing(dask_worker) -> list:
    """On a worker: the keys of the tasks its threads are executing now (not those waiting for a thread)."""
    return [ts.key for ts in dask_worker.state.executing]


def running(client, futures: dict) -> set[str]:
    """Names of the runs whose tasks a worker is executing now. The scheduler's ``processing`` is not
    enough: it also lists tasks handed to a worker that still wait there for its one thread."""
    keys = {f.key: run.name for f, run in futures.items()}
    try:
        executing = client.run(_executing, on_error="ignore")
    except Exception:  # noqa: BLE001 - a worker going away mid-call: try again at the next poll
        return set()
    return {
        keys[k]
        for worker_keys in executing.values()
        if isinstance(worker_keys, list)
        for k in worker_keys
        if k in keys
    }


def slots(client) -> int:
    """Runs the cluster can execute at once: its worker threads (at least one, for a cluster still
    starting)."""
    workers = client.scheduler_info().get("workers", {}).values()
    return max(1, sum(w.get("nthreads", 1) for w in workers))


def run_all(client, fn, runs, gpu_runs: set[str], on_result, on_tick) -> None:
    """One task ``fn(run)`` per run, never more in flight than the cluster has threads; calls
    ``on_result(run, value, error)`` as each ends (error: "Type: message" if it raised, e.g. KilledWorker
    after its worker died too often) and ``on_tick(running names)`` while waiting.

    Why not submit them all: Dask hands tasks like these (one per key group) to workers at once, two to a
    worker when there are more runs than workers, and a run queued behind another on a busy worker waits
    there although another worker is free."""
    waiting, pending = list(runs), {}
    while waiting or pending:
        free = slots(client) - len(pending) if waiting else 0  # a call to the scheduler: only when needed
        if free > 0:
            batch, waiting = waiting[:free], waiting[free:]
            pending.update(submit(client, fn, batch, gpu_runs))
        finished = [f for f in pending if f.done()]
        for fut in finished:
            run = pending.pop(fut)
            try:
                value, error = fut.result(), ""
            except Exception as e:  # noqa: BLE001 - any task error is this run's failure only
                msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
                value, error = None, f"{type(e).__name__}: {msg}"
            fut.release()
            on_result(run, value, error)
        # a run just ended and another waits: hand it the slot first
        if pending and not (finished and waiting):
            on_tick(running(client, pending))
            try:  # back as soon as a run ends (its slot goes to the next run at once), else after POLL_S
                wait(list(pending), timeout=POLL_S, return_when="FIRST_COMPLETED")
            except TimeoutError:
                pass
