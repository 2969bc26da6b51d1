"""Executing a notebook with papermill under deadlines, so that nothing waits forever.

Every cell has a deadline: cells tagged ``training`` get the profile's training deadline (a ``full`` run
may train for hours), every other cell the general cell deadline. A cell that runs past it, or a kernel
that dies, ends the execution with one line naming the notebook, the cell and the deadline; papermill
has already saved the executed notebook with the outputs so far. A kernel whose heartbeat stops (a stopped
or frozen process) is killed after HEARTBEAT_S instead of being waited for until the deadline.

Messages from the kernel are awaited in one-second slices instead of one wait without a limit: see
:func:`slice_waits` for the hang this is meant to remove (jupyter/nbclient#312).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import sys
import time
from pathlib import Path

from lab4.util.errors import Lab4Error
from lab4.util.paths import project_root, shown

# The kernel the driver names, overriding the notebooks' own kernelspec (the stock python3, for Colab and
# the like): `make setup` registers it in the project's environment, whatever python3 means on the machine.
KERNEL = "lab4"
# The kernel's own log stays off the driver's terminal (a cell's error is in the executed notebook):
# - ipykernel >= 7.3 warns on every start that its TCP sockets are unencrypted (it binds to 127.0.0.1 and
#   signs every message with the connection key);
# - jupyter_client interrupts a kernel before shutting it down (KernelManager.shutdown_kernel), and a
#   kernel still finishing its last reply then logs "KeyboardInterrupt caught in kernel." at ERROR
#   (1 run in 30 on two loaded cores, measured), as does one stopped at a deadline mid-reply.
KERNEL_ARGS = ["--IPKernelApp.log_level=CRITICAL"]
TRAINING_TAG = "training"  # the cell that trains: it gets the training deadline
START_S = 120  # a kernel that has not answered by then will not (two busy cores, cold imports)
CELL_S = 20 * 60  # any untagged cell: evaluation, test prediction, figures, widgets
# The training cell's deadline by profile, in seconds: several times the longest run measured on a 2-core
# CPU without native bf16, so only a hang reaches it. $LAB4_TRAIN_DEADLINE (seconds) overrides it.
TRAINING_S = {
    "tiny": 15 * 60,
    "quick": 60 * 60,
    "study": 2 * 3600,
    "gpu": 3 * 3600,
    "lab": 72 * 3600,
    "full": 72 * 3600,
}
SLICE_S = 1.0  # longest single wait on a kernel channel; see slice_waits
# A kernel silent on its heartbeat channel this long is stopped or frozen (SIGSTOP, a suspended job): it is
# killed. ipykernel answers heartbeats in a thread of its own, in zmq's C code without the GIL, so a busy cell
# or one hung in a C call keeps beating (measured in docs/reliability.md): only the cell's deadline stops
# those. $LAB4_HEARTBEAT (seconds) overrides it.
HEARTBEAT_S = 60


class NotebookStopped(Exception):
    """The execution ended without a cell error of its own: a deadline passed or the kernel died.
    Both are worth one retry (the training notebook resumes from last.pt); a cell's own error is not."""

    def __init__(self, what: str, notebook):
        self.what, self.notebook = what, Path(notebook)
        super().__init__(f"{what}; the executed notebook so far: {shown(notebook)}")


class NotebookTimeout(NotebookStopped):
    """A cell ran past its deadline."""


class KernelDied(NotebookStopped):
    """The kernel process ended (killed, out of memory, crashed) while a cell ran."""


class KernelUnresponsive(NotebookStopped):
    """The kernel missed heartbeats for HEARTBEAT_S while a cell ran, so it was killed: like a dead one, worth
    one retry from last.pt."""


def _seconds(name: str) -> float | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise Lab4Error(f"${name}={value!r}: give the deadline in seconds, e.g. 3600") from None
    if seconds <= 0:
        raise Lab4Error(f"${name}={value!r}: a deadline must be > 0 seconds")
    return seconds


def training_deadline(profile: str | None) -> float:
    """Seconds the training cell may run: $LAB4_TRAIN_DEADLINE, else the profile's entry (else the
    longest)."""
    return _seconds("LAB4_TRAIN_DEADLINE") or TRAINING_S.get(profile or "", max(TRAINING_S.values()))


