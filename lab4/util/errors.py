"""One exception type for every problem a user can fix, the CLI prints it as one line, exit 2; and its
two kinds that stop training early."""


class Lab4Error(Exception):
    """A user-facing error whose message names the path or setting and the problem."""


class NonFiniteLoss(Lab4Error):
    """Training met a non-finite loss; ``where`` holds its epoch and iteration, 1-based, as diverged.json
    records them."""

    def __init__(self, message: str, **where):
        super().__init__(message)
        self.where = where


class OutOfMemory(Lab4Error):
    """CUDA ran out of memory while training, reported with the batch size to lower."""


def innermost_cause(e: BaseException) -> str:
    """The innermost cause of an error, as one short line (compile errors wrap the real one)."""
    while (inner := e.__cause__ or getattr(e, "inner_exception", None)) is not None and inner is not e:
        e = inner
    first = next((line.strip() for line in str(e).splitlines() if line.strip()), "")
    text = f"{type(e).__name__}: {first}" if first else type(e).__name__
    return text if len(text) <= 200 else text[:197] + "..."
