"""What a student receives of a scoreboard run: their target's folder, about them alone.

On a scoreboard each target's ``results.json`` and ``index.html`` are written from
``student_copy``: the recorded command names only this target; the spec, the adapter and every
text that came from the run (messages, details, the executor's stdout and stderr) give the
submission's own paths relative to its folder (``submission_spec``) and the grader's other
absolute paths as neutral placeholders (``sanitise``); no other target's spec or folder is
left in it. The scoreboard keeps the full picture for the grader.
"""

import os
import re
import site
import sys
import tempfile
from pathlib import Path

from verification.confined.confinement import SUBMISSION

__all__ = ["submission_spec", "sanitise", "student_copy"]

_HARNESS_ROOT = str(Path(__file__).resolve().parents[2])


def submission_spec(spec):
    """``(spec, folder)``: ``spec`` as written from its submission's folder (``adapter.py``
    or ``adapter.py:Name`` for ``subs/alice/adapter.py:Name``) and that folder, absolute; an
    importable name or ``refnet`` is returned as it is, with folder ``None``."""
    location, colon, attribute = spec.partition(":")
    if not (location.endswith(".py") or Path(location).is_file()):
        return spec, None
    path = os.path.abspath(location)
    return os.path.basename(path) + colon + attribute, os.path.dirname(path)


def _grader_paths(out, others):
    """``{absolute path: placeholder}`` of the grader's paths a student has no business
    reading: ``$HOME``, the working directory, this harness, Python's prefixes and
    site-packages, the output folder and the other submissions' folders (each as given and
    with its links resolved)."""
    named = [(os.path.expanduser("~"), "<home>"), (os.getcwd(), "<cwd>"),
             (_HARNESS_ROOT, "<refnet>"),
             *((prefix, "<python>") for prefix in (sys.prefix, sys.base_prefix, sys.exec_prefix)),
             *((path, "<site-packages>") for path in (*site.getsitepackages(),
                                                      site.getusersitepackages())),
             *(() if out is None else ((out, "<out>"),)),
             *((folder, "<another submission>") for folder in others)]
    paths = {}
    for path, placeholder in named:
        for form in {os.path.abspath(path), os.path.realpath(path)}:
            if form != os.sep:
                paths[form] = placeholder
    return paths


def sanitise(text, folder, *, out=None, others=()):
    """``text`` with the grader's absolute paths taken out: the submission's ``folder`` (and
    any path under it) made relative to it (``folder/adapter.py`` → ``adapter.py``, the
    folder itself → ``.``); the executor's private folder → ``<private folder>``; ``$HOME``
    (``<home>``), the working directory (``<cwd>``), this harness (``<refnet>``), Python's
    prefixes (``<python>``) and site-packages (``<site-packages>``), the output folder ``out``
    (``<out>``) and the folders ``others`` (``<another submission>``) → neutral placeholders.
    The longest path wins, so a submission kept under ``$HOME`` reads relative, and a path is
    replaced only whole (``/a/bob`` leaves ``/a/bobby`` alone).
    """
    return _sanitiser(folder, out, others)(text)


def _sanitiser(folder, out, others):
    """``sanitise`` for one folder, ``out`` and ``others``: a function of the text."""
    paths = _grader_paths(out, others)
    # its folder as the grader knows it, and as the sandbox showed it to its code
    own = ({os.path.abspath(folder), os.path.realpath(folder), SUBMISSION} if folder
           else set())
    paths.update(dict.fromkeys(own, "."))
    # the private folder without bubblewrap (``tempfile.mkdtemp``'s name, ``isolation.py``)
    private = re.escape(os.path.join(tempfile.gettempdir(), "tmp")) + r"[a-z0-9_]{8}"
    roots = [re.escape(path) for path in sorted(paths, key=len, reverse=True)]
    pattern = re.compile(rf"({'|'.join([private, *roots])})(?![\w.-])(/)?")

    def replace(match):
        path, slash = match.group(1), match.group(2) or ""
        if path in own:
            return "" if slash else "."
        return paths.get(path, "<private folder>") + slash

    return lambda text: pattern.sub(replace, text)


def student_copy(results, *, command, out=None, others=()):
    """A target's ``results.json`` (``conform._target_results``'s) as its student receives
    it: ``environment.command`` is ``command`` (naming this target alone); the spec, wherever
    a string is exactly it (``target.spec``, the module of a check filed under it), is the
    spec relative to the submission's folder (``submission_spec``); every other string is
    ``sanitise``d (with ``out``, the output folder, and the folders of ``others``, the other
    targets' specs)."""
    spec = results["target"]["spec"]
    relative, folder = submission_spec(spec)
    other_folders = [found for found in (submission_spec(other)[1] for other in others)
                     if found and found != folder]
    clean_text = _sanitiser(folder, out, other_folders)

    def clean(value):
        if isinstance(value, str):
            return relative if value == spec else clean_text(value)
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        if isinstance(value, list):
            return [clean(item) for item in value]
        return value

    copy = clean(results)
    copy["environment"]["command"] = command
    return copy
