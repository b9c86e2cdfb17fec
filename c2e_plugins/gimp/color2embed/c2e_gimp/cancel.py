"""Cancel for interactive runs, without GIMP's progress bar.

GIMP 3 answers the Cancel of its own progress bar by closing the plug-in's process
(``gimp_plug_in_progress_cancel_callback`` calls ``gimp_plug_in_close``), which for this
persistent extension would take the menu item away until GIMP restarts. So interactive runs
show the plug-in's own progress window (``c2e_gimp.run_window``) and colorize through
:class:`CancellableClient`: the worker call runs on a thread while the window's events keep
flowing on GIMP's thread, and Cancel is sent to the worker at once; the image is changed only
after the worker answered, so a cancelled run leaves it as it was. Standard library only.
"""

from __future__ import annotations

import itertools
import queue
import threading
from typing import Any, Callable

#: How long the loop waits for the worker between two looks at the window (seconds).
PUMP_SECONDS = 0.02
_requests = itertools.count(1)


class CancellableClient:
    """``worker`` (anything with ``colorize`` and a ``client`` property, as ``LazyWorker``)
    whose ``colorize`` can be cancelled while it runs: ``pump()`` is called over and over on
    the calling thread (the dialog's events), ``cancelled()`` says whether the user asked to
    stop (then the worker is asked to drop the job, and ``WorkerCancelled`` is raised)."""

    def __init__(self, worker: Any, cancelled: Callable[[], bool], pump: Callable[[], None]):
        self.worker = worker
        self.cancelled = cancelled
        self.pump = pump
        self.request_id = ""

    @property
    def client(self) -> Any:
        return self.worker.client

    def colorize(self, *args: Any, on_progress: Any = None, **kwargs: Any) -> Any:
        self.request_id = f"gimp-{next(_requests)}"
        messages: queue.Queue = queue.Queue()
        outcome: dict = {}

        def relay(done: int, total: int, text: str) -> bool:  # the worker call's thread
            messages.put((done, total, text))
            return self.cancelled()

        def work() -> None:
            try:
                outcome["result"] = self.worker.colorize(
                    *args, on_progress=relay, request_id=self.request_id, **kwargs)
            except BaseException as exc:  # re-raised on the calling thread
                outcome["error"] = exc

        thread = threading.Thread(target=work, name="c2e-gimp-colorize")
        thread.daemon = True
        thread.start()
        asked = False
        while thread.is_alive():
            self.pump()
            self._relay(messages, on_progress)
            if not asked and self.cancelled():
                asked = True
                client = self.worker.client
                if client is not None:
                    client.cancel(self.request_id)
            thread.join(PUMP_SECONDS)
        self._relay(messages, on_progress)
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]

    @staticmethod
    def _relay(messages: queue.Queue, on_progress: Any) -> None:
        while True:
            try:
                done, total, text = messages.get_nowait()
            except queue.Empty:
                return
            if on_progress is not None:
                on_progress(done, total, text)
