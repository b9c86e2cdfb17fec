"""Ship trained weights inside the package as named weights (``c2e_core/bundled/``).

    python training/bundle_weights.py runs/cpu-small/final.c2e.pt --name default \
        --file small-photos188.c2e.pt --data-note "188 of shared/data/photos-train ..." \
        --description "small model, ..."

The file is re-written with ``description`` and ``data_note`` added to its metadata (the
training provenance that ``c2e train`` recorded is kept), and ``manifest.json`` records its
name, file, sha256 and description; ``c2e weights list`` shows them, and the name
``default`` is what ``c2e colorize``, the worker and the host plugins use when no weights are
named.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

BUNDLED = Path(__file__).resolve().parents[1] / "c2e_core" / "bundled"


def bundle(
    source: Path, name: str, file_name: str, description: str, data_note: str, folder: Path
) -> str:
    """Write ``folder/file_name`` and its manifest entry; return the file's sha256."""
    from c2e_core.weights.loader import read_weights_any
    from c2e_core.weights.store import check_name, save_weights

    check_name(name)
    weights, _ = read_weights_any(source)  # checks the file builds its model strictly
    metadata = {**weights.metadata, "description": description, "data_note": data_note}
    sha256 = save_weights(
        folder / file_name,
        architecture=weights.architecture,
        config=weights.config,
        state_dict=weights.state_dict,
        metadata=metadata,
    )
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    entries = manifest.setdefault("weights", {})
    old = entries.get(name, {}).get("file")
    entries[name] = {"file": file_name, "sha256": sha256, "description": description}
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    if old and old != file_name and not any(e["file"] == old for e in entries.values()):
        (folder / old).unlink(missing_ok=True)
    return sha256


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", type=Path, help="trained c2e weights (c2e train's final file)")
    parser.add_argument("--name", default="default")
    parser.add_argument("--file", required=True, help="file name inside c2e_core/bundled/")
    parser.add_argument("--description", required=True, help="one line for c2e weights list")
    parser.add_argument("--data-note", required=True, help="what the training data was")
    parser.add_argument("--folder", type=Path, default=BUNDLED)
    args = parser.parse_args(argv)
    from c2e_core.weights.store import WeightsError

    try:
        sha256 = bundle(
            args.weights, args.name, args.file, args.description, args.data_note, args.folder
        )
    except (WeightsError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"bundled {args.name}: {args.folder / args.file} (sha256 {sha256[:12]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
