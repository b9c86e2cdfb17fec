"""Turn a weights spec (a name, a compact weights file, or an authors' checkpoint) into a model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from c2e_core.runtime.weights import is_runtime_weights
from c2e_core.weights.build import StateDictError, build_model, load_state_strictly
from c2e_core.weights.official import NotAnOfficialCheckpoint, load_official_checkpoint
from c2e_core.weights.store import (  # noqa: F401 (the defaults' names, re-exported)
    DEFAULT_WEIGHTS_ENV,
    DEFAULT_WEIGHTS_NAME,
    NO_WEIGHTS_HELP,
    ResolvedWeights,
    WeightsError,
    WeightsFile,
    default_weights_spec,
    is_c2e_weights,
    read_weights,
    resolve_weights,
)


@dataclass
class LoadedModel:
    model: nn.Module
    architecture: str
    config: dict[str, Any]
    name: str | None
    path: Path
    metadata: dict[str, Any] = field(default_factory=dict)


def read_weights_any(
    path: str | Path, expected_sha256: str | None = None, host: Any = None
) -> tuple[WeightsFile, nn.Module]:
    """Read c2e weights or an authors' checkpoint and check them against their architecture.

    Returns the weights and the model built from them (eval mode, CPU); an authors'
    checkpoint's model is the one its conversion built and checked. Every failure (runtime
    weights, ``*.c2e.onnx``, included: they hold no torch model) is a one-line
    :class:`~c2e_core.weights.store.WeightsError` naming the file.
    """
    path = Path(path)
    if path.is_dir():
        raise WeightsError(f"{path}: is a folder, not a weights file")
    if is_runtime_weights(path):
        raise WeightsError(
            f"{path}: runtime weights (.c2e.onnx) hold onnxruntime graphs, not a torch model; "
            "use the weights they were exported from"
        )
    if not is_c2e_weights(path):
        try:
            return load_official_checkpoint(path)
        except NotAnOfficialCheckpoint as exc:
            raise WeightsError(f"{exc}; it is not c2e weights either") from None
    weights = read_weights(path, expected_sha256=expected_sha256)
    try:
        model = build_model(weights.architecture, weights.config, host=host)
    except (TypeError, ValueError, RuntimeError) as exc:  # RuntimeError: torch refusing sizes
        raise WeightsError(
            f"{path}: cannot build architecture {weights.architecture!r}: {exc}"
        ) from None
    try:
        load_state_strictly(model, weights.state_dict)
    except StateDictError as exc:
        raise WeightsError(f"{path}: {exc}") from None
    return weights, model


def load_model(spec: str | Path | ResolvedWeights, host=None, store=None) -> LoadedModel:
    """Resolve ``spec`` (unless it is already :class:`ResolvedWeights`) and build its model
    (eval mode, CPU), verifying recorded hashes."""
    if host is None:
        from c2e_core.plugins import get_plugin_host

        host = get_plugin_host()
    if isinstance(spec, ResolvedWeights):
        resolved = spec
    else:
        resolved = resolve_weights(spec, store=store, host=host)
    weights, model = read_weights_any(resolved.path, resolved.expected_sha256, host=host)
    return LoadedModel(
        model, weights.architecture, dict(weights.config), resolved.name, resolved.path,
        dict(weights.metadata),
    )  # fmt: skip
