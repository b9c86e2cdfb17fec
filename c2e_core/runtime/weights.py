"""Runtime weights: a model's two networks exported to ONNX, for onnxruntime (no torch).

A runtime weights file (``*.c2e.onnx``) is a zip archive of ``runtime.json`` (format, the
architecture and config it came from, its Lab scaling, the names of the reference code's
tensors, how several references blend, provenance) and two graphs: ``embed.onnx`` (reference
RGB ``[1, 3, h, w]`` in [0, 1] -> the reference code) and ``predict_ab.onnx`` (normalised L
``[B, 1, h, w]`` and the reference code -> ab in the network's output scale). ``c2e export
onnx`` writes them (:mod:`c2e_core.weights.onnx_export`, which needs torch).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from c2e_core.errors import WeightsError
from c2e_core.files.atomic import atomic_file

RUNTIME_FORMAT = "c2e-runtime"
RUNTIME_FORMAT_VERSION = 1
RUNTIME_SUFFIX = ".c2e.onnx"
MANIFEST_NAME = "runtime.json"
GRAPHS = ("embed", "predict_ab")
#: How several references' codes combine: the weighted mean of one embedding, or the tokens of
#: a correspondence model side by side (``c2e_core.modeling.correspondence``).
BLENDS = ("mean", "tokens")


@dataclass
class RuntimeWeights:
    """The content of a runtime weights file."""

    architecture: str
    config: dict[str, Any]
    code_names: tuple[str, ...]
    blend: str
    ab_scale: float
    l_half_range: float
    size_multiple: int
    graphs: dict[str, bytes]
    metadata: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    sha256: str | None = None


def is_runtime_weights(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a zip archive holding a ``runtime.json``."""
    try:
        with zipfile.ZipFile(path) as archive:
            return MANIFEST_NAME in archive.namelist()
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def write_runtime_weights(
    path: str | os.PathLike[str], manifest: Mapping[str, Any], graphs: Mapping[str, bytes]
) -> str:
    """Write a runtime weights file atomically; returns its sha256."""
    if set(graphs) != set(GRAPHS):
        raise WeightsError(f"runtime weights need the graphs {', '.join(GRAPHS)}")
    body = {"format": RUNTIME_FORMAT, "format_version": RUNTIME_FORMAT_VERSION, **manifest}
    buffer = io.BytesIO()
    # stored, not deflated: float weights barely compress, and inflating would slow each load
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(MANIFEST_NAME, json.dumps(body, indent=1, sort_keys=True))
        for name in GRAPHS:
            archive.writestr(f"{name}.onnx", graphs[name])
    data = buffer.getvalue()
    with atomic_file(Path(path)) as handle:
        handle.write(data)
    return hashlib.sha256(data).hexdigest()


def read_runtime_weights(
    path: str | os.PathLike[str], expected_sha256: str | None = None
) -> RuntimeWeights:
    """Read and check a runtime weights file; every failure is a one-line :class:`WeightsError`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WeightsError(f"{path}: cannot read ({exc.strerror or exc})") from None
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256.lower():
        raise WeightsError(f"{path}: sha256 {digest} does not match the recorded {expected_sha256}")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            manifest = json.loads(archive.read(MANIFEST_NAME))
            graphs = {name: archive.read(f"{name}.onnx") for name in GRAPHS}
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError, zipfile.LargeZipFile) as exc:
        raise WeightsError(f"{path}: not readable runtime weights ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != RUNTIME_FORMAT:
        raise WeightsError(f"{path}: runtime.json is not a {RUNTIME_FORMAT} manifest")
    if manifest.get("format_version") != RUNTIME_FORMAT_VERSION:
        raise WeightsError(
            f"{path}: runtime weights format version {manifest.get('format_version')!r}; this "
            f"c2e reads version {RUNTIME_FORMAT_VERSION} (export them again with `c2e export onnx`)"
        )
    try:
        weights = RuntimeWeights(
            architecture=str(manifest["architecture"]),
            config=dict(manifest.get("config") or {}),
            code_names=tuple(str(n) for n in manifest["code_names"]),
            blend=str(manifest["blend"]),
            ab_scale=float(manifest["ab_scale"]),
            l_half_range=float(manifest["l_half_range"]),
            size_multiple=int(manifest["size_multiple"]),
            graphs=graphs,
            metadata=dict(manifest.get("metadata") or {}),
            path=path,
            sha256=digest,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise WeightsError(f"{path}: runtime.json lacks or mangles {exc}") from None
    if weights.blend not in BLENDS or not weights.code_names or weights.size_multiple < 1:
        raise WeightsError(f"{path}: runtime.json describes no usable network")
    return weights
