"""What a target's executor may see: the folders bound into its bubblewrap, its environment,
its user, and how it is started so that little in it names the harness.

Imports no torch: a fresh judge uses it before it imports torch (``launch.py``).

- **Filesystem** (``bwrap_options``): an empty root, read-only, into which are bound, read-only,
  the system's libraries (``/usr`` and the ``/bin``, ``/lib*`` links or folders, and
  ``/etc/ld.so.cache``), the interpreter and its libraries (``sys.prefix``,
  ``sys.base_prefix``, the site-packages, torch's folder), the harness's own two packages
  (``verification/``, ``refnet/``) at ``HARNESS``, and the submission's folder at
  ``SUBMISSION`` (``locate``). Writable: one tmpfs of ``DEFAULT_PRIVATE_SIZE`` bytes (or the
  size asked for) at ``PRIVATE``, its working directory, ``$HOME`` and ``$TMPDIR``, with
  ``/dev/shm`` a link into it, so everything it writes shares one cap (bubblewrap's own
  ``/dev`` is an unlimited tmpfs with a ``shm`` folder; the few devices are bound instead). No
  ``$HOME``, ``/root``, ``/tmp``, ``/run``, ``/etc/passwd``, other submission or output folder
  of the host's: no host Unix socket (ssh-agent, Docker, D-Bus) can be reached.
- **User**: a user namespace of its own where uid and gid 65534 (``nobody``) are the only ones
  (``USER_OPTIONS``; ``--disable-userns``: it can make no further one), no capabilities. Its
  uid outside is still the grader's, so files of the grader's that are bound in read-only
  are readable to it, and nothing else is there.
- **Processes**: a PID namespace of its own where the executor itself is PID 1
  (``--as-pid-1``), no network, a session of its own, killed with its judge.
- **Environment** (``environment``): only ``ALLOWED_ENVIRONMENT`` of the grader's (locale,
  thread counts), a fixed ``PATH``, ``$HOME`` and ``$TMPDIR`` its private folder; never the
  grader's tokens, ``SSH_AUTH_SOCK`` or ``PYTHONPATH``; with or without bubblewrap.
- **Start** (``bootstrap``): ``python -I -B -`` (no ``PYTHON*`` variable, no user
  site-packages, no bytecode written), the program read from its stdin, so its command line
  names no module; it puts ``HARNESS`` on ``sys.path``, and the executor takes it off
  again and drops the harness's modules from ``sys.modules`` before it imports the target
  (``executor.py``).
"""

import fnmatch
import importlib.machinery
import importlib.util
import json
import os
import site
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PRIVATE", "SUBMISSION", "HARNESS", "DEFAULT_PRIVATE_SIZE", "USER_OPTIONS",
           "ALLOWED_ENVIRONMENT", "UID", "SYSTEM", "Submission", "locate", "bwrap_options",
           "environment", "bootstrap", "harness_root", "read_only"]

PRIVATE = "/tmp"
"""The executor's private folder inside bubblewrap: a tmpfs of its own."""

SUBMISSION = "/submission"
"""Where the submission's folder is bound, read-only, inside bubblewrap."""

HARNESS = "/opt/lib"
"""Where the harness's packages are bound, read-only, inside bubblewrap."""

DEFAULT_PRIVATE_SIZE = 64 * 2**20
"""Bytes of the private tmpfs (``/dev/shm`` included): a check writes nothing, and a target's
cache or log rarely needs more."""

UID = 65534
"""The executor's uid and gid inside its user namespace (``nobody``)."""

USER_OPTIONS = ("--unshare-user", "--uid", str(UID), "--gid", str(UID), "--disable-userns")

ALLOWED_ENVIRONMENT = ("LANG", "LANGUAGE", "LC_*", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                       "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
"""The grader's variables the executor gets (names, or patterns with ``*``); nothing else."""

_PATH = "/usr/local/bin:/usr/bin:/bin"

_PROCESS_OPTIONS = ("--unshare-pid", "--unshare-net", "--die-with-parent", "--new-session",
                    "--cap-drop", "ALL", "--as-pid-1")
_DEVICES = ("null", "zero", "full", "random", "urandom")
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
           "/etc/ld.so.cache", "/etc/localtime")


@dataclass(frozen=True)
class Submission:
    """Where a spec's code lives, and how the executor names it.

    Attributes:
        folder: the host folder to bind at ``inside`` (``None``: nothing to bind: ``refnet``,
            or a name found only among the interpreter's own libraries).
        inside: where ``folder`` is bound in the sandbox.
        spec: the spec the executor gets inside the sandbox.
        path: a folder the executor puts on ``sys.path`` (inside the sandbox), for an
            importable name; else ``None``.
        plain_path: the same on the host, for an executor run without bubblewrap.
    """

    folder: str | None
    inside: str | None
    spec: str
    path: str | None
    plain_path: str | None


