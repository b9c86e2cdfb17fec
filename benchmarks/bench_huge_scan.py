"""Peak memory of colorizing a huge 16-bit scan, strip by strip against the whole image at once.

Makes (once) a ``WIDTH x HEIGHT`` 16-bit RGB TIFF from the bundled example photo (bicubic
enlargement plus film-grain noise, so every strip has detail), then, each in its own process
under ``/usr/bin/time -v``:

1. ``c2e colorize SCAN --reference examples/coffee.jpg -o OUT.tif`` (the CLI, strips);
2. the same through the Python API with ``strip_pixels=None`` (the whole image at once);
3. the worker colorizing the scan as a 16-bit RGBA layer sent by the plugins' client
   (its peak from ``/proc/PID/status`` VmHWM).

It prints each peak RSS and wall time and how far the stripped output is from the whole-image
one (16-bit levels, and the share of 8-bit values more than 1 level apart).

    python benchmarks/bench_huge_scan.py [--width 10000 --height 8000] [--dir /tmp/c2e-huge]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "examples" / "coffee.jpg"
SOURCE = ROOT / "examples" / "chelsea-gray.jpg"


def make_scan(path: Path, width: int, height: int) -> None:
    """A gray photo enlarged to ``width x height`` as 16-bit RGB with grain, written once."""
    if path.exists():
        return
    import tifffile
    from PIL import Image

    photo = Image.open(SOURCE).convert("F")
    rows = []
    rng = np.random.default_rng(0)
    strip = 500
    for top in range(0, height, strip):
        bottom = min(height, top + strip)
        box = (0, top * photo.height / height, photo.width, bottom * photo.height / height)
        part = photo.resize((width, bottom - top), Image.BICUBIC, box=box)
        values = np.asarray(part, np.float32) / 255.0
        values += rng.normal(0, 0.01, values.shape).astype(np.float32)
        rows.append((np.clip(values, 0, 1) * 65535 + 0.5).astype(np.uint16))
    gray = np.concatenate(rows)
    tifffile.imwrite(path, np.repeat(gray[:, :, None], 3, axis=2), photometric="rgb")


def timed(command: list[str]) -> tuple[float, float, str]:
    """Run ``command`` under ``/usr/bin/time -v``: (peak RSS in GiB, wall s, stderr)."""
    start = time.monotonic()
    done = subprocess.run(
        ["/usr/bin/time", "-v", *command], capture_output=True, text=True, check=False
    )
    wall = time.monotonic() - start
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-2000:]}")
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)[1])
    return peak_kb / 2**20, wall, done.stderr


WHOLE = """
import sys
from c2e_core.inference.pipeline import Colorizer
colorizer = Colorizer.from_weights("default", device="cpu", strip_pixels=None)
colorizer.colorize(sys.argv[1], sys.argv[2]).save(sys.argv[3])
"""

WORKER = """
import json, sys, time
sys.path.insert(0, sys.argv[3])
import numpy as np, tifffile
from PIL import Image
from c2e_client.client import WorkerClient
from c2e_client.protocol import Pixels
scan = tifffile.imread(sys.argv[1])
height, width = scan.shape[:2]
layer = np.empty((height, width, 4), "<u2")
layer[:, :, :3] = scan
layer[:, :, 3] = 65535
del scan
target = Pixels(width, height, "RGBA", "u16", layer.tobytes())
del layer
ref = Image.open(sys.argv[2]).convert("RGB")
reference = Pixels(ref.width, ref.height, "RGB", "u8", ref.tobytes())
with WorkerClient(sys.executable) as client:
    client.hello()
    start = time.monotonic()
    result = client.colorize(target, reference, options={"device": "cpu"})
    wall = time.monotonic() - start
    status = open(f"/proc/{client.pid}/status").read()
    peak_kb = int([l for l in status.splitlines() if l.startswith("VmHWM")][0].split()[1])
assert (result.width, result.height) == (width, height)
print(json.dumps({"worker_peak_gib": peak_kb / 2**20, "wall_s": wall}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=10000)
    parser.add_argument("--height", type=int, default=8000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/c2e-huge"))
    parser.add_argument("--skip-worker", action="store_true")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    scan = args.dir / f"scan-{args.width}x{args.height}-16bit.tif"
    make_scan(scan, args.width, args.height)
    striped, whole = args.dir / "strips.tif", args.dir / "whole.tif"
    python = sys.executable
    cli_peak, cli_wall, _ = timed(
        [python, "-m", "c2e_core.cli", "colorize", str(scan), "--reference", str(REFERENCE),
         "-o", str(striped), "--overwrite", "--device", "cpu"]
    )  # fmt: skip
    whole_peak, whole_wall, _ = timed([python, "-c", WHOLE, str(scan), str(REFERENCE), str(whole)])
    import tifffile

    a = tifffile.imread(striped).astype(np.int32)
    b = tifffile.imread(whole).astype(np.int32)
    levels16 = int(np.abs(a - b).max())
    a8, b8 = (a * 255 + 32767) // 65535, (b * 255 + 32767) // 65535
    beyond_1 = float((np.abs(a8 - b8) > 1).mean())
    report = {
        "date": date.today().isoformat(),
        "image": f"{args.width}x{args.height} 16-bit RGB TIFF",
        "cli_strips_peak_gib": round(cli_peak, 2),
        "cli_strips_wall_s": round(cli_wall, 1),
        "whole_image_peak_gib": round(whole_peak, 2),
        "whole_image_wall_s": round(whole_wall, 1),
        "max_diff_16bit_levels": levels16,
        "share_8bit_beyond_1_level": beyond_1,
    }
    if not args.skip_worker:
        client_dir = str(ROOT / "c2e_plugins" / "client")
        done = subprocess.run(
            [python, "-c", WORKER, str(scan), str(REFERENCE), client_dir],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            sys.exit(f"worker run failed:\n{done.stderr[-2000:]}")
        worker = json.loads(done.stdout.strip().splitlines()[-1])
        report["worker_peak_gib"] = round(worker["worker_peak_gib"], 2)
        report["worker_wall_s"] = round(worker["wall_s"], 1)
    print(json.dumps(report, indent=1))
    os.sync()


if __name__ == "__main__":
    main()
