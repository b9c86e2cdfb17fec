"""The progress window of an interactive run: what the job does, how far it is, and Cancel
(see :mod:`c2e_gimp.cancel` for why not GIMP's own progress bar)."""

from __future__ import annotations

from typing import Any

import gi

gi.require_version("Gtk", "3.0")
from gi.repository import Gtk  # noqa: E402


class RunWindow:
    """A small window with a label, a progress bar and Cancel; :attr:`cancelled` once pressed
    (or closed). :meth:`pump` lets GTK handle its events (called while the worker works)."""

    def __init__(self, title: str):
        self.cancelled = False
        self.window = Gtk.Window(title=title)
        self.window.set_default_size(420, -1)
        self.window.set_keep_above(True)
        self.window.connect("delete-event", self._closed)
        box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=8)
        box.set_border_width(12)
        self.label = Gtk.Label(label="Colorizing…")
        self.label.set_xalign(0.0)
        self.bar = Gtk.ProgressBar()
        self.button = Gtk.Button.new_with_mnemonic("_Cancel")
        self.button.connect("clicked", lambda *_: self.cancel())
        row = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL)
        row.pack_end(self.button, False, False, 0)
        box.pack_start(self.label, False, False, 0)
        box.pack_start(self.bar, False, False, 0)
        box.pack_start(row, False, False, 0)
        self.window.add(box)
        self.window.show_all()
        self.pump()

    def update(self, fraction: float, text: str) -> None:
        """Show how far the job is (0..1) and what it does now."""
        if text and not self.cancelled:
            self.label.set_text(text[:1].upper() + text[1:])
        self.bar.set_fraction(min(max(fraction, 0.0), 1.0))
        self.pump()

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self.button.set_sensitive(False)
            self.label.set_text("Cancelling…")

    def pump(self) -> None:
        while Gtk.events_pending():
            Gtk.main_iteration_do(False)

    def close(self) -> None:
        self.window.destroy()
        self.pump()

    def _closed(self, *_: Any) -> bool:
        self.cancel()
        return True  # stays until the worker has stopped
