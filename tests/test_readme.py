"""The README's "Checking your own framework" examples run as written and show the real file."""

import contextlib
import io
import os
import re
from pathlib import Path

import torch

from verification.targets.state import torch_state_kept

ROOT = Path(__file__).resolve().parent.parent


def _section_blocks(title):
    """The section's adapter (its first Python block) and the example that runs it (the
    block calling ``check_target``); other blocks show declarations in part."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index(f"## {title}"):]
    section = section[:section.index("\n## ", 3)]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return blocks[0], next(block for block in blocks if "check_target(" in block)


def test_the_adapter_shown_is_the_fixture_file():
    adapter, _ = _section_blocks("Checking your own framework")
    source = (ROOT / "tests/frameworks/handout_adapter.py").read_text()
    assert adapter.strip() in source, "the README's adapter differs from handout_adapter.py"


def test_the_example_runs_as_written_and_finds_the_planted_bug(monkeypatch):
    _, example = _section_blocks("Checking your own framework")
    monkeypatch.chdir(ROOT)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), torch_state_kept():
        exec(compile(example, "README.md", "exec"), {})
    lines = printed.getvalue().splitlines()
    assert re.fullmatch(r"handout: \d+ checks, 0 failed", lines[0]), lines[0]
    assert any("FAILED for Tanh()" in line for line in lines[1:]), lines
    assert torch.is_grad_enabled() and os.getcwd() == str(ROOT)
