"""Progress reporting with cancellation, shared by the library, the CLI and the worker."""

from __future__ import annotations

from collections.abc import Callable

from c2e_core.errors import Cancelled

#: ``callback(done, total, message)``; return ``True`` to ask for cancellation.
ProgressCallback = Callable[[int, int, str], "bool | None"]


class Progress:
    """Reports a job's steps to an optional callback and to the ``c2e_progress`` hook."""

    def __init__(self, job: str, total: int, callback: ProgressCallback | None = None, host=None):
        self.job = job
        self.total = total
        self.done = 0
        self.callback = callback
        self.host = host

    def step(self, message: str = "", advance: int = 1) -> None:
        """Advance and notify; raises :class:`Cancelled` if anyone asked to stop."""
        self.done = min(self.total, self.done + advance)
        self.check(message)

    def check(self, message: str = "") -> None:
        cancel = False
        if self.callback is not None:
            cancel = self.callback(self.done, self.total, message) is True
        if self.host is not None:
            cancel = self.host.report_progress(self.job, self.done, self.total, message) or cancel
        if cancel:
            raise Cancelled(f"{self.job} cancelled")
