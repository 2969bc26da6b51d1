"""The compiled steps' safety net: a Trainer whose torch.compile or CUDA-graph capture fails goes on
eagerly, and says which speed options it really used.

A mixin of :class:`lab4.train.Trainer`; the steps themselves come from :func:`lab4.model.compiled_steps`.
"""

from __future__ import annotations

import sys

import torch

from lab4.util.errors import innermost_cause


class FastPathGuard:
    """Reads the Trainer's ``compiled_step``, ``compiled_rollout``, model and config; sets ``fallback``."""

    def with_fallback(self, fn, step: str = "train"):
        """``fn()`` on the compiled steps; if it raises while they are on, switch them off and run it again
        eagerly.

        torch.compile and CUDA-graph capture fail at their first call, and the backward is compiled when it
        first runs, so the guard wraps a whole forward and backward. A machine without Triton or a C compiler,
        or a GPU that inductor does not support, then trains eagerly after one warning line instead of dying
        in its first epoch. An error that eager raises too still surfaces; out of memory is not a compile
        error.
        """
        if self.compiled_step is None and self.compiled_rollout is None:
            return fn()
        # BatchNorm statistics: the retry must not count twice
        buffers = [b.clone() for b in self.model.buffers()]
        try:
            return fn()
        except torch.cuda.OutOfMemoryError:
            raise
        except Exception as e:
            with torch.no_grad():
                for b, saved in zip(self.model.buffers(), buffers):
                    b.copy_(saved)
            what = (
                "CUDA-graph capture" if step == "rollout" and self.speed["cuda_graphs"] else "torch.compile"
            )
            self.compiled_step = self.compiled_rollout = None
            self.fallback = f"{what}: {innermost_cause(e)}"
            print(
                f"lab4: warning: {self.cfg.name}: {what} failed ({innermost_cause(e)}); going on eagerly",
                file=sys.stderr,
                flush=True,
            )
            return fn()

    @property
    def speed(self) -> dict:
        """The speed options this run actually uses: asked for, available on its device and not fallen
        back."""
        return dict(
            amp=self.amp,
            channels_last=self.cfg.channels_last,
            compile=self.compiled_step is not None,
            cuda_graphs=self.cfg.cuda_graphs and self.device.type == "cuda" and bool(self.compiled_rollout),
            fused_adam=bool(self.optimizer.defaults.get("fused")),
        )
