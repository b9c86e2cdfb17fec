"""Split a folder of photos into training and validation folders by a fixed rule.

Every ``--every``-th file in sorted name order, starting at index ``--offset``, is held out.
The defaults (every 7th from the 4th) hold out 31 of the 219 photos of
``shared/data/photos-train``; that split trained and evaluated the bundled default weights.

    python training/holdout_split.py ../shared/data/photos-train --out split
    # -> split/train (188 photos), split/val (31 photos), as symbolic links

Only the top folder's jpg/png/webp/tiff files are used; nothing in the source is changed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff"}


def holdout_split(names: list[str], every: int, offset: int) -> tuple[list[str], list[str]]:
    """``(train, val)`` names: ``val`` is every ``every``-th sorted name from index ``offset``."""
    ordered = sorted(names)
    val = ordered[offset::every]
    held = set(val)
    return [n for n in ordered if n not in held], val


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="folder of photos")
    parser.add_argument("--out", type=Path, required=True, help="creates OUT/train and OUT/val")
    parser.add_argument("--every", type=int, default=7)
    parser.add_argument("--offset", type=int, default=3)
    args = parser.parse_args(argv)
    if not args.source.is_dir():
        print(f"error: {args.source} is not a folder", file=sys.stderr)
        return 2
    if args.every < 2 or not 0 <= args.offset < args.every:
        print("error: need --every >= 2 and 0 <= --offset < --every", file=sys.stderr)
        return 2
    names = [p.name for p in args.source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    train, val = holdout_split(names, args.every, args.offset)
    for part, members in (("train", train), ("val", val)):
        folder = args.out / part
        if folder.exists() and any(folder.iterdir()):
            print(f"error: {folder} exists and is not empty", file=sys.stderr)
            return 2
        folder.mkdir(parents=True, exist_ok=True)
        for name in members:
            (folder / name).symlink_to((args.source / name).resolve())
    print(f"{len(train)} training and {len(val)} validation photos in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
