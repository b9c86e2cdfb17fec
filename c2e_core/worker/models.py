"""The worker's model cache: loaded models kept between requests.

One model per (weights file, device), the :data:`MODEL_CACHE_SIZE` most recently used kept; a
re-imported name is a new file (its modification time or size changed), so a new model. Each
model serves every (compat, precision) variant a request asks for. torch is imported only when
a model is loaded or evicted.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

#: How many loaded models stay in memory, keyed by (weights, device).
MODEL_CACHE_SIZE = 2

#: ``(weights, device, host) -> Colorizer``: how a model is loaded (tests pass a stand-in).
Loader = Callable[[Any, Any, Any], Any]


def load_colorizer(weights: Any, device: Any, host: Any) -> Any:
    """A fp32 :class:`~c2e_core.inference.pipeline.Colorizer` for resolved weights and device."""
    from c2e_core.inference.pipeline import Colorizer

    return Colorizer.from_weights(weights, device=device, host=host)


class ModelCache:
    """Colorizers by (weights file, device) and (compat, precision); counts model loads."""

    def __init__(self, size: int = MODEL_CACHE_SIZE, loader: Loader = load_colorizer):
        self.size = size
        self.loader = loader
        self.loads = 0
        self._models: OrderedDict[tuple[Any, ...], dict[Any, Any]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._models)

    @staticmethod
    def key(weights: Any, device: Any) -> tuple[Any, ...]:
        """What identifies a loaded model: the weights file as it is now, and the device."""
        stat = weights.path.stat()
        return (str(weights.path), stat.st_mtime_ns, stat.st_size, str(device))

    def get(
        self,
        weights: Any,
        device: Any,
        *,
        compat: str | None = None,
        precision: str = "fp32",
        host: Any = None,
        on_load: Callable[[], Any] | None = None,
    ) -> Any:
        """The colorizer for resolved ``weights`` (:class:`~c2e_core.weights.store.ResolvedWeights`)
        on a resolved ``device``, loading the model when needed (``on_load`` runs first)."""
        key = self.key(weights, device)
        entry = self._models.get(key)
        if entry is None:
            if on_load is not None:
                on_load()
            entry = {(None, "fp32"): self.loader(weights, device, host)}
            self.loads += 1
            self._models[key] = entry
            self._evict(device)
        variant = (compat, precision)
        if variant not in entry:
            entry[variant] = variant_of(entry[(None, "fp32")], compat, precision, host)
        self._models.move_to_end(key)
        return entry[variant]

    def _evict(self, device: Any) -> None:
        while len(self._models) > self.size:
            self._models.popitem(last=False)
            if getattr(device, "type", None) == "cuda":
                import torch

                torch.cuda.empty_cache()


def variant_of(base: Any, compat: str | None, precision: str, host: Any) -> Any:
    """Another :class:`~c2e_core.inference.pipeline.Colorizer` on ``base``'s model and device."""
    from c2e_core.inference.pipeline import Colorizer

    return Colorizer(
        base.model,
        device=base.device,
        compat=compat,
        precision=precision,
        host=host,
        info=base.info,
    )
