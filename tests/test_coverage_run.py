"""Coverage of refnet/ measured while checks run (in a subprocess: pytest-cov holds the tracer)."""

import json
import subprocess
import sys

from verification.suite.coverage_run import measure_refnet_coverage

SCRIPT = """
import json, torch, refnet
from verification.suite.coverage_run import measure_refnet_coverage
with measure_refnet_coverage() as record:
    refnet.Tanh().forward(torch.zeros(2))
print(json.dumps(record.summary))
"""


def test_measures_lines_reached_and_lists_the_rest():
    completed = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                               check=True, timeout=120)
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    files = {entry["file"]: entry for entry in summary["files"]}
    activations = files["refnet/activations.py"]
    assert activations["missing_lines"], "backward never ran, so its lines must be listed"
    assert files["refnet/training.py"]["percent"] < 100, "train() never ran"
    assert 0 < summary["percent"] < 100


def test_disabled_measurement_says_why():
    with measure_refnet_coverage(enabled=False) as record:
        pass
    assert record.summary is None and "disabled" in record.note
