"""Start-up time of the light ``c2e`` commands against ``python -c pass``, and whether they import
torch (``python -X importtime``).

    python benchmarks/bench_startup.py [--repeats 7]

Each command runs ``--repeats`` times in a fresh interpreter (a scratch ``C2E_HOME``, plugin
autoload off); the table gives the median wall time and its difference to ``python -c pass``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

COMMANDS = {
    "python -c pass": ["-c", "pass"],
    "c2e --help": ["-m", "c2e_core", "--help"],
    "c2e --version": ["-m", "c2e_core", "--version"],
    "c2e weights list": ["-m", "c2e_core", "weights", "list"],
    "c2e colorize (bad --size)": ["-m", "c2e_core", "colorize", "t.png", "-r", "r.png", "-o",
                                  "o.png", "--size", "100"],
}  # fmt: skip


def _run(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, capture_output=True, check=False)
    return time.perf_counter() - start


def _imports_torch(args: list[str], env: dict[str, str]) -> bool:
    result = subprocess.run([sys.executable, "-X", "importtime", *args], env=env,
                            capture_output=True, text=True, check=False)  # fmt: skip
    names = (line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines())
    return any(name == "torch" for name in names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    repeats = parser.parse_args().repeats
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "C2E_HOME": home, "C2E_DISABLE_PLUGIN_AUTOLOAD": "1"}
        medians = {}
        print("| command | median wall time | vs `python -c pass` | imports torch |")
        print("|---|---|---|---|")
        for name, args in COMMANDS.items():
            _run(args, env)  # warm the file cache
            medians[name] = statistics.median(_run(args, env) for _ in range(repeats))
            delta = medians[name] - medians["python -c pass"]
            torch = "yes" if _imports_torch(args, env) else "no"
            print(f"| `{name}` | {medians[name]:.3f} s | +{delta:.3f} s | {torch} |")


if __name__ == "__main__":
    main()
