"""The "Colorize from Reference" dialog: reference, source, size, device, strength, clean up
(and whether it keeps the palette), worker."""

from __future__ import annotations

import os
from typing import Any

from .c2e_client import ColorizeError, Settings, settings_path
from .c2e_client.preview import PREVIEW_SIDE, PreviewStatus, first_line, shrink, to_rgba8
from .colorize import SIZES, ColorizeOptions
from .qt import QtCore, QtGui, QtWidgets

TITLE = "Colorize from Reference"
#: The reference list's last entry: pick an image file.
CHOOSE_FILE = "Image file…"
IMAGE_FILES = (
    "Images (*.png *.jpg *.jpeg *.tif *.tiff *.webp *.kra *.psd *.exr *.bmp);;All files (*)"
)
SIZE_LABELS = {256: "256 (fast)", "native": "Native (the image's own size, slow)"}
DEVICE_LABELS = (("auto", "Auto (the GPU if there is one)"), ("gpu", "GPU"), ("cpu", "CPU"))
#: How long the preview waits after the last change before it asks the worker (milliseconds):
#: a slider being dragged gives one preview, not one per step.
PREVIEW_DELAY_MS = 120
#: How often the dialog looks for a finished preview (milliseconds).
PREVIEW_POLL_MS = 30


def buddy_label(text: str, widget: Any) -> Any:
    """A form label whose ``&`` shortcut focuses ``widget`` (a row that is a layout gets no
    buddy from ``QFormLayout.addRow(str, layout)``)."""
    label = QtWidgets.QLabel(text)
    label.setBuddy(widget)
    return label


def percent_row(value: float, tip: str) -> tuple[Any, Any]:
    """A 0-100 % spin box (showing ``value``, 0..1) and a slider kept in step with it: the spin
    box and the layout holding both."""
    box = QtWidgets.QSpinBox()
    box.setRange(0, 100)
    box.setSuffix(" %")
    box.setValue(int(round(value * 100)))
    box.setToolTip(tip)
    slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
    slider.setRange(0, 100)
    slider.setValue(box.value())
    slider.valueChanged.connect(box.setValue)
    box.valueChanged.connect(slider.setValue)
    row = QtWidgets.QHBoxLayout()
    row.addWidget(slider)
    row.addWidget(box)
    return box, row


