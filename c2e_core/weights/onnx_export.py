"""Export a model's two networks to runtime weights (:mod:`c2e_core.runtime.weights`).

The graphs are traced from the torch modules themselves (the colour conversion inside the
networks included), so the runtime computes what the torch path computes; the export checks
that onnxruntime reproduces torch's outputs on sample inputs before it writes anything.
"""

from __future__ import annotations

import importlib.util
import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from c2e_core.errors import WeightsError
from c2e_core.modeling.color2embed import L_HALF_RANGE, lab_scaling
from c2e_core.runtime.weights import write_runtime_weights

#: The ONNX opset of exported graphs.
OPSET = 17
#: The largest difference from torch (network output units, tanh scale) an export may show.
EXPORT_TOLERANCE = 1e-3


class _Embed(nn.Module):
    """``model.embed`` with the reference code as a flat tuple."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, rgb: torch.Tensor) -> tuple[torch.Tensor, ...]:
        code = self.model.embed(rgb)
        return tuple(code) if isinstance(code, tuple) else (code,)


class _Predict(nn.Module):
    """``model.predict_ab`` taking the reference code as separate tensors."""

    def __init__(self, model: nn.Module, code_type: Any):
        super().__init__()
        self.model, self.code_type = model, code_type

    def forward(self, l_norm: torch.Tensor, *code: torch.Tensor) -> torch.Tensor:
        value = code[0] if self.code_type is None else self.code_type(*code)
        return self.model.predict_ab(l_norm, value)


def _trace(module: nn.Module, inputs: tuple, names: tuple, outputs: tuple, axes: dict) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes on shape-dependent Python branches
        torch.onnx.export(
            module, inputs, buffer, input_names=list(names), output_names=list(outputs),
            dynamic_axes=axes, opset_version=OPSET, dynamo=False,
        )  # fmt: skip
    return _without_empty_trailing_inputs(buffer.getvalue())


def _without_empty_trailing_inputs(graph: bytes) -> bytes:
    """The graph with every node's trailing empty optional inputs (``""``) dropped, which means
    the same in ONNX. torch writes ``Pad(x, pads, "")`` for the EfficientNet's "SAME" paddings,
    and onnxruntime folds a ``Pad`` into the convolution after it only when no such input is
    there: measured, the reference network of the default weights ran 88 -> 67 ms."""
    import onnx

    model = onnx.load_from_string(graph)
    for node in model.graph.node:
        while node.input and node.input[-1] == "":
            node.input.pop()
    return model.SerializeToString()


def _code_axes(names: tuple[str, ...], code: tuple[torch.Tensor, ...]) -> dict[str, dict]:
    """Token tensors (``[1, N, ...]``) vary in length with the reference's shape."""
    return {n: {1: "tokens"} for n, t in zip(names, code, strict=True) if t.dim() in (2, 3)}


