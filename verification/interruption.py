"""SIGINT and SIGTERM turned into an orderly stop, for ``refnet conform`` and ``refnet verify``.

``with Interruption() as interruption:`` makes the two signals set ``interruption.stop`` (a
``threading.Event``) instead of ending the process, so that the caller can end its worker
processes and still write its reports; ``interruption.signal`` is the first signal received.
``refnet conform`` polls ``stop`` (``run_all(stop=…)``). ``refnet verify`` runs its checks on
the main thread, where nothing polls, so it opens ``Interruption(raising=True)``: the first
signal also raises ``Interrupted`` on the main thread, which unwinds the stages (their ``with``
blocks end the workers) and ends at the ``with Interruption`` block, which swallows it. Later
signals only set ``stop`` again, so they cannot cut that clean-up short.
"""

import signal
import threading

__all__ = ["Interrupted", "Interruption"]


class Interrupted(BaseException):
    """Raised on the main thread by ``Interruption(raising=True)`` at the first signal. A
    ``BaseException``, so that code recording ``Exception`` as a failure lets it pass."""


class Interruption:
    """While open (on the main thread), SIGINT and SIGTERM set ``stop`` instead of ending this
    process; with ``raising``, the first one also raises ``Interrupted`` there.

    Attributes:
        stop: a ``threading.Event``, set by the first signal.
        signal: the number of the first signal received, or ``None``.
    """

    def __init__(self, *, raising=False):
        self.stop, self.signal, self.raising, self.previous = threading.Event(), None, raising, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self.previous[number] = signal.signal(number, self._received)
        return self

    def __exit__(self, kind, error, trace):
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        return kind is Interrupted  # our own exception ends here

    def _received(self, number, frame):
        first = self.signal is None
        self.signal = self.signal or number
        self.stop.set()
        if first and self.raising:
            raise Interrupted(signal.Signals(number).name)

    @property
    def name(self):
        """The first signal's name (``"SIGINT"``), or ``None``."""
        return None if self.signal is None else signal.Signals(self.signal).name

    def exit_status(self, passed):
        """128 plus the signal's number after an interruption, else 0 or 1 by ``passed``."""
        if self.signal is not None:
            return 128 + self.signal
        return 0 if passed else 1
