"""The menu action Tools > Scripts > Colorize from Reference…: a thin wrapper around
:mod:`colorize` that asks with a dialog, runs in the background and reports problems."""

from __future__ import annotations

import traceback
from typing import Any

from krita import Extension, Krita

from . import colorize
from .background import BackgroundColorize, BackgroundEngineSetup
from .c2e_client import (
    EngineCancelled,
    WorkerSession,
    engine_folder,
    known_python,
    load_settings,
    record_python,
    save_settings,
)
from .dialog import TITLE, ColorizeDialog
from .pixels import LINEAR_SRGB_PROFILE, SRGB_PROFILE, is_linear_profile
from .preview import KritaPreview
from .qt import QtWidgets, exec_dialog

ACTION_ID = "color2embed_colorize"
ACTION_TEXT = "Colorize from Reference…"
#: How many recently active documents are remembered (the default reference is the latest).
HISTORY_LENGTH = 20


class TestHooks:
    """For automated tests and screenshots only; all off in normal use.

    ``accept_dialog``: accept the dialog with its defaults instead of waiting for the user (and
    say yes to converting a grayscale document and to setting the engine up), and record
    problems in ``outcomes`` instead of showing message boxes. ``before_dialog``: called
    with the dialog before it shows. ``outcomes``: one dict per finished run (``layer``,
    ``error``, ``cancelled``, ``info``). ``engine_setups``: one dict per engine set-up
    (``python``, ``error``, ``progress``: the (fraction, text) pairs it showed).
    """

    accept_dialog = False
    before_dialog: Any = None
    outcomes: list[dict[str, Any]] = []
    engine_setups: list[dict[str, Any]] = []


class DocumentHistory:
    """The documents in the order they were last active, most recent first."""

    def __init__(self) -> None:
        self.documents: list[Any] = []

    def note(self, document: Any) -> None:
        if document is None:
            return
        self.documents = [document] + [d for d in self.documents if d != document]
        del self.documents[HISTORY_LENGTH:]