def cell_deadline() -> float:
    """Seconds any other cell may run: $LAB4_CELL_DEADLINE, else CELL_S."""
    return _seconds("LAB4_CELL_DEADLINE") or CELL_S


def heartbeat_limit() -> float:
    """Seconds a kernel may miss heartbeats before it is killed: $LAB4_HEARTBEAT, else HEARTBEAT_S."""
    return _seconds("LAB4_HEARTBEAT") or HEARTBEAT_S


def human(seconds: float) -> str:
    """A deadline as people say it: 45 s, 20 min, 3 h."""
    if seconds < 120:
        return f"{seconds:g} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:g} min"
    return f"{seconds / 3600:g} h"


def use_venv_kernel() -> None:
    """Make the ``lab4`` kernel resolve to this interpreter's own kernelspec (``make setup`` installs it
    with --sys-prefix): JUPYTER_PATH is searched before the per-user folder, where another checkout's
    ``lab4`` kernel may be registered."""
    mine = str(Path(sys.prefix) / "share" / "jupyter")
    paths = [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
    if mine not in paths:
        os.environ["JUPYTER_PATH"] = os.pathsep.join([mine, *paths])


def slice_waits(channel, step: float = SLICE_S) -> None:
    """Make ``channel.get_msg`` wait in slices of ``step`` seconds, up to the caller's timeout (or forever).

    Why: nbclient awaits the execute reply and the IOPub messages with ``get_msg(timeout=None)``, which is
    one ``zmq.asyncio`` poll without a limit. That poll can miss a message that has already arrived and then
    never wake: jupyter/nbclient#312 (open) reports a widget cell that "sometimes blocks", and it matches the
    hang issue 21 saw in 04_explore, with the kernel and the client both idle (it did not reproduce here in
    600 executions, so that cause is likely, not confirmed). A poll with a limit asks the socket again when it
    runs out, so a missed message is picked up within ``step`` seconds; the caller's own timeout is kept, so
    deadlines still fire.
    """
    from queue import Empty

    get = channel.get_msg

    async def get_msg(timeout: float | None = None):
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            left = step if end is None else max(0.0, min(step, end - time.monotonic()))
            try:
                return await get(timeout=left)
            except Empty:
                if end is not None and time.monotonic() >= end:
                    raise

    channel.get_msg = get_msg


def _engine(patched: bool):
    """A papermill engine whose kernel client waits in slices (``patched``), or papermill's own."""
    from jupyter_core.utils import ensure_async, run_sync
    from nbclient.exceptions import DeadKernelError
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, logger
    from traitlets import Float

    class Client(PapermillNotebookClient):
        heartbeat_timeout = Float(
            0.0, help="seconds without a heartbeat before the kernel is killed; 0: never"
        )
        unresponsive = False

        async def async_start_new_kernel_client(self):
            kc = await super().async_start_new_kernel_client()
            if patched:
                slice_waits(kc.shell_channel)
                slice_waits(kc.iopub_channel)
            if self.heartbeat_timeout and not kc.hb_channel.is_alive():
                kc.hb_channel.start()  # start_channels starts it; without it every check would read "silent"
            return kc

        async def async_execute_cell(self, cell, cell_index, *args, **kwargs):
            """A cell, with the heartbeat watched beside it; a kill by the watch is marked on
            DeadKernelError."""
            watch = asyncio.ensure_future(self._watch_heartbeat()) if self.heartbeat_timeout else None
            try:
                return await super().async_execute_cell(cell, cell_index, *args, **kwargs)
            except DeadKernelError as e:
                e.unresponsive = self.unresponsive
                raise
            finally:
                if watch:
                    watch.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await watch

        execute_cell = run_sync(async_execute_cell)  # papermill calls the sync one, bound to nbclient's own

        async def _watch_heartbeat(self) -> None:
            """SIGKILL the kernel's process group once its heartbeat has been silent for heartbeat_timeout:
            a stopped process answers nothing, and nbclient would wait for the deadline. nbclient then sees
            a dead kernel within a second. SIGKILL ends a stopped process too."""
            hb, last = self.kc.hb_channel, time.monotonic()
            while True:
                await asyncio.sleep(min(1.0, self.heartbeat_timeout / 4))
                now = time.monotonic()
                if hb.is_beating():
                    last = now
                elif now - last >= self.heartbeat_timeout:
                    self.unresponsive = True
                    await ensure_async(self.km.signal_kernel(signal.SIGKILL))
                    return

    class Engine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(
            cls,
            nb_man,
            kernel_name,
            log_output=False,
            stdout_file=None,
            stderr_file=None,
            start_timeout=60,
            execution_timeout=None,
            **kwargs,
        ):
            kwargs.pop("input_path", None)
            return Client(
                nb_man,
                kernel_name=kernel_name,
                log=logger,
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
                startup_timeout=start_timeout,
                timeout=execution_timeout,
                **kwargs,
            ).execute()

    return Engine


@functools.cache
def _register(patched: bool) -> str:
    """Register the engine with papermill once per process; its name for ``engine_name``."""
    from papermill.engines import papermill_engines

    name = "lab4" if patched else "lab4-unpatched"
    papermill_engines.register(name, _engine(patched))
    return name


def execute(
    notebook,
    out,
    parameters: dict,
    *,
    cwd=None,
    profile: str | None = None,
    cell_timeout: float | None = None,
    training_timeout: float | None = None,
    start_timeout: float = START_S,
    heartbeat: float | None = None,
    patched: bool = True,
):
    """papermill with the lab4 kernel, every cell under a deadline and its heartbeat watched (``heartbeat``
    seconds, default heartbeat_limit()); run from ``cwd`` (default notebooks/, so relative paths resolve as in
    JupyterLab). Raises NotebookTimeout, KernelDied or KernelUnresponsive (one line each, the executed
    notebook kept at ``out``), or papermill's PapermillExecutionError for a cell's own error."""
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    use_venv_kernel()  # here, not at import: on a Dask worker too, this interpreter's kernel is the one
    cell_timeout = cell_timeout or cell_deadline()
    training_timeout = training_timeout or max(cell_timeout, training_deadline(profile))
    heartbeat = heartbeat or heartbeat_limit()
    current: dict = {}

    def deadline(cell) -> float:
        return training_timeout if TRAINING_TAG in cell.metadata.get("tags", []) else cell_timeout

    def on_cell_start(cell, cell_index):
        current.update(cell=cell, index=cell_index)

    try:
        return pm.execute_notebook(
            str(notebook),
            str(out),
            parameters=parameters,
            kernel_name=KERNEL,
            cwd=str(cwd or project_root() / "notebooks"),
            progress_bar=False,
            log_output=False,
            extra_arguments=KERNEL_ARGS,
            engine_name=_register(patched),
            start_timeout=start_timeout,
            execution_timeout=cell_timeout,
            timeout_func=deadline,
            on_cell_start=on_cell_start,
            heartbeat_timeout=heartbeat,
        )
    except (CellTimeoutError, DeadKernelError, RuntimeError) as e:
        if not isinstance(e, (CellTimeoutError, DeadKernelError)) and not _kernel_start_failed(e):
            raise
        where = _cell_words(current)
        name = Path(notebook).name
        if isinstance(e, CellTimeoutError):
            msg = f"{name}: {where} ran past its {human(deadline(current['cell']))} deadline"
            kind = NotebookTimeout
        elif getattr(e, "unresponsive", False):
            msg = f"{name}: the kernel stopped answering (no heartbeat for {human(heartbeat)}) during {where}"
            kind = KernelUnresponsive
        elif isinstance(e, DeadKernelError):
            msg, kind = f"{name}: the kernel died during {where}", KernelDied
        else:
            msg, kind = f"{name}: the kernel did not start within {human(start_timeout)}", NotebookTimeout
        raise kind(msg, out) from None


def _kernel_start_failed(e: RuntimeError) -> bool:
    """jupyter_client's wait_for_ready raises a plain RuntimeError when a kernel never answers."""
    return "Kernel didn't respond" in str(e) or "Kernel died before replying" in str(e)


def _cell_words(current: dict) -> str:
    """'cell 6 (`run_box = W.Dropdown(…`)': its place in the executed notebook and its first line."""
    if "cell" not in current:
        return "kernel start"
    first = next((line.strip() for line in current["cell"].source.splitlines() if line.strip()), "")
    if len(first) > 48:
        first = first[:47] + "…"
    return f"cell {current['index'] + 1} (`{first}`)"
