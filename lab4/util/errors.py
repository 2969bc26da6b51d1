"""One exception type for every problem a user can fix; the CLI prints it as one line, exit 2."""


class Lab4Error(Exception):
    """A user-facing error whose message names the path or setting and the problem."""


def innermost_cause(e: BaseException) -> str:
    """The innermost cause of an error, as one short line (compile errors wrap the real one)."""
    while (inner := e.__cause__ or getattr(e, "inner_exception", None)) is not None and inner is not e:
        e = inner
    first = next((line.strip() for line in str(e).splitlines() if line.strip()), "")
    text = f"{type(e).__name__}: {first}" if first else type(e).__name__
    return text if len(text) <= 200 else text[:197] + "..."