class ColorizeExtension(Extension):
    """Registers the action; keeps one worker and the document history for the session."""

    def __init__(self, parent: Any):
        super().__init__(parent)
        self.session = WorkerSession(colorize.HOST)
        self.history = DocumentHistory()
        self.running: BackgroundColorize | None = None
        self.setting_up: BackgroundEngineSetup | None = None

    def setup(self) -> None:
        Krita.instance().notifier().applicationClosing.connect(self.session.close)

    def createActions(self, window: Any) -> None:
        action = window.createAction(ACTION_ID, ACTION_TEXT, "tools/scripts")
        action.triggered.connect(self.colorize_active)

        def note_active_view() -> None:
            view = window.activeView()
            self.history.note(view.document() if view is not None else None)

        window.activeViewChanged.connect(note_active_view)

    # -- the action -------------------------------------------------------------------------
    def colorize_active(self) -> None:
        """Colorize the active document's active layer from a reference the user picks."""
        try:
            self._colorize_active()
        except Exception as exc:  # a bug: say so rather than fail silently in Krita's log
            self._fail(_unexpected(exc))

    def _colorize_active(self) -> None:
        app = Krita.instance()
        if self.running is not None or self.setting_up is not None:
            return self._fail("A colorization is already running.")
        document = app.activeDocument()
        if document is None:
            return self._fail(
                "Open the photo to colorize and, as a second document, a colour reference."
            )
        references = colorize.reference_candidates(app.documents(), document,
                                                   self.history.documents)
        if document.colorModel() == "GRAYA" and not self._convert_to_rgb(document):
            return None
        settings = load_settings(colorize.ColorizeOptions)
        if not self._has_engine(settings):
            return None  # declined, or being set up (which comes back here when it is done)
        layer = document.activeNode()
        usable = layer is not None and layer.type() not in colorize.MASK_TYPES
        dialog = ColorizeDialog(
            _titled(references),
            settings,
            layer.name() if usable else None,
            document.selection() is not None,
            self._window(),
            KritaPreview(document, layer if usable else None, self.session),
        )
        if TestHooks.before_dialog is not None:
            TestHooks.before_dialog(dialog)
        if TestHooks.accept_dialog:
            dialog.accept()
        elif not exec_dialog(dialog):
            return None
        references, weights, chosen = dialog.choice()
        dialog.deleteLater()  # a child of Krita's window: gone once the event loop runs
        if not references:
            return self._fail("Choose a colour reference: an open document or an image file.")
        try:
            save_settings(chosen)
        except OSError:
            pass  # remembering the choices is a convenience, never a reason to stop
        try:
            job = colorize.prepare(document, layer if usable else None, references,
                                   chosen.options, weights)
        except colorize.ColorizeError as exc:
            return self._fail(str(exc))
        self.running = BackgroundColorize(job, self.session, chosen.python, self._finished,
                                          self._window())
        self.running.start()
        return None

    # -- the engine ---------------------------------------------------------------------------
    def _has_engine(self, settings: Any) -> bool:
        """True if the worker's Python is known (recorded, or an engine this plugin set up);
        else offer to set the engine up (in the background) and return False."""
        if known_python(settings) is not None:
            return True
        missing = (f"The c2e Python recorded in the settings ({settings.python}) is gone.\n\n"
                   if settings.python else "")  # fmt: skip
        question = (
            f"{missing}Colorize from Reference needs its engine: a private Python environment "
            f"with c2e's runtime (about 250 MB; pip downloads about 80 MB), made in\n"
            f"{engine_folder()}\n\nSet it up now? (Or install c2e yourself and run 'c2e "
            "plugins install krita'.)"
        )
        if not TestHooks.accept_dialog:
            buttons = QtWidgets.QMessageBox.StandardButton
            answer = QtWidgets.QMessageBox.question(self._window(), TITLE, question,
                                                    buttons.Yes | buttons.No)  # fmt: skip
            if answer != buttons.Yes:
                return False
        self.setting_up = BackgroundEngineSetup(self._engine_ready, self._window())
        self.setting_up.start()
        return False

    def _engine_ready(self, python: str | None, error: BaseException | None) -> None:
        """UI thread: record the new engine and carry on colorizing, or say what went wrong."""
        setup, self.setting_up = self.setting_up, None
        TestHooks.engine_setups.append({"python": python, "error": str(error) if error else None,
                                        "progress": list(setup.seen) if setup else []})
        if isinstance(error, EngineCancelled):
            TestHooks.outcomes.append({"layer": None, "error": None, "cancelled": True})
            return None
        if error is not None or python is None:
            return self._fail(str(error))
        record_python(load_settings(colorize.ColorizeOptions), python)
        return self.colorize_active()

    def _finished(self, result: Any, error: BaseException | None) -> None:
        """UI thread: add the layer, or explain what went wrong (the document is unchanged)."""
        try:
            self._add_layer(result, error)
        except Exception as exc:
            self._fail(_unexpected(exc))

    def _add_layer(self, result: Any, error: BaseException | None) -> None:
        running, self.running = self.running, None
        if result is None and error is None:
            TestHooks.outcomes.append({"layer": None, "error": None, "cancelled": True})
            return
        if error is not None:
            return self._fail(str(error))
        job = running.job
        if not any(d == job.document for d in Krita.instance().documents()):
            return self._fail("The document was closed while it was being colorized.")
        try:
            node = colorize.apply(job, result)
        except colorize.ColorizeError as exc:
            return self._fail(str(exc))
        job.document.setActiveNode(node)
        TestHooks.outcomes.append({"layer": node.name(), "error": None, "cancelled": False,
                                   "info": dict(result.info)})
        return None

    def _convert_to_rgb(self, document: Any) -> bool:
        """Offer to convert a grayscale document to RGB; True if it now is RGB."""
        try:
            colorize.check_document(document)
        except colorize.GrayscaleDocumentError as exc:
            question = str(exc).split(":")[0] + ".\n\nConvert it to RGB now (same bit depth)?"
            if not TestHooks.accept_dialog:
                answer = QtWidgets.QMessageBox.question(self._window(), TITLE, question)
                if answer != QtWidgets.QMessageBox.StandardButton.Yes:
                    return False
            linear = is_linear_profile(document.colorProfile())
            profile = LINEAR_SRGB_PROFILE if linear else SRGB_PROFILE
            document.setColorSpace("RGBA", document.colorDepth(), profile)
            document.waitForDone()
            if document.colorModel() != "RGBA":
                self._fail("Krita could not convert the document to RGB: " + str(exc))
                return False
        return True

    def _fail(self, message: str) -> None:
        """Tell the user: the first line, and any further lines (the worker's output) under
        'Show Details'."""
        TestHooks.outcomes.append({"layer": None, "error": message, "cancelled": False})
        if TestHooks.accept_dialog:
            return
        first, _, rest = message.partition("\n")
        box = QtWidgets.QMessageBox(self._window())
        box.setIcon(QtWidgets.QMessageBox.Icon.Warning)
        box.setWindowTitle(TITLE)
        box.setText(first)
        if rest.strip():
            box.setDetailedText(rest.strip())
        exec_dialog(box)

    def _window(self) -> Any:
        window = Krita.instance().activeWindow()
        return window.qwindow() if window is not None else None


def _unexpected(exc: BaseException) -> str:
    """A message for a bug: one line, and the traceback under 'Show Details'."""
    return f"Colorize from Reference failed unexpectedly: {exc!r}\n" + traceback.format_exc()


def _titled(documents: list[Any]) -> list[Any]:
    """(title, document) pairs; repeated titles get a number so they can be told apart."""
    seen: dict[str, int] = {}
    pairs = []
    for document in documents:
        title = colorize.document_title(document)
        seen[title] = seen.get(title, 0) + 1
        pairs.append((title if seen[title] == 1 else f"{title} ({seen[title]})", document))
    return pairs
