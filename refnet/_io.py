"""Atomic file output: a crash or Ctrl-C never leaves a half-written file behind."""

import os
import tempfile
from pathlib import Path

__all__ = []


def _current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomically(path, data):
    """Write ``data`` (bytes or str) to ``path`` through a temporary file and a rename.

    The temporary file lives in the target's folder, so ``os.replace`` is a same-filesystem
    rename: readers see either the old file or the complete new one.
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                             suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(payload)
        os.chmod(temporary, 0o666 & ~_current_umask())  # mkstemp creates files 0600
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
