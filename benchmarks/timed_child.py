"""A checkout's code timed in a Python process of its own (standard library only, so that the
children of a benchmark import neither torch nor the benchmark's own version of c2e)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


class TimedChild:
    """``python -c code *args`` with ``folder`` first on its path (its ``c2e_core``): every line
    written to it asks for one timed run, and it answers with the run's seconds."""

    def __init__(self, code: str, folder: Path, args: Sequence[str] = (), threads: int = 0):
        env = {**os.environ, "PYTHONPATH": str(folder)}
        if threads:
            env["OMP_NUM_THREADS"] = str(threads)
        self.process = subprocess.Popen([sys.executable, "-c", code, *map(str, args)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, env=env, cwd=str(folder))  # fmt: skip

    def time(self, request: str = "run") -> float:
        """The seconds of one run, asked for with the line ``request``."""
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(request + "\n")
        self.process.stdin.flush()
        return float(self.process.stdout.readline())

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(30)
