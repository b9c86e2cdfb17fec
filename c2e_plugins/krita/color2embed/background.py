"""Run a prepared job on a background thread behind a progress dialog with a Cancel button.

Krita's API is used only on the UI thread: the background thread starts the worker (if
needed) and waits for its answer; a timer on the UI thread relays progress and the outcome.
"""

from __future__ import annotations

import itertools
import queue
import threading
from typing import Any, Callable, Optional

from . import colorize
from .c2e_client import WorkerSession
from .qt import QtCore, QtWidgets

#: How often the UI thread looks at the background thread's messages (milliseconds).
POLL_MS = 50
_job_numbers = itertools.count(1)

#: Called once on the UI thread with (result, None), (None, error), or (None, None) if cancelled.
FinishedCallback = Callable[[Any, Optional[BaseException]], None]


def _progress_dialog(text: str, maximum: int, title: str, name: str, parent: Any) -> Any:
    """A window-modal progress dialog with Cancel that stays until closed (``maximum`` 0: busy)."""
    progress = QtWidgets.QProgressDialog(text, "Cancel", 0, maximum, parent)
    progress.setWindowTitle(title)
    progress.setObjectName(name)
    progress.setWindowModality(QtCore.Qt.WindowModality.WindowModal)
    progress.setMinimumDuration(0)
    progress.setAutoClose(False)
    progress.setAutoReset(False)
    return progress


class _Background:
    """A background thread (``_work``) behind a progress dialog with Cancel (``cancel``); a
    timer on the UI thread reads the thread's messages (``_poll``)."""

    def _set_up(self, thread_name: str, text: str, maximum: int, title: str, name: str,
                parent: Any) -> None:  # fmt: skip
        self._messages: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._work, name=thread_name)
        self._thread.daemon = True
        self.progress = _progress_dialog(text, maximum, title, name, parent)
        self.progress.canceled.connect(self.cancel)
        self.timer = QtCore.QTimer()
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self._poll)

    def start(self) -> None:
        self.progress.show()
        self.timer.start()
        self._thread.start()

    finished = False

    def _poll(self) -> None:
        """UI thread: hand the thread's messages to ``_show_progress`` and ``_done``."""
        while not self.finished:
            try:
                kind, *values = self._messages.get_nowait()
            except queue.Empty:
                return
            if kind == "progress":
                self._show_progress(*values)
            else:
                self._done(*values)

    def _work(self) -> None:
        raise NotImplementedError

    def _show_progress(self, *values: Any) -> None:
        raise NotImplementedError

    def _done(self, *values: Any) -> None:
        raise NotImplementedError

    def cancel(self) -> None:
        raise NotImplementedError


class BackgroundColorize(_Background):
    """One colorization: progress dialog, worker thread, Cancel. The UI stays responsive."""

    def __init__(
        self,
        job: colorize.PreparedJob,
        session: WorkerSession,
        python: str,
        on_finished: FinishedCallback,
        parent: Any = None,
    ):
        self.job = job
        self.session = session
        self.python = python
        self.on_finished = on_finished
        self.request_id = f"krita-{next(_job_numbers)}"
        self.cancelled = False
        self.finished = False
        self._client: Any = None
        starting = "Starting the c2e worker…" if not session.running else "Colorizing…"
        self._set_up("c2e-colorize", starting, 0, "Colorize from Reference",
                     "color2embed_progress", parent)  # fmt: skip

    def cancel(self) -> None:
        """Stop the job: the worker drops it at its next step; the document stays unchanged."""
        if self.finished:
            return
        self.cancelled = True
        client = self._client
        if client is not None:
            client.cancel(self.request_id)
        self._finish()
        self.on_finished(None, None)

    # -- background thread ------------------------------------------------------------------------
    def _work(self) -> None:
        try:
            client = self.session.client(self.python)
            self._client = client
            if self.cancelled:
                return
            self._messages.put(("progress", 0, 0, "Colorizing…"))
            result = colorize.run(self.job, client, self._on_progress, self.request_id)
            self._messages.put(("done", result, None))
        except Exception as exc:  # shown to the user on the UI thread
            self._messages.put(("done", None, exc))

    def _on_progress(self, done: int, total: int, message: str) -> bool:
        self._messages.put(("progress", done, total, message))
        return self.cancelled

    # -- UI thread --------------------------------------------------------------------------
    def _show_progress(self, done: int, total: int, text: str) -> None:
        self.progress.setRange(0, max(total, 0))
        self.progress.setValue(min(done, total) if total > 0 else 0)
        if text:
            self.progress.setLabelText(text[:1].upper() + text[1:])

    def _done(self, result: Any, error: BaseException | None) -> None:
        self._finish()
        if not self.cancelled:
            self.on_finished(result, error)

    def _finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.timer.stop()
        self.progress.canceled.disconnect(self.cancel)
        self.progress.close()
        self.progress.deleteLater()


#: Called once on the UI thread with (engine python, None) or (None, error); an
#: :class:`~c2e_client.EngineCancelled` error when the user cancelled.
EngineCallback = Callable[[Optional[str], Optional[BaseException]], None]


class BackgroundEngineSetup(_Background):
    """Setting the engine up (``c2e_client.set_up_engine``: a venv, pip, a check) on a
    background thread behind a progress dialog whose Cancel stops pip and removes what was
    made. The UI stays responsive; the outcome goes to ``on_finished`` on the UI thread."""

    def __init__(self, on_finished: EngineCallback, parent: Any = None):
        self.on_finished = on_finished
        self.cancelled = False
        self.finished = False
        self.seen: list = []  # (fraction, text) as reported, for tests
        self._set_up("c2e-engine-setup", "Setting up the c2e engine…", 100,
                     "Colorize from Reference: setting up", "color2embed_engine_progress",
                     parent)  # fmt: skip
        self.progress.setMinimumWidth(520)

    def cancel(self) -> None:
        """Ask the set-up to stop; the dialog stays until it has removed what it made."""
        self.cancelled = True
        self.progress.setLabelText("Cancelling: removing what was made…")

    def _work(self) -> None:
        from .c2e_client import set_up_engine

        try:
            python = set_up_engine(progress=self._on_progress, cancelled=lambda: self.cancelled)
            self._messages.put(("done", python, None))
        except Exception as exc:  # shown on the UI thread
            self._messages.put(("done", None, exc))

    def _on_progress(self, fraction: float | None, text: str) -> None:
        self._messages.put(("progress", fraction, text))

    def _show_progress(self, fraction: float | None, text: str) -> None:
        self.seen.append((fraction, text))
        if fraction is None:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 100)
            self.progress.setValue(int(round(fraction * 100)))
        if text and not self.cancelled:
            self.progress.setLabelText(text)

    def _done(self, python: str | None, error: BaseException | None) -> None:
        self.finished = True
        self.timer.stop()
        self.progress.canceled.disconnect(self.cancel)
        self.progress.close()
        self.progress.deleteLater()
        self.on_finished(python, error)
