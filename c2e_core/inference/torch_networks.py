"""A torch model's networks behind the pipeline's numpy interface (the ``[torch]`` backend).

The same interface as :class:`c2e_core.runtime.networks.OnnxNetworks`: ``embed`` and
``predict_ab`` take and return float32 numpy arrays; the model runs on a torch device (CPU,
CUDA, MPS) in fp32, bf16/fp16 autocast or, on the CPU, int8.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from c2e_core.errors import OptionError
from c2e_core.inference.device import select_device
from c2e_core.modeling.color2embed import lab_scaling
from c2e_core.runtime.networks import Code


def prepare_for_inference(model: nn.Module, device: torch.device) -> nn.Module:
    """Eval mode on ``device`` with channels-last 4-D weights (faster convolutions on CPU and
    GPU). The model is changed in place: the :class:`Colorizer` owns the model it is given."""
    model = model.eval().to(device)
    for parameter in model.parameters():
        if parameter.dim() == 4:
            parameter.data = parameter.data.contiguous(memory_format=torch.channels_last)
    return model


class TorchNetworks:
    """``model.embed`` / ``model.predict_ab`` on ``device`` at ``precision``, numpy in and out."""

    def __init__(self, model: nn.Module, device: Any = "auto", precision: str = "fp32"):
        self.device = select_device(device)
        self.device_name = str(self.device)
        if precision == "int8" and self.device.type != "cpu":
            raise OptionError("int8 runs on the CPU only; on a GPU use fp16 or bf16")
        self.precision = precision
        self.model = prepare_for_inference(model, self.device)
        if precision == "int8":
            from c2e_core.inference.quantization import quantize_static_parts

            self.model = quantize_static_parts(self.model)
        self.ab_scale = float(lab_scaling(model).ab_scale)
        self.size_multiple = int(getattr(model, "size_multiple", 16))
        self.blend = "tokens" if hasattr(model, "blend_embeddings") else "mean"
        self._code_type: Any = None

    def autocast(self):
        """The context the networks run in: autocast to bf16/fp16 at those precisions, off
        otherwise."""
        if self.precision in ("fp32", "int8"):
            return torch.autocast(self.device.type, enabled=False)
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(self.device)
        return tensor.contiguous(memory_format=torch.channels_last) if tensor.dim() == 4 else tensor

    @torch.inference_mode()
    def embed(self, rgb: np.ndarray) -> Code:
        with self.autocast():
            code = self.model.embed(self._tensor(rgb))
        if isinstance(code, tuple):
            self._code_type = type(code)
            return tuple(t.float().cpu().numpy() for t in code)
        return (code.float().cpu().numpy(),)

    @torch.inference_mode()
    def predict_ab(self, l_norm: np.ndarray, code: Code) -> np.ndarray:
        tensors = [self._tensor(t) for t in code]
        if len(tensors) == 1:
            value: Any = tensors[0]
        else:
            if self._code_type is None:
                from c2e_core.modeling.correspondence import ReferenceCode

                self._code_type = ReferenceCode
            value = self._code_type(*tensors)
        with self.autocast():
            out = self.model.predict_ab(self._tensor(l_norm), value)
        return out.float().cpu().numpy()
