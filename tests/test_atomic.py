"""Atomic writes: the old file survives a failed write, and no temporary file is left."""

from __future__ import annotations

import pytest

from c2e_core.files.atomic import atomic_file, atomic_write


def test_atomic_write_replaces_and_keeps_mode(tmp_path):
    path = tmp_path / "sub" / "out.bin"
    atomic_write(path, b"first")
    assert path.read_bytes() == b"first" and path.stat().st_mode & 0o777 == 0o644
    path.chmod(0o600)
    atomic_write(path, b"second")
    assert path.read_bytes() == b"second" and path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["out.bin"]


def test_a_failed_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"precious")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_file(path) as handle:
            handle.write(b"half")
            raise RuntimeError("disk full")
    assert path.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