def harness_root():
    """The folder that holds the harness's ``verification`` and ``refnet`` packages."""
    return str(Path(__file__).resolve().parents[2])


def locate(spec, search):
    """The ``Submission`` of ``spec`` (``load_target``'s, a file's path absolute): a file's
    folder, bound at ``SUBMISSION`` with the spec rewritten under it; for an importable name,
    the top-level package's folder (a lone module's folder) found on ``search`` (the grader's
    working directory and ``PYTHONPATH``), bound at ``SUBMISSION/<package>`` (at
    ``SUBMISSION``), ``SUBMISSION`` on ``sys.path``."""
    location, colon, attribute = spec.partition(":")
    if spec == "refnet":
        return Submission(None, None, spec, None, None)
    if location.endswith(".py") and not os.path.isfile(location):
        return Submission(None, None, spec, None, None)  # the executor says it is not there
    if os.path.isfile(location):
        folder, name = os.path.split(location)
        return Submission(folder, SUBMISSION, f"{SUBMISSION}/{name}{colon}{attribute}", None,
                          None)
    top = location.split(".")[0]
    found = None
    if top.isidentifier():
        try:
            found = importlib.machinery.PathFinder.find_spec(top, [p for p in search if p])
        except (ImportError, ValueError, OSError):
            found = None
    if found is None or not found.origin and not found.submodule_search_locations:
        return Submission(None, None, spec, None, None)
    if found.submodule_search_locations:  # a package (a namespace one: its first folder)
        folder = list(found.submodule_search_locations)[0]
        return Submission(folder, f"{SUBMISSION}/{top}", spec, SUBMISSION,
                          os.path.dirname(folder))
    folder = os.path.dirname(found.origin)
    return Submission(folder, SUBMISSION, spec, SUBMISSION, folder)


def read_only():
    """The host paths bound read-only at the same place for the interpreter: the system's
    libraries and the interpreter's prefixes, site-packages and torch's folder (none inside
    another)."""
    paths = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.realpath(sys.executable)), *site.getsitepackages()]
    torch = importlib.util.find_spec("torch")
    if torch is not None and torch.origin:
        paths.append(str(Path(torch.origin).parents[1]))
    kept = []
    for path in sorted({os.path.realpath(path) for path in paths if os.path.isdir(path)}
                       | {os.path.abspath(path) for path in paths if os.path.isdir(path)}):
        if not any(path == other or path.startswith(other.rstrip("/") + "/")
                   for other in [*kept, "/usr"]):
            kept.append(path)
    return kept


def bwrap_options(submission, private_size, user=True):
    """bubblewrap's options for the executor of ``submission`` (module docstring), up to the
    ``--`` before the command; ``private_size``: bytes of its tmpfs; ``user``: in a user
    namespace of its own as ``UID`` (``USER_OPTIONS``)."""
    options = [*(USER_OPTIONS if user else ()), *_PROCESS_OPTIONS]
    for path in SYSTEM:
        if os.path.islink(path):
            options += ["--symlink", os.readlink(path), path]
        elif os.path.exists(path):
            options += ["--ro-bind", path, path]
    for path in read_only():
        options += ["--ro-bind", path, path]
    root = harness_root()
    for package in ("verification", "refnet"):
        options += ["--ro-bind", os.path.join(root, package), f"{HARNESS}/{package}"]
    if submission.folder is not None:
        options += ["--ro-bind", submission.folder, submission.inside]
    options += ["--proc", "/proc"]
    for device in _DEVICES:
        options += ["--dev-bind", f"/dev/{device}", f"/dev/{device}"]
    for number, name in enumerate(("stdin", "stdout", "stderr")):
        options += ["--symlink", f"/proc/self/fd/{number}", f"/dev/{name}"]
    options += ["--symlink", "/proc/self/fd", "/dev/fd",
                "--size", str(private_size), "--perms", "1777", "--tmpfs", PRIVATE,
                "--symlink", PRIVATE, "/dev/shm", "--remount-ro", "/", "--chdir", PRIVATE]
    return options


def environment(private, source=None):
    """The executor's whole environment: ``ALLOWED_ENVIRONMENT`` of ``source`` (default:
    this process's), a fixed ``PATH``, ``private`` as ``$HOME`` and ``$TMPDIR``."""
    source = os.environ if source is None else source
    kept = {name: value for name, value in source.items()
            if any(fnmatch.fnmatchcase(name, allowed) for allowed in ALLOWED_ENVIRONMENT)}
    return {**kept, "PATH": _PATH, "HOME": private, "TMPDIR": private}


def bootstrap(harness, argv):
    """The program the executor's interpreter reads from its stdin: ``harness`` on
    ``sys.path``, then ``executor.main(argv)``."""
    return (f"import sys\nsys.path.insert(0, {json.dumps(harness)})\n"
            "from verification.confined.executor import main\n"
            "from verification.confined.launch import leave\n"
            f"leave(main({json.dumps(argv)}))\n").encode()
