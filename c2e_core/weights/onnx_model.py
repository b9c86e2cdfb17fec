"""Runtime weights behind the torch model's interface, for the inference pipeline.

The networks run in onnxruntime (:class:`~c2e_core.runtime.networks.OnnxNetworks`); the rest of
the pipeline is the torch pipeline's, on the CPU. Tensors go in and come out, as from the
torch modules.
"""

from __future__ import annotations

import torch

from c2e_core.errors import WeightsError
from c2e_core.modeling.color2embed import L_HALF_RANGE, LabScaling
from c2e_core.modeling.correspondence import ReferenceCode, blend_reference_codes
from c2e_core.runtime.networks import OnnxNetworks
from c2e_core.runtime.weights import RuntimeWeights


class OnnxModel(LabScaling):
    """The ``embed`` / ``predict_ab`` (and, for token codes, ``blend_embeddings``) of runtime
    weights.

    The sessions open on the first call, on the device given to :meth:`open` (``auto`` unless
    the :class:`~c2e_core.inference.pipeline.Colorizer` says otherwise)."""

    def __init__(self, weights: RuntimeWeights):
        if weights.l_half_range != L_HALF_RANGE:
            raise WeightsError(f"{weights.path}: a lightness scaling this c2e does not know")
        self.weights = weights
        self.ab_scale = weights.ab_scale
        self.size_multiple = weights.size_multiple
        self.device_name = "auto"
        self._networks: OnnxNetworks | None = None
        if weights.blend == "tokens":  # a correspondence model's: tokens side by side
            self.blend_embeddings = blend_reference_codes

    def open(self, device: str = "auto") -> OnnxNetworks:
        """The sessions on ``device`` (a :class:`~c2e_core.errors.DeviceError` if absent)."""
        if self._networks is None or device != self.device_name:
            self._networks = OnnxNetworks(self.weights, device)
            self.device_name = device
        return self._networks

    @property
    def networks(self) -> OnnxNetworks:
        return self._networks if self._networks is not None else self.open(self.device_name)

    def embed(self, reference_rgb: torch.Tensor) -> torch.Tensor | ReferenceCode:
        code = [torch.from_numpy(t) for t in self.networks.embed(reference_rgb.cpu().numpy())]
        return code[0] if self.weights.blend == "mean" else ReferenceCode(*code)

    def predict_ab(self, l_norm: torch.Tensor, code: torch.Tensor | ReferenceCode) -> torch.Tensor:
        parts = [code] if isinstance(code, torch.Tensor) else list(code)
        out = self.networks.predict_ab(l_norm.cpu().numpy(), [t.cpu().numpy() for t in parts])
        return torch.from_numpy(out)
