"""Judges forked from a preloaded process: one interpreter start and one import of torch for a
whole scoreboard, not one per target.

``python -m verification.confined.zygote CONTROL_FD`` (the zygote) imports torch and everything
a judge needs (``_PRELOADED``: ``judge``, and through it ``verification.suite.conformance`` and
``remote``; and ``torch._dynamo``, which ``torch.optim`` imports when a judge builds its first
reference optimiser), sets torch to one thread, and then only forks. It never runs a torch
operation and says it is ready only while it has a single thread, so a fork copies no thread
and no lock held by one. It never imports target code: the judge does not either
(``worker.py``); the target's executor is started by each judge as a fresh interpreter, as
before.

The parent (``isolation.py``) talks to it through ``Zygote``:

- on the control socket (``SOCK_SEQPACKET``, one message a datagram) it sends a request
  ``{"args": the judge's arguments, "env": its environment, "cwd": its working directory}``
  with four file descriptors (``socket.send_fds``): one end of a socket pair of this judge's
  own, then the write ends of the judge's record pipe, stdout and stderr;
- the zygote forks; the child calls ``setsid``, asks for SIGKILL when the zygote dies
  (``PR_SET_PDEATHSIG``), puts the two capture pipes on 1 and 2, closes the zygote's own
  descriptors, changes to ``cwd``, replaces its environment with ``env``, runs
  ``worker.main(args + ["--record-fd", fd])`` and leaves with ``os._exit`` (a judge that ends by
  a signal dies by it, ``worker._gone``);
- on the judge's own socket the zygote replies ``{"pid": pid}`` (or ``{"error": message}``),
  and later ``{"exit": status}`` as ``Popen.returncode`` gives it (``-N``: signal ``N``). It
  does not reap the judge until the parent sends ``{"release": true}`` (or closes the socket),
  so until then the judge's pid, which is also its process group's and session's id, cannot be
  reused, and the parent can kill what is left in them, as it does for a child of its own.

The zygote ends when its control socket closes (the parent closed it or died), after killing
the process group of every judge still running and reaping them all. It runs in a session of
its own, so a Ctrl-C at the terminal reaches the parent only, which stops the judges itself.
"""

import ctypes
import importlib
import json
import os
import select
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback

import torch

from verification.confined import worker

__all__ = ["Zygote", "ForkedJudge", "START_TIMEOUT", "main"]

START_TIMEOUT = 60.0
"""Seconds the zygote may take to import torch and say it is ready; past them the parent starts
its judges as fresh interpreters (``isolation.py``)."""

_REPLY_TIMEOUT = 30.0
"""Seconds the parent waits for the pid of a judge it asked for, and for the exit status of one
it killed (a hang guard: both come within milliseconds)."""

_MESSAGE_LIMIT = 2**20
"""Bytes a request may take (its environment is most of it)."""

_PR_SET_PDEATHSIG = 1

_PRELOADED = ("verification.confined.judge", "torch._dynamo")
"""What every judge imports, imported by the zygote once before it forks (in ``main``: the
parent imports this module too, for ``Zygote``, and needs neither): the checks, and
``torch._dynamo``, which ``torch.optim`` imports when a judge builds its first reference
optimiser (about 1 s)."""

_ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1"}
"""Added to the zygote's own environment: numpy's OpenBLAS (imported with torch) otherwise
starts its thread pool as it loads. Judges run with the environment of their request."""


class ForkedJudge:
    """A judge the zygote forked, as the parent sees it.

    Attributes:
        pid: the judge's pid, its process group's and its session's id.
        code: its exit status once reported (``Popen.returncode``), else ``None``; also
            ``None`` after ``wait`` when the zygote ended before it could report one.
    """

    def __init__(self, pid, channel):
        self.pid, self.channel, self.code = pid, channel, None
        channel.setblocking(False)
        self._over = False  # the exit status arrived, or the zygote is gone

    def exited(self):
        """Whether the judge has exited (or the zygote is gone), without blocking."""
        if not self._over:
            try:
                self._take(self.channel.recv(4096))
            except BlockingIOError:
                pass
            except OSError:
                self._over = True
        return self._over

    def wait(self):
        """Wait for the exit status (after the parent killed the judge's process group), then
        let the zygote reap the judge; returns the status (``None``: lost with the zygote)."""
        self.channel.settimeout(_REPLY_TIMEOUT)
        try:
            while not self._over:
                self._take(self.channel.recv(4096))
            self.channel.send(b'{"release": true}')
        except OSError:  # the zygote is gone, or a hang guard passed
            pass
        finally:
            self.channel.close()
        return self.code

    def _take(self, data):
        self._over = True
        try:
            message = json.loads(data) if data else {}
        except ValueError:
            message = {}
        code = message.get("exit") if isinstance(message, dict) else None
        self.code = code if isinstance(code, int) else None


