"""training/holdout_split.py: the fixed rule that held out the default weights' validation set."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

SCRIPT = REPO / "training" / "holdout_split.py"


def test_every_seventh_from_the_fourth_is_held_out(tmp_path):
    source = tmp_path / "photos"
    source.mkdir()
    names = [f"{i:04d}.jpg" for i in range(219)]
    for name in names:
        (source / name).write_bytes(b"x")
    (source / "notes.txt").write_text("not a photo")
    out = tmp_path / "split"
    result = subprocess.run([sys.executable, SCRIPT, source, "--out", out],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    val = sorted(p.name for p in (out / "val").iterdir())
    train = sorted(p.name for p in (out / "train").iterdir())
    assert len(val) == 31 and len(train) == 188
    assert val[:3] == ["0003.jpg", "0010.jpg", "0017.jpg"] and not set(val) & set(train)
    assert (out / "val" / "0003.jpg").resolve() == (source / "0003.jpg").resolve()
    again = subprocess.run([sys.executable, SCRIPT, source, "--out", out],
                           capture_output=True, text=True)
    assert again.returncode == 2 and "not empty" in again.stderr  # never mixes two splits
