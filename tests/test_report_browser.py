"""The report rendered by headless Chromium: the verdict and the figures are on screen.

Skipped, with the reason, where Debian's ``chromium`` is not installed (``.ci/run`` installs it).
"""

import shutil
import subprocess
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from verification.many_seeds.reproduction import Config, Settings
from verification.suite import registry
from verification.verify import VerifyOptions, run_verification

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="Chromium not installed (apt-get install chromium)")
TINY = Settings(grid=(Config((0.0, 0.0), "relu", 0.01, 10),), seeds=6, selection_seeds=4,
                reference_seeds=2, samples=80, epochs=2)
VERDICT_PASS = np.array([0xdf, 0xf3, 0xe3]) / 255  # .pass background of the verdict banner


def _screenshot(html, png, height):
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={png.parent / 'profile'}", "--hide-scrollbars",
         f"--window-size=1280,{height}", f"--screenshot={png}", html.as_uri()],
        check=True, capture_output=True, timeout=120)
    return matplotlib.image.imread(png)[..., :3]


def _rows_with_colour(image, colour, tolerance=0.02):
    matches = (np.abs(image - colour) < tolerance).all(axis=-1)
    return np.flatnonzero(matches.sum(axis=1) > 20)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    selected = [case for case in registry.cases() if case.name == "tanh"]
    original = registry.cases
    registry.cases = lambda seed=0: selected
    try:
        run_verification(VerifyOptions(out=out, stages=("checks", "reproduction"),
                                       reproduction_settings=TINY, show_progress=False))
    finally:
        registry.cases = original
    return out / "index.html"


def test_verdict_is_visible_at_the_top(report):
    image = _screenshot(report, report.parent / "top.png", 900)
    rows = _rows_with_colour(image, VERDICT_PASS)
    assert rows.size and rows.min() < 300, "the green verdict banner must be in the first screen"


def test_figures_are_drawn(report):
    """matplotlib's first colour is blue; nothing else in the report is (cells are green/red)."""
    image = _screenshot(report, report.parent / "page.png", 9000)
    blue = (image[..., 2] > image[..., 0] + 0.25).sum()
    assert blue > 2000, f"the inline SVG figures must be rendered; {blue} blue pixels seen"
    html = Path(report).read_text()
    assert html.count("<svg") >= 2, "the reproduction figures are inlined"
