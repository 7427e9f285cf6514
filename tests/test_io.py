"""Atomic writes: the target holds the old or the complete new content, never a fragment."""

import os

import pytest

from refnet._io import write_atomically


def test_writes_text_and_bytes(tmp_path):
    write_atomically(tmp_path / "a.txt", "héllo")
    write_atomically(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    mode = (tmp_path / "a.txt").stat().st_mode & 0o777
    assert mode == 0o666 & ~_umask(), f"permissions follow the umask, got {oct(mode)}"


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "report.html"
    target.write_text("old")

    def interrupted(source, destination):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(target, "new")
    assert target.read_text() == "old", "the old content must survive"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["report.html"], "temp file left"
