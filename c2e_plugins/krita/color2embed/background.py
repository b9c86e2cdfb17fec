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


class BackgroundColorize:
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
        self._messages: queue.Queue = queue.Queue()
        self._client: Any = None
        self._thread = threading.Thread(target=self._work, name="c2e-colorize")
        self._thread.daemon = True
        starting = "Starting the c2e worker…" if not session.running else "Colorizing…"
        self.progress = QtWidgets.QProgressDialog(starting, "Cancel", 0, 0, parent)
        self.progress.setWindowTitle("Colorize from Reference")
        self.progress.setObjectName("color2embed_progress")
        self.progress.setWindowModality(QtCore.Qt.WindowModality.WindowModal)
        self.progress.setMinimumDuration(0)
        self.progress.setAutoClose(False)
        self.progress.setAutoReset(False)
        self.progress.canceled.connect(self.cancel)
        self.timer = QtCore.QTimer()
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self._poll)

    def start(self) -> None:
        self.progress.show()
        self.timer.start()
        self._thread.start()

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
    def _poll(self) -> None:
        while not self.finished:
            try:
                message = self._messages.get_nowait()
            except queue.Empty:
                return
            if message[0] == "progress":
                _, done, total, text = message
                self.progress.setRange(0, max(total, 0))
                self.progress.setValue(min(done, total) if total > 0 else 0)
                if text:
                    self.progress.setLabelText(text[:1].upper() + text[1:])
                continue
            _, result, error = message
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