class ColorizeDialog(QtWidgets.QDialog):
    """Asks for the reference and the options; :meth:`choice` reads them after ``accept``.

    ``references``: (title, document) pairs of the open documents, the default first (the
    image file last used, and "Image file…" to pick one, follow); ``layer_name``: the active
    layer's name, or None when there is none (then only the visible image can be colorized);
    ``preview``: a :class:`~color2embed.preview.KritaPreview` for the live preview (None: the
    dialog has no preview).
    """

    def __init__(
        self,
        references: list[tuple[str, Any]],
        settings: Settings,
        layer_name: str | None,
        has_selection: bool,
        parent: Any = None,
        preview: Any = None,
    ):
        super().__init__(parent)
        self.setWindowTitle(TITLE)
        self.setObjectName("color2embed_dialog")
        options = settings.options
        form = QtWidgets.QFormLayout()

        self.reference = QtWidgets.QComboBox()
        self._file = _fill_references(self.reference, references, options.reference_file)
        self.reference.setToolTip(
            "An open document (its visible image) or an image file whose colours are used; a "
            "selection in the reference document limits them to the selected part"
        )
        self.reference.activated.connect(self._reference_chosen)
        form.addRow("&Reference:", self.reference)

        self.blend = QtWidgets.QComboBox()
        self.blend.addItem("Nothing", None)
        self._blend_file = _fill_references(self.blend, references, options.blend_file)
        self.blend.setToolTip("A second reference whose colours are blended with the first's")
        self.blend.activated.connect(self._blend_chosen)
        self.share = QtWidgets.QSpinBox()
        self.share.setRange(0, 100)
        self.share.setSuffix(" %")
        self.share.setValue(int(round(options.blend_share * 100)))
        self.share.setToolTip("The second reference's share of the colours")
        self.blend.currentIndexChanged.connect(
            lambda _: self.share.setEnabled(self.blend.currentData() not in (None, CHOOSE_FILE))
        )
        self.share.setEnabled(False)
        blend = QtWidgets.QHBoxLayout()
        blend.addWidget(self.blend, 1)
        blend.addWidget(QtWidgets.QLabel("share"))
        blend.addWidget(self.share)
        form.addRow("Blend with:", blend)

        self.layer_source = QtWidgets.QRadioButton(
            f"Active layer '{layer_name}'" if layer_name else "Active layer (none)"
        )
        self.visible_source = QtWidgets.QRadioButton("Visible image")
        self.layer_source.setEnabled(layer_name is not None)
        use_layer = layer_name is not None and options.source == "layer"
        (self.layer_source if use_layer else self.visible_source).setChecked(True)
        sources = QtWidgets.QHBoxLayout()
        sources.addWidget(self.layer_source)
        sources.addWidget(self.visible_source)
        form.addRow("Colorize:", sources)

        self.size = QtWidgets.QComboBox()
        for size in SIZES:
            self.size.addItem(SIZE_LABELS.get(size, str(size)), size)
        self.size.setCurrentIndex(max(0, self.size.findData(options.size)))
        self.size.setToolTip("The size the network works at; larger is slower and more detailed")
        form.addRow("Working &size:", self.size)

        self.device = QtWidgets.QComboBox()
        for value, label in DEVICE_LABELS:
            self.device.addItem(label, value)
        self.device.setCurrentIndex(max(0, self.device.findData(options.device)))
        form.addRow("&Device:", self.device)

        self.strength, strength = percent_row(
            options.strength, "100 %: the new colours; less blends them with the original's"
        )
        form.addRow(buddy_label("S&trength:", self.strength), strength)
        self.clean, clean = percent_row(
            options.clean,
            "Evens out the colours inside flat areas (walls, skies, skin): removes blotches of "
            "foreign colour, keeps colour changes at strong edges; "
            "0 %: the colours as the network gives them",
        )
        form.addRow(buddy_label("&Clean up:", self.clean), clean)
        self.keep_palette = QtWidgets.QCheckBox("Keep the &palette")
        self.keep_palette.setChecked(bool(options.keep_palette))
        self.keep_palette.setToolTip(
            "On: the cleaned-up colours keep the spread of the reference's palette; off: "
            "calmer, paler colours"
        )
        self.keep_palette.setEnabled(self.clean.value() > 0)
        self.clean.valueChanged.connect(lambda value: self.keep_palette.setEnabled(value > 0))
        form.addRow("", self.keep_palette)

        self.colour_only = QtWidgets.QComboBox()
        self.colour_only.addItem("Full colour", False)
        self.colour_only.addItem("Colour only (a 'Color' blend-mode layer over the original)", True)
        self.colour_only.setCurrentIndex(max(0, self.colour_only.findData(options.colour_only)))
        self.colour_only.setToolTip(
            "Colour only: the new layer gives hue and saturation, the layer below keeps its "
            "lightness, so later edits of the original still show through"
        )
        form.addRow("New &layer:", self.colour_only)

        if has_selection:
            note = QtWidgets.QLabel("The selection limits the result (soft edges blend).")
            note.setWordWrap(True)
            form.addRow("", note)

        worker = QtWidgets.QGroupBox("Worker")
        worker_form = QtWidgets.QFormLayout(worker)
        self.python = QtWidgets.QLineEdit(settings.python)
        self.python.setPlaceholderText("the python of the environment where c2e is installed")
        browse = QtWidgets.QPushButton("Browse…")
        browse.clicked.connect(self._browse_python)
        python_row = QtWidgets.QHBoxLayout()
        python_row.addWidget(self.python)
        python_row.addWidget(browse)
        worker_form.addRow("Python:", python_row)
        self.weights = QtWidgets.QLineEdit(options.weights)
        self.weights.setPlaceholderText("the default weights")
        self.weights.setToolTip("A weights name (see 'c2e weights list') or a weights file")
        worker_form.addRow("&Weights:", self.weights)

        buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Ok
            | QtWidgets.QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok).setText("Colorize")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)

        controls = QtWidgets.QVBoxLayout()
        controls.addLayout(form)
        controls.addWidget(worker)
        controls.addStretch(1)
        columns = QtWidgets.QHBoxLayout()
        columns.addLayout(controls)
        self.preview = preview
        self._has_preview = preview is not None
        if preview is not None:
            columns.addWidget(self._preview_panel(options.preview))
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(columns)
        layout.addWidget(buttons)
        if preview is not None:
            for signal in (self.reference.currentIndexChanged, self.blend.currentIndexChanged,
                           self.share.valueChanged, self.strength.valueChanged,
                           self.clean.valueChanged, self.keep_palette.toggled,
                           self.size.currentIndexChanged, self.device.currentIndexChanged,
                           self.layer_source.toggled, self.weights.editingFinished,
                           self.python.editingFinished):  # fmt: skip
                signal.connect(self._preview_changed)
            if self.live.isChecked():
                self._preview_changed()

    def choice(self) -> tuple[list[Any], list[float] | None, Settings]:
        """The chosen references (documents or file paths; none when "Image file…" was left
        unanswered), their blending weights (None for one) and the settings to use (and
        remember)."""
        options = ColorizeOptions(
            preview=self.live.isChecked() if self._has_preview else True,
            size=self.size.currentData(),
            device=self.device.currentData(),
            strength=self.strength.value() / 100.0,
            clean=self.clean.value() / 100.0,
            keep_palette=self.keep_palette.isChecked(),
            source="layer" if self.layer_source.isChecked() else "visible",
            weights=self.weights.text().strip(),
            colour_only=bool(self.colour_only.currentData()),
            reference_file=self._file,
            blend_file=self._blend_file,
            blend_share=self.share.value() / 100.0,
        )
        first, second = self.reference.currentData(), self.blend.currentData()
        references = [] if first == CHOOSE_FILE else [first]
        weights = None
        if references and second not in (None, CHOOSE_FILE):
            references.append(second)
            weights = options.reference_weights()
        return references, weights, Settings(self.python.text().strip(), options,
                                             settings_path())  # fmt: skip

    # -- the live preview ---------------------------------------------------------------------
    @property
    def previews_shown(self) -> int:
        """How many previews were shown (for tests)."""
        return self._status.shown

    @property
    def preview_latency(self) -> float | None:
        """Seconds from the last change to its preview on screen (for tests)."""
        return self._status.latency

    def _preview_panel(self, live: bool) -> Any:
        box = QtWidgets.QGroupBox("Preview")
        column = QtWidgets.QVBoxLayout(box)
        self.picture = QtWidgets.QLabel()
        self.picture.setObjectName("color2embed_preview")
        self.picture.setFixedSize(PREVIEW_SIDE, PREVIEW_SIDE)
        self.picture.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.picture.setStyleSheet("background: palette(dark)")
        column.addWidget(self.picture)
        toggles = QtWidgets.QHBoxLayout()
        self.live = QtWidgets.QCheckBox("&Live preview")
        self.live.setChecked(live)
        self.live.setToolTip("Show the result here while the reference and options change")
        self.live.toggled.connect(self._live_toggled)
        self.original = QtWidgets.QPushButton("Show &original")
        self.original.setCheckable(True)
        self.original.setToolTip("Before and after: the source as it is, while pressed in")
        self.original.toggled.connect(self._show_preview)
        toggles.addWidget(self.live)
        toggles.addStretch(1)
        toggles.addWidget(self.original)
        column.addLayout(toggles)
        self.preview_status = QtWidgets.QLabel("")
        self.preview_status.setWordWrap(True)
        self.preview_status.setFixedWidth(PREVIEW_SIDE)
        column.addWidget(self.preview_status)
        self._after: Any = None  # the latest preview, a QPixmap
        self._before: Any = None  # the source at preview size, a QPixmap
        self._before_pixels: Any = None  # ... and the pixels it shows
        self._status = PreviewStatus()
        self._delay = QtCore.QTimer(self)
        self._delay.setSingleShot(True)
        self._delay.setInterval(PREVIEW_DELAY_MS)
        self._delay.timeout.connect(self._request_preview)
        self._poll = QtCore.QTimer(self)
        self._poll.setInterval(PREVIEW_POLL_MS)
        self._poll.timeout.connect(self._take_preview)
        return box

    def _preview_changed(self, *_: Any) -> None:
        """A choice changed: ask for a new preview once the changes pause."""
        if self.preview is None or not self.live.isChecked():
            return  # no preview, or the dialog has closed
        self._status.changed()
        self._delay.start()

    def _live_toggled(self, live: bool) -> None:
        if live:
            self._preview_changed()
        else:
            self._delay.stop()
            self._after = None
            self._show_preview()
            self.preview_status.setText("")

    def _request_preview(self) -> None:
        if self.preview is None:
            return
        references, weights, settings = self.choice()
        try:
            before = self.preview.before(settings.options)
            if before is not self._before_pixels:  # the source at a new size
                self._before, self._before_pixels = _pixmap(before), before
            if not references:
                raise ColorizeError("Choose a reference to see the preview.")
            self.preview.request(references, weights, settings.options, settings.python)
        except ColorizeError as exc:
            self.preview.runner.discard()  # an older preview must not replace the message
            self._poll.stop()
            self._after = None
            self.preview_status.setText(first_line(exc))
            self._show_preview()
            return
        self.preview_status.setText("Computing the preview…")
        self._poll.start()

    def _take_preview(self) -> None:
        if self.preview is None:
            return
        outcome = self.preview.take()
        if outcome is None:
            return
        self._poll.stop()
        result, text = self._status.finished(outcome)
        self._after = None if result is None else _pixmap(result)
        self.preview_status.setText(text)
        self._show_preview()

    def _show_preview(self, *_: Any) -> None:
        shown = self._before if self.original.isChecked() or self._after is None else self._after
        if shown is None:
            self.picture.clear()
            return
        self.picture.setPixmap(shown.scaled(
            PREVIEW_SIDE, PREVIEW_SIDE, QtCore.Qt.AspectRatioMode.KeepAspectRatio,
            QtCore.Qt.TransformationMode.SmoothTransformation))

    def done(self, result: int) -> None:
        """Accepted or cancelled: the running preview is cancelled, the worker stays."""
        if self.preview is not None:
            self._delay.stop()
            self._poll.stop()
            self.preview.close()  # also lets go of the pixels it read
            self.preview = None  # later signals (a focus change as it hides) do nothing
        super().done(result)

    def choose_reference_file(self, path: str) -> None:
        """Use the image file ``path`` as the reference (listed, selected and remembered)."""
        self._file = path
        _put_file(self.reference, path)

    def choose_blend_file(self, path: str) -> None:
        """Blend the image file ``path`` in as the second reference (listed and remembered)."""
        self._blend_file = path
        _put_file(self.blend, path)

    def _reference_chosen(self, index: int) -> None:
        if self.reference.itemData(index) == CHOOSE_FILE:
            path = self._ask_file(self._file)
            if path:
                self.choose_reference_file(path)
            else:  # dismissed: back to the first entry
                self.reference.setCurrentIndex(0)

    def _blend_chosen(self, index: int) -> None:
        if self.blend.itemData(index) == CHOOSE_FILE:
            path = self._ask_file(self._blend_file or self._file)
            if path:
                self.choose_blend_file(path)
            else:
                self.blend.setCurrentIndex(0)

    def _ask_file(self, near: str) -> str:
        start = os.path.dirname(near) if near else ""
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "A colour reference image", start, IMAGE_FILES
        )
        return path

    def _browse_python(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "The Python of the environment where c2e is installed", self.python.text()
        )
        if path:
            self.python.setText(path)


