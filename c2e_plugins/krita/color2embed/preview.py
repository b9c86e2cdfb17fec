"""The dialog's live preview in Krita: what the run would give, at preview size.

The target (the selection's area of the layer or of the visible image) is read once per source
and shrunk; each reference is read once per choice and shrunk; the worker colorizes the small
copy on a background thread (:class:`~c2e_client.preview.WorkerPreviews`: only the newest
request runs, a stale one is cancelled). The worker keeps each reference's embedding, so a
change of strength alone does not embed the reference again. Krita's API is used only on the
UI thread (:meth:`KritaPreview.request`); the background thread only talks to the worker.
"""

from __future__ import annotations

from typing import Any

from . import colorize
from .c2e_client import Pixels, WorkerSession
from .c2e_client.preview import PREVIEW_REFERENCE_SIDE, PreviewTarget, WorkerPreviews, shrink


class KritaPreview:
    """Previews of one dialog: ``request`` (UI thread) reads and queues, ``take`` (UI thread)
    returns the newest finished one, ``close`` ends it (the running preview is cancelled)."""

    def __init__(self, document: Any, layer: Any, session: WorkerSession):
        self.document = document
        self.layer = layer
        self.session = session
        self._targets: dict[str, PreviewTarget] = {}
        self._references: list[tuple[Any, Pixels]] = []  # (document or path, shrunk pixels)
        self.previews = WorkerPreviews(session, name="c2e-krita-preview")
        self.runner = self.previews.runner

    # -- UI thread ----------------------------------------------------------------------------
    def before(self, options: colorize.ColorizeOptions) -> Pixels:
        """The source as the preview shows it before colorizing (raises ``ColorizeError``)."""
        return self._target(options).for_working_size(options.size)[0]

    def request(self, references: list[Any], weights: list[float] | None,
                options: colorize.ColorizeOptions, python: str) -> int:  # fmt: skip
        """Read what the preview needs (cached) and queue it; returns its generation. Raises
        ``ColorizeError`` for what the run itself would refuse (no reference, a mask...)."""
        options.check()
        if not references or any(r is None or (not isinstance(r, str) and r == self.document)
                                 for r in references):  # fmt: skip
            raise colorize.ColorizeError("Choose another open document or an image file.")
        small, mask = self._target(options).for_working_size(options.size)
        pixels = [self._reference(r) for r in references]
        return self.previews.request(python, small, pixels, weights, options, mask)

    def take(self) -> Any:
        """The newest finished preview: (generation, result Pixels, error, seconds), or None."""
        return self.previews.take()

    def close(self) -> None:
        """End the previews and let go of the pixels read for them."""
        self.previews.close()
        self._targets = {}
        self._references = []

    def _target(self, options: colorize.ColorizeOptions) -> PreviewTarget:
        if options.source not in self._targets:
            _, _, target, mask, _ = colorize.read_target(self.document, self.layer, options)
            self._targets[options.source] = PreviewTarget(target, mask)
        return self._targets[options.source]

    def _reference(self, reference: Any) -> Pixels:
        for known, pixels in self._references:
            if isinstance(known, str) == isinstance(reference, str) and known == reference:
                return pixels
        if isinstance(reference, str):
            full = colorize.reference_file_pixels(reference)
        else:
            full = colorize.reference_pixels(reference)
        pixels = shrink(full, PREVIEW_REFERENCE_SIDE)
        self._references = [(reference, pixels)] + self._references[:3]
        return pixels
