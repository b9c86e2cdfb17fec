"""The dialog's live preview in GIMP: what the run would give, at preview size.

The layer (the selection's part of it) is read once and shrunk for each working size;
each reference is read once (merged, at most ``REFERENCE_LIMIT`` on its longest side, as the
run reads it); the worker colorizes the small copy on a background thread
(:class:`~c2e_client.preview.WorkerPreviews`: only the newest request runs, a stale one is
cancelled). GIMP's API is used only on the dialog's thread (:meth:`GimpPreview.request`).
"""

from __future__ import annotations

from typing import Any

import gi

gi.require_version("Gimp", "3.0")
from c2e_client import Pixels  # noqa: E402
from c2e_client.preview import PreviewTarget, WorkerPreviews  # noqa: E402
from gi.repository import Gimp  # noqa: E402

from .colorize import check_source, read_pixels, read_reference  # noqa: E402
from .layouts import layer_layout  # noqa: E402
from .options import ColorizeError, ColorizeOptions  # noqa: E402


def read_region(image: Gimp.Image, drawable: Gimp.Drawable) -> tuple[Pixels, bytes | None]:
    """The part of ``drawable`` the run would colorize (inside the selection's bounds), in its
    own depth, and the selection over it, one byte a pixel (None when nothing is selected).
    Read at full size: GEGL's scaled reads of a plug-in's buffer come back empty for tiles it
    has not fetched (seen in GIMP 3.0.4), so ``PreviewTarget`` shrinks them. Raises
    :class:`ColorizeError`."""
    check_source(image, drawable)
    intersects, x, y, width, height = drawable.mask_intersect()
    if not intersects or width <= 0 or height <= 0:
        raise ColorizeError(f"The selection does not overlap the layer '{drawable.get_name()}'.")
    layout = layer_layout(image.get_precision().value_name, drawable.has_alpha())
    target = Pixels(width, height, layout.channels, layout.dtype,
                    read_pixels(drawable, (x, y, width, height), layout.gegl_format),
                    linear=layout.linear)  # fmt: skip
    if Gimp.Selection.is_empty(image):
        return target, None
    _, offset_x, offset_y = drawable.get_offsets()
    mask = read_pixels(image.get_selection(), (offset_x + x, offset_y + y, width, height),
                       "Y u8")  # fmt: skip
    return target, mask


class GimpPreview:
    """Previews of one dialog for ``drawable`` of ``image``: :meth:`request` reads (cached)
    and queues, :meth:`take` returns the newest finished one, :meth:`close` ends them."""

    def __init__(self, image: Gimp.Image, drawable: Gimp.Drawable, session: Any):
        self.image = image
        self.drawable = drawable
        self.previews = WorkerPreviews(session, name="c2e-gimp-preview")
        self.runner = self.previews.runner
        self._target_read: PreviewTarget | None = None  # read once, full size
        self._references: dict[int, Pixels] = {}

    def before(self, options: ColorizeOptions) -> Pixels:
        """The layer as the preview shows it before colorizing."""
        return self._target(options)[0]

    def request(self, python: str, references: list[Gimp.Image], options: ColorizeOptions
                ) -> int:  # fmt: skip
        """Queue a preview after ``references`` (one, or a second blended in by
        ``options.blend_share``); returns its generation. Raises :class:`ColorizeError`."""
        options.check()
        if not references or any(r is None or not r.is_valid() for r in references):
            raise ColorizeError("Choose the reference: another open image or an image file.")
        target, mask = self._target(options)
        pixels = [self._reference(r) for r in references]
        weights = options.reference_weights() if len(pixels) == 2 else None
        return self.previews.request(python, target, pixels, weights, options, mask)

    def take(self) -> Any:
        """The newest finished preview: (generation, result Pixels, error, seconds), or None."""
        return self.previews.take()

    def close(self) -> None:
        """End the previews and let go of the pixels read for them."""
        self.previews.close()
        self._target_read = None
        self._references = {}

    def _target(self, options: ColorizeOptions) -> tuple[Pixels, Pixels | None]:
        if self._target_read is None:
            self._target_read = PreviewTarget(*read_region(self.image, self.drawable))
        return self._target_read.for_working_size(options.size)

    def _reference(self, reference: Gimp.Image) -> Pixels:
        key = reference.get_id()
        if key not in self._references:
            self._references[key] = read_reference(reference)
        return self._references[key]
