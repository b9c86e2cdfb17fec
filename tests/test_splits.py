"""training/splits.py: the fixed train / decision / test rule, written before any run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "training" / "splits.py"
sys.path.insert(0, str(SCRIPT.parent))

from splits import three_way_split  # noqa: E402


def test_rule_on_219_names_gives_153_22_44_disjoint():
    names = [f"{i:04d}.jpg" for i in range(219)]
    parts = three_way_split(list(reversed(names)))  # order given does not matter
    assert [len(parts[p]) for p in ("train", "decision", "test")] == [153, 22, 44]
    assert parts["test"][:2] == ["0002.jpg", "0007.jpg"]
    assert parts["decision"][:2] == ["0004.jpg", "0014.jpg"]
    assert sorted(sum(parts.values(), [])) == names


def test_script_links_the_parts_and_refuses_a_filled_folder(tmp_path):
    source = tmp_path / "photos"
    source.mkdir()
    for i in range(10):
        (source / f"p{i}.jpg").write_bytes(b"x")
    (source / "notes.txt").write_text("not a photo")
    out = tmp_path / "split"
    run = subprocess.run([sys.executable, str(SCRIPT), str(source), "--out", str(out)],
                         capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in (out / "test").iterdir()) == ["p2.jpg", "p7.jpg"]
    assert sorted(p.name for p in (out / "decision").iterdir()) == ["p4.jpg"]
    assert len(list((out / "train").iterdir())) == 7
    again = subprocess.run([sys.executable, str(SCRIPT), str(source), "--out", str(out)],
                           capture_output=True, text=True)  # fmt: skip
    assert again.returncode == 2 and "not empty" in again.stderr
