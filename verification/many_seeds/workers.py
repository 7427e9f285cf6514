"""Independent training runs side by side: one process per core, one torch thread each.

A batched run of a few hundred replicas multiplies matrices of 10 × 25 × 25 elements, too
small for torch's OpenMP threads to share (two threads on two cores gain about 10 % over one,
and on a loaded machine they wait on each other); two one-thread processes running two
different runs keep both cores busy instead. Runs are independent (each draws only from its
own seeds' generators) and a run's numbers do not depend on the thread count or the process
it runs in, so spreading them over processes changes no number (``tests/test_workers.py``).

``Workers(count)`` is a context manager with ``submit``, like ``concurrent.futures``;
``count=1`` runs every task at once in the calling process (no pool), which is what tests,
CUDA runs and one-core machines use. ``torch_threads(n)`` sets torch's thread count for a
block and restores it.

When the ``with`` block raises (``refnet verify`` interrupted by SIGINT or SIGTERM), the
worker processes are killed at once rather than waited for. Workers ignore SIGINT: the caller
decides what a Ctrl-C means.
"""

import os
import signal
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_all_start_methods, get_context

import torch

__all__ = ["Workers", "default_count", "torch_threads"]


def default_count(device="cpu"):
    """Processes for ``device``: the usable CPU cores (at most 8) on the CPU, 1 on a GPU,
    whose runs are bound by kernel launches from a single process anyway."""
    if torch.device(device).type != "cpu":
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


@contextmanager
def torch_threads(count):
    """Run the block with ``count`` torch threads, then restore the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


_PRELOAD = ["verification.many_seeds.claims", "verification.many_seeds.reproduction"]
"""Imported once by the fork server, so that each worker starts without importing torch."""


def _context():
    """``forkserver`` where the platform has it (a fresh server process, forked per worker,
    so workers share the imports without inheriting this process's threads), else ``spawn``."""
    if "forkserver" in get_all_start_methods():
        context = get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD)
        return context
    return get_context("spawn")


def _start_worker():
    # A terminal's Ctrl-C reaches the whole process group; the caller, not each worker with a
    # traceback of its own, answers it (and ends the workers: ``Workers.__exit__``).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)


class Workers:
    """A pool of ``count`` one-thread worker processes (``_context``: a worker inherits no
    torch or OpenMP state from the caller), or the caller itself when ``count`` is 1. Tasks
    must be module-level functions with picklable arguments and results."""

    def __init__(self, count=1):
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"Workers: expected count to be an integer >= 1, got {count!r}")
        self.count = count
        self._pool = None

    def __enter__(self):
        if self.count > 1:
            self._pool = ProcessPoolExecutor(self.count, mp_context=_context(),
                                             initializer=_start_worker)
        return self

    def __exit__(self, *exception):
        """Wait for the runs; when the block raised (an interruption), kill the workers first:
        their runs would be thrown away, and a run can take minutes."""
        if self._pool is not None:
            if exception[0] is not None:
                self._kill()
            self._pool.shutdown(wait=True, cancel_futures=exception[0] is not None)
            self._pool = None

    def _kill(self):
        """SIGKILL every worker process. The pool then fails every pending future with
        ``BrokenProcessPool`` (so the threads waiting on them go on) and, in ``shutdown``,
        reaps the workers, and any it started meanwhile. ``_processes`` is the pool's own
        record of them (public as ``kill_workers`` from Python 3.14)."""
        for process in list(self._pool._processes.values()):
            try:
                process.kill()
            except (OSError, ValueError):  # already reaped or closed
                pass

    def submit(self, function, /, *args, **kwargs):
        """Start ``function(*args, **kwargs)``; return a ``Future`` of its result."""
        if self._pool is not None:
            return self._pool.submit(function, *args, **kwargs)
        future = Future()
        try:
            future.set_result(function(*args, **kwargs))
        except Exception as error:  # delivered by future.result(), as a pool would
            future.set_exception(error)
        return future
