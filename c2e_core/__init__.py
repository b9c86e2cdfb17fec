"""Color2Embed Studio: exemplar-based colorization (Zhao et al. 2021).

Public API (imported lazily, so ``import c2e_core`` stays cheap)::

    from c2e_core import Colorizer
    colorizer = Colorizer.from_weights("paper")
    result = colorizer.colorize("old-photo.jpg", reference="palette.jpg")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from c2e_core.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["Colorizer", "__version__", "hookimpl"]

if TYPE_CHECKING:
    from c2e_core.inference.pipeline import Colorizer


def __getattr__(name: str) -> Any:
    if name == "Colorizer":
        from c2e_core.inference.pipeline import Colorizer

        return Colorizer
    raise AttributeError(f"module 'c2e_core' has no attribute {name!r}")