class Zygote:
    """The parent's handle on one zygote, shared by the threads of ``isolation.run_all``:
    started by the first ``spawn``, ended by ``close`` (or ``with``).

    Args:
        environment: the zygote's environment; its ``PYTHONPATH`` must reach this harness.
        cwd: the zygote's working directory (``python -m`` puts it first on the import path).
    """

    def __init__(self, environment, cwd):
        self.environment, self.cwd = environment, cwd
        self.process = self.control = None
        self.unavailable = None  # why no judge can be forked here, once known
        self._lock = threading.Lock()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()

    def spawn(self, args, env, cwd, fds, stop=None):
        """Fork a judge running ``worker.main(args + ["--record-fd", …])`` with ``fds``
        (the write ends of its record pipe, stdout and stderr) in ``cwd`` with ``env``, starting
        the zygote first if it is not yet running. Returns a ``ForkedJudge``, or ``None`` when
        the zygote cannot start or has ended (``unavailable`` says why) or ``stop`` was set
        while it started."""
        with self._lock:
            if self.control is None and self.unavailable is None:
                self._start(stop)
            if self.control is None:
                return None
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            request = json.dumps({"args": args, "env": env, "cwd": cwd}).encode()
            try:
                socket.send_fds(self.control, [request], [theirs.fileno(), *fds])
            except OSError as error:
                ours.close()
                self._fail(f"its control socket failed: {error}")
                return None
            finally:
                theirs.close()
        ours.settimeout(_REPLY_TIMEOUT)
        try:
            reply = json.loads(ours.recv(4096) or b"{}")
        except (OSError, ValueError):
            reply = {}
        pid = reply.get("pid") if isinstance(reply, dict) else None
        if not isinstance(pid, int):
            ours.close()
            with self._lock:
                self._fail(f"it gave no pid ({reply.get('error', 'no reply')})"
                           if isinstance(reply, dict) else "it gave no pid")
            return None
        return ForkedJudge(pid, ours)

    def _start(self, stop):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "verification.confined.zygote", str(theirs.fileno())],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                cwd=self.cwd, env=dict(self.environment, **_ONE_THREAD),
                pass_fds=(theirs.fileno(),),
                start_new_session=True)
        except OSError as error:
            ours.close()
            self.unavailable = f"it could not be started: {error}"
            return
        finally:
            theirs.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
            if select.select([ours], [], [], 0.1)[0]:
                said = ours.recv(4096)
                if said == b'{"ready": true}':
                    self.control = ours
                    return
                break
        else:
            said = None
        ours.close()
        why = ("interrupted while it started" if stop is not None and stop.is_set() else
               f"it was not ready within {START_TIMEOUT:g} s" if said is None else
               said.decode(errors="replace") or "it ended before it was ready")
        self._fail(why)

    def _fail(self, why):
        """Mark the zygote unavailable for ``why`` and end it; every later ``spawn`` gives
        ``None``."""
        self.unavailable = self.unavailable or why
        if self.control is not None:
            self.control.close()
            self.control = None
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def close(self):
        """End the zygote: it kills the judges still running and reaps them, then exits."""
        with self._lock:
            if self.control is not None:
                self.control.close()
                self.control = None
                try:
                    self.process.wait(_REPLY_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            self.unavailable = self.unavailable or "closed"


class _Child:
    """A judge the zygote forked: its socket, its exit status once seen, and whether the
    parent has released it."""

    def __init__(self, channel):
        self.channel, self.code, self.released = channel, None, False


def main(argv=None):
    """The zygote's loop (module docstring); returns when the control socket closes."""
    argv = sys.argv[1:] if argv is None else argv
    control = socket.socket(fileno=int(argv[0]))
    for name in _PRELOADED:
        importlib.import_module(name)
    torch.set_num_threads(1)
    worker._not_dumpable()
    wake_read, wake_write = os.pipe()
    for fd in (wake_read, wake_write):
        os.set_blocking(fd, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_write)
    threads = len(os.listdir("/proc/self/task"))
    if threads != 1:  # a fork would copy a process whose other threads vanish: fork no judge
        control.send(f"it has {threads} threads, and forks only with one".encode())
        return 1
    children = {}
    with selectors.DefaultSelector() as selector:
        selector.register(control, selectors.EVENT_READ)
        selector.register(wake_read, selectors.EVENT_READ)
        control.send(b'{"ready": true}')
        while True:
            for key, _ in selector.select():
                if key.fileobj is control:
                    message, fds, _, _ = socket.recv_fds(control, _MESSAGE_LIMIT, 4)
                    if not message:
                        _end(children)
                        return 0
                    _fork(message, fds, children, selector,
                          [control, selector, wake_read, wake_write])
                elif key.fileobj == wake_read:
                    while _drained(wake_read):
                        pass
                    _report_exits(children)
                else:
                    _release(key.data, children, selector)


def _fork(message, fds, children, selector, own):
    """Fork a judge for ``message`` with ``fds`` (its socket, record, stdout, stderr); the
    child closes ``own`` (the zygote's own sockets, selector and pipe ends) and every judge's
    socket."""
    if len(fds) != 4:
        for fd in fds:
            os.close(fd)
        return
    channel = socket.socket(fileno=fds[0])
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        pid = os.fork()
    except OSError as error:
        pid = None
        channel.send(json.dumps({"error": f"fork failed: {error}"}).encode())
    if pid == 0:
        _judge(message, *fds[1:], [*own, channel, *(child.channel for child in children.values())])
    for fd in fds[1:]:
        os.close(fd)
    if pid is None:
        channel.close()
        return
    channel.send(json.dumps({"pid": pid}).encode())
    children[pid] = _Child(channel)
    selector.register(channel, selectors.EVENT_READ, pid)


def _judge(message, record, stdout, stderr, inherited):
    """In the forked child: become the judge of ``message`` and exit with its status."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for item in inherited:  # sockets and the selector by their objects, pipes by number
            if isinstance(item, int):
                os.close(item)
            else:
                item.close()
        os.setsid()
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        request = json.loads(message)
        os.dup2(stdout, 1)
        os.dup2(stderr, 2)
        os.close(stdout)
        os.close(stderr)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        code = worker.main([*request["args"], "--record-fd", str(record)])
    except SystemExit as leaving:  # argparse's refusal, for one
        code = 0 if leaving.code is None else leaving.code
        if not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
    except BaseException:  # what an interpreter does with an uncaught exception
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)


def _drained(fd):
    try:
        return bool(os.read(fd, 512))
    except BlockingIOError:
        return False


def _report_exits(children):
    """Tell the parent of each judge that has exited since the last look; reap the ones it has
    released."""
    for pid, child in list(children.items()):
        if child.code is not None:
            continue
        try:
            ended = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            ended = None
        if ended is None:
            continue
        child.code = (ended.si_status if ended.si_code == os.CLD_EXITED
                      else -ended.si_status)
        if child.released:
            os.waitpid(pid, 0)
            del children[pid]
        else:
            try:
                child.channel.send(json.dumps({"exit": child.code}).encode())
            except OSError:
                pass


def _release(pid, children, selector):
    """The parent released judge ``pid`` (or closed its socket): reap it once it has exited,
    killing its process group first when it has not."""
    child = children[pid]
    selector.unregister(child.channel)
    child.channel.close()
    child.released = True
    if child.code is None:
        _kill_group(pid)
    else:
        os.waitpid(pid, 0)
        del children[pid]


def _end(children):
    """Kill the process group of every judge still running and reap them all."""
    for pid in children:
        _kill_group(pid)
    for pid in children:
        os.waitpid(pid, 0)


def _kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


if __name__ == "__main__":
    sys.exit(main())
