"""Ship trained weights inside the package as named weights (``c2e_core/bundled/``).

    python training/bundle_weights.py runs/cpu-small/final.c2e.pt --name default \
        --file small-photos188.c2e.pt --data-note "188 of shared/data/photos-train ..." \
        --description "small model, ..."

The file is re-written with ``description`` and ``data_note`` added to its metadata (the
training provenance that ``c2e train`` recorded is kept; ``--set KEY=VALUE`` changes a
configuration field that holds no weights, such as ``reference_orientations=8``, and records it
as ``config_changed_at_bundling``) under the name ``NAME-torch``, and
exported to runtime weights (``*.c2e.onnx``, for onnxruntime: no torch needed) under ``NAME``;
``manifest.json`` records each name, file, sha256 and description; ``c2e weights list`` shows
them, and the name ``default`` is what ``c2e colorize``, the worker and the host plugins use
when no weights are named.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

BUNDLED = Path(__file__).resolve().parents[1] / "c2e_core" / "bundled"


def bundle(
    source: Path, name: str, file_name: str, description: str, data_note: str, folder: Path,
    config_changes: dict[str, Any] | None = None,
) -> str:  # fmt: skip
    """Write ``folder/file_name`` (torch weights, as ``name-torch``) and its runtime weights
    (as ``name``) with their manifest entries; return the runtime weights' sha256."""
    from c2e_core.plugins import get_plugin_host
    from c2e_core.runtime.weights import RUNTIME_SUFFIX
    from c2e_core.weights.build import build_model, load_state_strictly
    from c2e_core.weights.loader import read_weights_any
    from c2e_core.weights.onnx_export import export_onnx
    from c2e_core.weights.store import check_name, save_weights

    def architecture_config_class(architecture: str) -> type | None:
        return get_plugin_host().architectures()[architecture].config_class

    check_name(name)
    weights, _ = read_weights_any(source)  # checks the file builds its model strictly
    metadata = {**weights.metadata, "description": description, "data_note": data_note}
    config = dict(weights.config)
    if config_changes:
        allowed = getattr(architecture_config_class(weights.architecture), "INFERENCE_FIELDS", ())
        refused = sorted(set(config_changes) - set(allowed))
        if refused:
            raise ValueError(f"--set changes only fields that hold no weights "
                             f"({', '.join(allowed) or 'none here'}), not {', '.join(refused)}")
        config.update(config_changes)
        # bad values (ValueError) and a model the tensors do not fit, before anything is written
        load_state_strictly(build_model(weights.architecture, config), weights.state_dict)
        metadata["config_changed_at_bundling"] = dict(config_changes)
    sha256 = save_weights(
        folder / file_name,
        architecture=weights.architecture,
        config=config,
        state_dict=weights.state_dict,
        metadata=metadata,
    )
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    entries = manifest.setdefault("weights", {})
    torch_name = check_name(f"{name}-torch")
    old = {entries.get(n, {}).get("file") for n in (name, torch_name)} - {None}
    runtime_file = file_name.removesuffix(".c2e.pt") + RUNTIME_SUFFIX
    _, model = read_weights_any(folder / file_name)
    provenance = {**metadata, "exported_from": {"weights": torch_name, "sha256": sha256}}
    runtime_sha256, _ = export_onnx(model, weights.architecture, config,
                                    folder / runtime_file, provenance)  # fmt: skip
    entries[name] = {"file": runtime_file, "sha256": runtime_sha256, "description": description}
    entries[torch_name] = {"file": file_name, "sha256": sha256,
                           "description": f"{description} (the torch model)"}  # fmt: skip
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    for stale in old - {file_name, runtime_file}:
        if not any(e["file"] == stale for e in entries.values()):
            (folder / stale).unlink(missing_ok=True)
    return runtime_sha256


def _key_value(item: str) -> tuple[str, Any]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ValueError(f"--set takes KEY=VALUE, not {item!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--set {key}: {value!r} is not a JSON value") from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", type=Path, help="trained c2e weights (c2e train's final file)")
    parser.add_argument("--name", default="default")
    parser.add_argument("--file", required=True, help="file name inside c2e_core/bundled/")
    parser.add_argument("--description", required=True, help="one line for c2e weights list")
    parser.add_argument("--data-note", required=True, help="what the training data was")
    parser.add_argument("--folder", type=Path, default=BUNDLED)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="change a configuration field that holds no weights (JSON value)")
    args = parser.parse_args(argv)
    from c2e_core.weights.store import WeightsError

    try:
        changes = dict(_key_value(item) for item in args.set)
        sha256 = bundle(args.weights, args.name, args.file, args.description, args.data_note,
                        args.folder, changes)  # fmt: skip
    except (WeightsError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"bundled {args.name}: {args.folder / args.file} (sha256 {sha256[:12]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
