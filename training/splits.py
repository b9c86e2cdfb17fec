"""Split a folder of photos into training, decision and test folders by a fixed rule.

The rule was written before any model was trained on it, and it is not tuned afterwards:
in sorted name order, index ``i`` goes to

- ``test``     when ``i % 5 == 2``  (44 of the 219 photos of ``shared/data/photos-train``),
- ``decision`` when ``i % 10 == 4`` (22 photos),
- ``train``    otherwise            (153 photos).

``decision`` chooses between recipes and stages; ``test`` is evaluated once per shipped model,
for the README, and chooses nothing.

    python training/splits.py ../shared/data/photos-train --out split
    # -> split/train, split/decision, split/test (symbolic links)

Only the top folder's jpg/png/webp/tiff files are used; nothing in the source is changed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff"}
PARTS = ("train", "decision", "test")


def part_of(index: int) -> str:
    """The split of the ``index``-th photo in sorted name order."""
    if index % 5 == 2:
        return "test"
    if index % 10 == 4:
        return "decision"
    return "train"


def three_way_split(names: list[str]) -> dict[str, list[str]]:
    """``{"train": [...], "decision": [...], "test": [...]}`` by the fixed rule above."""
    parts: dict[str, list[str]] = {part: [] for part in PARTS}
    for index, name in enumerate(sorted(names)):
        parts[part_of(index)].append(name)
    return parts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="folder of photos")
    parser.add_argument(
        "--out", type=Path, required=True, help="creates OUT/train, OUT/decision, OUT/test"
    )
    args = parser.parse_args(argv)
    if not args.source.is_dir():
        print(f"error: {args.source} is not a folder", file=sys.stderr)
        return 2
    names = [p.name for p in args.source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    parts = three_way_split(names)
    for part in PARTS:
        folder = args.out / part
        if folder.exists() and any(folder.iterdir()):
            print(f"error: {folder} exists and is not empty", file=sys.stderr)
            return 2
    for part, members in parts.items():
        folder = args.out / part
        folder.mkdir(parents=True, exist_ok=True)
        for name in members:
            (folder / name).symlink_to((args.source / name).resolve())
    counts = ", ".join(f"{len(parts[p])} {p}" for p in PARTS)
    print(f"{counts} photos in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
