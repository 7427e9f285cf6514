"""The executor's launcher and the judge's entry point import no torch, so that a fresh judge
starts its executor before either imports it (``verification/confined/launch.py``)."""

import subprocess
import sys

from verification.confined.worker import CHECK_DTYPE_NAMES
from verification.suite.conformance import dtype_name
from verification.targets.adapter import CHECK_DTYPES


def test_the_judges_dtype_choices_are_the_check_dtypes():
    assert CHECK_DTYPE_NAMES == tuple(dtype_name(dtype) for dtype in CHECK_DTYPES), (
        "worker.CHECK_DTYPE_NAMES must name adapter.CHECK_DTYPES")


def test_the_worker_and_the_launcher_import_no_torch():
    probe = ("import sys; import verification.confined.worker; "
             "print('torch' in sys.modules)")
    imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                              check=True).stdout.strip()
    assert imported == "False", "worker.py must import torch only after starting the executor"
