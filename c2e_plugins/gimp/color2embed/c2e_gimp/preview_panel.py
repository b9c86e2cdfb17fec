"""The preview part of the GIMP dialog: the picture, "Live preview", "Show original" and a
status line, updated from a :class:`~c2e_gimp.preview.GimpPreview` as the dialog's choices
change (coalesced: one request once the changes pause)."""

from __future__ import annotations

from typing import Any, Callable

import gi

gi.require_version("Gtk", "3.0")
gi.require_version("GdkPixbuf", "2.0")
from c2e_client.preview import (  # noqa: E402
    PREVIEW_SIDE,
    PreviewStatus,
    first_line,
    shrink,
    to_rgba8,
)
from gi.repository import GdkPixbuf, GLib, Gtk  # noqa: E402

from .options import ColorizeError  # noqa: E402

#: How long the panel waits after the last change before it asks for a preview (ms).
PREVIEW_DELAY_MS = 120
#: How often it looks for a finished preview (ms).
PREVIEW_POLL_MS = 30

#: ``choice()`` -> (python, references, options): what the dialog shows now (may raise
#: :class:`ColorizeError`, shown under the picture).
Choice = Callable[[], tuple]


class PreviewPanel:
    """The widgets (:attr:`widget`, to pack into the dialog) and their timers."""

    def __init__(self, preview: Any, choice: Choice, live: bool):
        self.preview = preview
        self.choice = choice
        self.status_line = PreviewStatus()  # previews shown, latency
        self.closed = False
        self._before_pixels: Any = None
        self._after: Any = None
        self._before: Any = None
        self._delay_source = 0
        self._poll_source = 0
        self.picture = Gtk.Image()
        self.picture.set_size_request(PREVIEW_SIDE, PREVIEW_SIDE)
        self.live = Gtk.CheckButton.new_with_mnemonic("_Live preview")
        self.live.set_active(live)
        self.live.set_tooltip_text("Show the result here while the reference and options change")
        self.live.connect("toggled", self._live_toggled)
        self.original = Gtk.ToggleButton.new_with_mnemonic("Show _original")
        self.original.set_tooltip_text("Before and after: the layer as it is, while pressed in")
        self.original.connect("toggled", lambda *_: self._show())
        self.status = Gtk.Label(label="")
        self.status.set_xalign(0.0)
        self.status.set_line_wrap(True)
        row = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=12)
        row.pack_start(self.live, False, False, 0)
        row.pack_end(self.original, False, False, 0)
        frame = Gtk.Frame(label="Preview")
        column = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=6)
        column.set_border_width(6)
        column.pack_start(self.picture, False, False, 0)
        column.pack_start(row, False, False, 0)
        column.pack_start(self.status, False, False, 0)
        frame.add(column)
        frame.show_all()
        self.widget = frame

    def changed(self, *_: Any) -> None:
        """A choice changed: ask for a preview once the changes pause."""
        if self.closed or not self.live.get_active():
            return
        self.status_line.changed()
        if self._delay_source:
            GLib.source_remove(self._delay_source)
        self._delay_source = GLib.timeout_add(PREVIEW_DELAY_MS, self._request)

    def close(self) -> None:
        """The dialog ends: timers stopped, a running preview cancelled."""
        for source in (self._delay_source, self._poll_source):
            if source:
                GLib.source_remove(source)
        self._delay_source = self._poll_source = 0
        self.closed = True
        self.preview.close()

    def _live_toggled(self, *_: Any) -> None:
        if self.live.get_active():
            self.changed()
        else:
            self._after = None
            self.status.set_text("")
            self._show()

    def _request(self) -> bool:
        self._delay_source = 0
        try:
            python, references, options = self.choice()
            before = self.preview.before(options)
            if before is not self._before_pixels:  # the layer at a new size
                self._before, self._before_pixels = _pixbuf(before), before
            self.preview.request(python, references, options)
        except ColorizeError as exc:
            self.preview.runner.discard()  # an older preview must not replace the message
            if self._poll_source:
                GLib.source_remove(self._poll_source)
                self._poll_source = 0
            self._after = None
            self.status.set_text(first_line(exc))
            self._show()
            return False
        self.status.set_text("Computing the preview…")
        if not self._poll_source:
            self._poll_source = GLib.timeout_add(PREVIEW_POLL_MS, self._take)
        return False  # one shot

    def _take(self) -> bool:
        outcome = self.preview.take()
        if outcome is None:
            return True  # keep polling
        self._poll_source = 0
        result, text = self.status_line.finished(outcome)
        self._after = None if result is None else _pixbuf(result)
        self.status.set_text(text)
        self._show()
        return False

    def _show(self) -> None:
        shown = self._before if self.original.get_active() or self._after is None else self._after
        if shown is None:
            self.picture.clear()
            return
        scale = min(PREVIEW_SIDE / shown.get_width(), PREVIEW_SIDE / shown.get_height())
        self.picture.set_from_pixbuf(shown.scale_simple(
            max(1, int(shown.get_width() * scale)), max(1, int(shown.get_height() * scale)),
            GdkPixbuf.InterpType.BILINEAR))


def _pixbuf(pixels: Any) -> Any:
    """A GdkPixbuf of worker pixels (any depth), 8-bit sRGB RGBA for the screen, at most the
    picture's size (a float layer's conversion is pure Python: only what is shown)."""
    pixels = shrink(pixels, PREVIEW_SIDE)
    data = GLib.Bytes.new(to_rgba8(pixels))
    return GdkPixbuf.Pixbuf.new_from_bytes(data, GdkPixbuf.Colorspace.RGB, True, 8,
                                           pixels.width, pixels.height, pixels.width * 4)