def _pixmap(pixels: Any) -> Any:
    """A QPixmap of worker pixels (any depth), 8-bit sRGB for the screen, at most the picture's
    size (a float layer's conversion is pure Python: only what is shown is converted)."""
    pixels = shrink(pixels, PREVIEW_SIDE)
    data = to_rgba8(pixels)
    image = QtGui.QImage(data, pixels.width, pixels.height, pixels.width * 4,
                         QtGui.QImage.Format.Format_RGBA8888)  # fmt: skip
    return QtGui.QPixmap.fromImage(image.copy())  # the copy owns its bytes


def _fill_references(combo: Any, references: list[tuple[str, Any]], remembered: str) -> str:
    """Add the open documents, the remembered file (if it still exists) and "Image file…" to
    a reference list; returns the file listed, or ``""``."""
    for title, document in references:
        combo.addItem(title, document)
    listed = remembered if os.path.isfile(remembered) else ""
    if listed:
        combo.addItem(f"File: {os.path.basename(listed)}", listed)
    combo.addItem(CHOOSE_FILE, CHOOSE_FILE)
    return listed


def _put_file(combo: Any, path: str) -> None:
    """List ``path`` in a reference list as its one "File: NAME" entry (before "Image file…")
    and select it."""
    index = next((i for i in range(combo.count())
                  if str(combo.itemText(i)).startswith("File: ")), -1)  # fmt: skip
    label = f"File: {os.path.basename(path)}"
    if index < 0:
        index = combo.count() - 1
        combo.insertItem(index, label, path)
    else:
        combo.setItemText(index, label)
        combo.setItemData(index, path)
    combo.setCurrentIndex(index)
