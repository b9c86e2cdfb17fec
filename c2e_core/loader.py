"""Turn a weights spec (a name, a compact weights file, or an authors' checkpoint) into a model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from c2e_core.build import StateDictError, build_model, load_state_strictly
from c2e_core.official import convert_official_checkpoint, looks_like_official_checkpoint
from c2e_core.weights import WeightsError, is_c2e_weights, read_weights, resolve_weights

NO_WEIGHTS_HELP = (
    "no weights given and no default weights are installed. Import the authors' released "
    "checkpoint with `c2e weights import PATH --name paper` and pass `--weights paper` "
    "(or pass any checkpoint file with --weights PATH)"
)


@dataclass
class LoadedModel:
    model: nn.Module
    architecture: str
    config: dict[str, Any]
    name: str | None
    path: Path
    metadata: dict[str, Any] = field(default_factory=dict)


def load_model(spec: str | Path, host=None, store=None) -> LoadedModel:
    """Resolve ``spec`` and build its model (eval mode, CPU), verifying recorded hashes."""
    if host is None:
        from c2e_core.plugins import get_plugin_host

        host = get_plugin_host()
    resolved = resolve_weights(spec, store=store, host=host)
    path = resolved.path
    if is_c2e_weights(path):
        weights = read_weights(path, expected_sha256=resolved.expected_sha256)
        architecture, config = weights.architecture, weights.config
        state, metadata = weights.state_dict, weights.metadata
    elif looks_like_official_checkpoint(path):
        converted = convert_official_checkpoint(path)
        architecture, config = converted.architecture, converted.config
        state, metadata = converted.state_dict, converted.metadata
    else:
        raise WeightsError(
            f"{path}: neither c2e weights nor a checkpoint in the authors' Color2Embed format"
        )
    try:
        model = build_model(architecture, config, host=host)
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"{path}: cannot build architecture {architecture!r}: {exc}") from None
    try:
        load_state_strictly(model, state)
    except StateDictError as exc:
        raise WeightsError(f"{path}: {exc}") from None
    return LoadedModel(model, architecture, dict(config), resolved.name, path, dict(metadata))


#: The weights used when none are named (shipped by a later release or registered by a plugin).
DEFAULT_WEIGHTS_NAME = "default"


def default_weights_spec(store=None) -> str:
    """The name of the default weights, or a :class:`WeightsError` explaining how to get some."""
    from c2e_core.weights import WeightsStore

    store = store or WeightsStore()
    if DEFAULT_WEIGHTS_NAME in {entry.name for entry in store.list()}:
        return DEFAULT_WEIGHTS_NAME
    raise WeightsError(NO_WEIGHTS_HELP)