def export_onnx(
    model: nn.Module, architecture: str, config: dict[str, Any], out: str | Path,
    metadata: dict[str, Any] | None = None,
) -> tuple[str, float]:  # fmt: skip
    """Write ``model``'s runtime weights to ``out``; returns (sha256, the largest difference
    from torch on the check inputs)."""
    if importlib.util.find_spec("onnx") is None:  # torch.onnx writes through it
        raise WeightsError("exporting needs the onnx package: pip install onnx")
    model = model.eval().float()
    multiple = int(getattr(model, "size_multiple", 16))
    generator = torch.Generator().manual_seed(0)
    reference = torch.rand((1, 3, 8 * multiple, 6 * multiple), generator=generator)
    targets = torch.rand((2, 1, 6 * multiple, 10 * multiple), generator=generator) * 2 - 1
    # checked again at other sizes than the trace's: a size the trace froze shows there
    other_reference = torch.rand((1, 3, 5 * multiple, 9 * multiple), generator=generator)
    other_targets = torch.rand((1, 1, 9 * multiple, 7 * multiple), generator=generator) * 2 - 1

    def as_tuple(value: Any) -> tuple[torch.Tensor, ...]:
        return tuple(value) if isinstance(value, tuple) else (value,)

    with torch.no_grad():
        code_value = model.embed(reference)
        code = as_tuple(code_value)
        expected = model.predict_ab(targets, code_value)
        other_value = model.embed(other_reference)
        other = (other_reference, other_targets, as_tuple(other_value),
                 model.predict_ab(other_targets, other_value))  # fmt: skip
    is_tuple = isinstance(code_value, tuple)
    names = tuple(code_value._fields) if is_tuple and hasattr(code_value, "_fields") else (
        tuple(f"code{i}" for i in range(len(code))) if is_tuple else ("z",)
    )  # fmt: skip
    blend = "tokens" if hasattr(model, "blend_embeddings") else "mean"
    if blend == "tokens" and names[:4] != ("z", "keys", "values", "bias"):
        raise WeightsError(f"{architecture}: its reference code {names} cannot be exported")
    image_axes = {2: "height", 3: "width"}
    graphs = {
        "embed": _trace(_Embed(model), (reference,), ("rgb",), names,
                        {"rgb": image_axes, **_code_axes(names, code)}),
        "predict_ab": _trace(
            _Predict(model, type(code_value) if is_tuple else None), (targets, *code),
            ("l_norm", *names), ("ab",),
            {"l_norm": {0: "batch", **image_axes}, "ab": {0: "batch", **image_axes},
             **_code_axes(names, code)},
        ),
    }  # fmt: skip
    difference = max(_check_export(graphs, reference, targets, code, names, expected),
                     _check_export(graphs, *other[:3], names, other[3]))  # fmt: skip
    scaling = lab_scaling(model)
    manifest = {
        "architecture": architecture,
        "config": dict(config),
        "code_names": list(names),
        "blend": blend,
        "ab_scale": float(scaling.ab_scale),
        "l_half_range": float(L_HALF_RANGE),
        "size_multiple": multiple,
        "metadata": {
            **dict(metadata or {}),
            "onnx_opset": OPSET,
            "exported_with": f"torch {torch.__version__}",
            "export_max_difference": difference,
        },
    }
    return write_runtime_weights(out, manifest, graphs), difference


def provenance(metadata: dict[str, Any], source: str, sha256: str) -> dict[str, Any]:
    """Runtime weights' metadata: the torch weights' own, and which file they came from."""
    return {**dict(metadata or {}), "exported_from": {"weights": source, "sha256": sha256}}


def _check_export(graphs, reference, targets, code, names, expected) -> float:
    """The largest difference between onnxruntime's outputs and torch's on these inputs
    (and on a target batch of one); a :class:`WeightsError` above :data:`EXPORT_TOLERANCE`."""
    from c2e_core.runtime.networks import OnnxNetworks
    from c2e_core.runtime.weights import RuntimeWeights

    weights = RuntimeWeights("check", {}, names, "mean", 1.0, 1.0, 1, graphs)
    networks = OnnxNetworks(weights, device="cpu")
    got_code = networks.embed(reference.numpy())
    difference = max(float(np.abs(g - c.numpy()).max()) for g, c in zip(got_code, code,
                                                                       strict=True))  # fmt: skip
    got = networks.predict_ab(targets.numpy(), [c.numpy() for c in code])
    difference = max(difference, float(np.abs(got - expected.numpy()).max()))
    one = networks.predict_ab(targets[:1].numpy(), [c.numpy() for c in code])
    difference = max(difference, float(np.abs(one - expected[:1].numpy()).max()))
    if not difference <= EXPORT_TOLERANCE:
        raise WeightsError(
            f"the exported networks differ from torch's by {difference:.2g} (more than "
            f"{EXPORT_TOLERANCE:g}); this architecture does not export faithfully"
        )
    return difference
