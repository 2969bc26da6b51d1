"""Files that must never be seen half-written (checkpoints, metrics, configs, caches): write, fsync,
rename."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from lab4.util.errors import Lab4Error


def atomic_write_bytes(path, data: bytes) -> None:
    """Replace ``path`` in one step: a reader sees the old file or the new one, never a torn one.

    The temporary file is created with mode 0o666, so the kernel applies the process umask (the usual
    permissions of a new file) without lab4 ever changing the umask.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise Lab4Error(f"{path}: cannot write ({e.strerror or e})") from None
        raise


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode())
