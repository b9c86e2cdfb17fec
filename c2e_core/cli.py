"""The ``c2e`` command line: colorize, info, weights, worker, and commands added by plugins."""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from c2e_core.errors import C2EError, Cancelled, DeviceError, InputError
from c2e_core.options import (
    COMPAT_MODES,
    DEFAULT_CLEAN,
    DEFAULT_SIZE,
    DEFAULT_STRENGTH,
    MAX_SIZE,
    METHODS,
    PRECISIONS,
    ColorizeRequest,
)
from c2e_core.plugins import get_plugin_host

#: Exit status for user mistakes (bad option, missing file, unreadable image, bad weights).
USAGE_ERROR = 2
CANCELLED = 130
OUTPUT_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")


#: OS errors about the user's own files: reported in one line, like a :class:`C2EError`.
FILE_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
class UserError(InputError):
    """A mistake the user can fix; printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UserError(f"{self.prog}: {message}")


def _step(value: str) -> str | tuple[str, dict]:
    """``name`` or ``name:key=value,key=value`` (values parsed as floats where possible)."""
    name, _, rest = value.partition(":")
    if not rest:
        return name
    options: dict[str, object] = {}
    for item in rest.split(","):
        key, sep, raw = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"expected key=value in {value!r}")
        try:
            options[key.strip().replace("-", "_")] = float(raw)
        except ValueError:
            options[key.strip().replace("-", "_")] = raw
    return (name, options)


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, not {value!r}")
    return number


def build_parser(host=None) -> argparse.ArgumentParser:
    parser = _Parser(prog="c2e", description="Color2Embed exemplar-based colorization")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    colorize = commands.add_parser("colorize", help="colorize images from a colour reference")
    colorize.add_argument("targets", nargs="+", metavar="TARGET", type=Path)
    colorize.add_argument(
        "-r",
        "--reference",
        action="append",
        required=True,
        type=Path,
        help="colour reference image (repeat to blend several)",
    )
    colorize.add_argument(
        "--ref-weight",
        action="append",
        type=float,
        metavar="W",
        help="weight of each --reference in the blend (same order)",
    )
    out = colorize.add_mutually_exclusive_group(required=True)
    out.add_argument("-o", "--output", type=Path, help="output file (one target)")
    out.add_argument("--output-dir", type=Path, help="folder for outputs (TARGET stem + .png)")
    colorize.add_argument("--weights", help="weights name, c2e weights file or authors' checkpoint")
    colorize.add_argument(
        "--device", default=ColorizeRequest.device, help="auto (default), cpu, cuda, cuda:N, mps"
    )
    colorize.add_argument(
        "--size",
        default=DEFAULT_SIZE,
        help=f"network working size: N (multiple of 16 up to {MAX_SIZE}, default "
        f"{DEFAULT_SIZE}) or native",
    )
    colorize.add_argument(
        "--compat",
        choices=[mode for mode in COMPAT_MODES if mode],
        help="the authors' exact test pipeline",
    )
    colorize.add_argument(
        "--method",
        choices=METHODS,
        default=ColorizeRequest.method,
        help="c2e (default: the network); or a classical baseline that needs no weights",
    )
    colorize.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=ColorizeRequest.precision,
        help="fp32 (default); int8 is faster on CPUs (see BENCHMARKS.md); bf16/fp16 for GPUs",
    )
    colorize.add_argument(
        "--strength",
        type=float,
        default=DEFAULT_STRENGTH,
        help="0 keeps the original colours, 1 (default) the prediction",
    )
    colorize.add_argument(
        "--clean",
        type=float,
        default=None,
        help=f"0 to 1 (default {DEFAULT_CLEAN:g}; 0 with --compat official): move the colours "
        "towards one colour per flat region, keeping their palette unless --no-keep-palette "
        "(removes blotches of foreign colour)",
    )
    colorize.add_argument(
        "--keep-palette",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the cleanup gives the colours back the spread its averaging narrows (default); "
        "--no-keep-palette: calmer, paler colours",
    )
    colorize.add_argument(
        "--pre",
        action="append",
        type=_step,
        default=[],
        metavar="STEP",
        help="pre-processing step NAME[:key=value,...] (see c2e info)",
    )
    colorize.add_argument(
        "--post",
        action="append",
        type=_step,
        default=[],
        metavar="STEP",
        help="post-processing step NAME[:key=value,...] (see c2e info)",
    )
    colorize.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    colorize.add_argument(
        "--max-pixels",
        type=_positive_int,
        metavar="N",
        help="read images of up to N pixels (default: Pillow's decompression-bomb limit, or "
        "$C2E_MAX_IMAGE_PIXELS)",
    )
    colorize.set_defaults(handler=cmd_colorize)

    info = commands.add_parser("info", help="versions, devices, weights and plugins")
    info.set_defaults(handler=cmd_info)

    weights = commands.add_parser("weights", help="manage named weights")
    weights_commands = weights.add_subparsers(
        dest="weights_command", metavar="ACTION", parser_class=_Parser, required=True
    )
    weights_commands.add_parser("list", help="list installed weights").set_defaults(
        handler=cmd_weights_list
    )
    imp = weights_commands.add_parser(
        "import", help="install a weights file or authors' checkpoint"
    )
    imp.add_argument("path", type=Path)
    imp.add_argument("--name", help="name to install under (default: the file's stem)")
    imp.add_argument("--force", action="store_true", help="replace weights of the same name")
    imp.set_defaults(handler=cmd_weights_import)
    ver = weights_commands.add_parser("verify", help="re-check the sha256 of installed weights")
    ver.add_argument("name", nargs="?")
    ver.set_defaults(handler=cmd_weights_verify)
    rem = weights_commands.add_parser("remove", help="delete installed weights")
    rem.add_argument("name")
    rem.set_defaults(handler=cmd_weights_remove)

    export = commands.add_parser("export", help="turn weights into other formats")
    export_commands = export.add_subparsers(
        dest="export_format", metavar="FORMAT", parser_class=_Parser, required=True
    )
    onnx = export_commands.add_parser(
        "onnx", help="runtime weights (.c2e.onnx) for onnxruntime, from any weights"
    )
    onnx.add_argument("--weights", required=True, metavar="NAME-OR-PATH",
                      help="the weights to export (a name, a c2e file or an authors' checkpoint)")
    onnx.add_argument("-o", "--output", type=Path, metavar="FILE.c2e.onnx",
                      help="where to write them (default: NAME.c2e.onnx here)")
    onnx.add_argument("--overwrite", action="store_true", help="replace an existing file")
    onnx.set_defaults(handler=cmd_export_onnx)

    worker = commands.add_parser("worker", help="serve the host plugins over stdin/stdout")
    worker.add_argument("--weights", help="weights to use when a request names none")
    worker.add_argument("--device", default="auto", help="default device: auto, cpu, cuda")
    worker.add_argument("--lazy", action="store_true",
                        help="load the --weights at the first request, not right after hello")
    worker.set_defaults(handler=cmd_worker)

    plugins = commands.add_parser("plugins", help="install the host applications' plugins")
    plugins_commands = plugins.add_subparsers(
        dest="plugins_command", metavar="ACTION", parser_class=_Parser, required=True
    )
    install = plugins_commands.add_parser(
        "install", help="copy a host's plugin into its resource folder and enable it"
    )
    uninstall = plugins_commands.add_parser("uninstall", help="remove a host's plugin")
    package = plugins_commands.add_parser(
        "package", help="make a zip of a host's plugin (Krita: Import Python Plugin from File)"
    )
    for action in (install, uninstall, package):
        action.add_argument("host", help="the host application: krita or gimp")
    for action in (install, uninstall):
        action.add_argument("--dir", "--krita-dir", "--gimp-dir", dest="folder", type=Path,
                            metavar="DIR", help="the host's resource folder (Krita) or profile "
                            "folder (GIMP: ~/.config/GIMP/3.0); default: its usual place")
        action.add_argument("--config", type=Path, metavar="FILE",
                            help="the host's settings file (Krita: kritarc)")
    for action in (install, package):
        action.add_argument("--weights", metavar="NAME-OR-PATH",
                            help="weights the plugin asks for (default: the worker's default)")
    package.add_argument("-o", "--output", type=Path, required=True, metavar="FILE.zip")
    package.add_argument("--overwrite", action="store_true", help="replace an existing zip")
    package.add_argument("--no-python", action="store_true",
                         help="record no worker Python (a zip for other machines: the plugin "
                         "offers to set up its own engine there)")  # fmt: skip
    install.set_defaults(handler=cmd_plugins_install)
    uninstall.set_defaults(handler=cmd_plugins_uninstall)
    package.set_defaults(handler=cmd_plugins_package)

    if host is not None:
        host.add_commands(commands)
    return parser


# -- commands ---------------------------------------------------------------------------------
def cmd_worker(args: argparse.Namespace) -> int:
    from c2e_core import worker

    return worker.run(args)


def cmd_plugins_install(args: argparse.Namespace) -> int:
    from c2e_core.hosts.install import get_host

    host = get_host(args.host)
    report = host.install(args.folder, weights=args.weights, config=args.config)
    for path in report.files:
        print(f"wrote {path}")
    for note in report.notes:
        print(note)
    print(f"Restart {host.title}, then use {host.menu}")
    return 0


def cmd_plugins_uninstall(args: argparse.Namespace) -> int:
    from c2e_core.hosts.install import get_host

    host = get_host(args.host)
    report = host.uninstall(args.folder, config=args.config)
    for path in report.files:
        print(f"removed {path}")
    if not report.files:
        print(f"the {host.title} plugin is not installed in {report.folder}")
    return 0


def cmd_plugins_package(args: argparse.Namespace) -> int:
    from c2e_core.hosts.install import get_host

    host = get_host(args.host)
    path = host.package(args.output, weights=args.weights, overwrite=args.overwrite,
                        record_python=not args.no_python)  # fmt: skip
    print(f"wrote {path}: {host.package_use}")
    return 0


def cmd_export_onnx(args: argparse.Namespace) -> int:
    from c2e_core.runtime.weights import RUNTIME_SUFFIX, is_runtime_weights
    from c2e_core.weights.store import resolve_weights, torch_required

    resolved = resolve_weights(args.weights, host=get_plugin_host())
    if is_runtime_weights(resolved.path):
        raise UserError(f"{resolved.path}: these are runtime weights already")
    with torch_required(resolved.path):
        from c2e_core.weights.loader import load_model

        loaded = load_model(resolved)
    stem = loaded.name or loaded.path.name.split(".")[0]
    output = args.output if args.output is not None else Path(stem + RUNTIME_SUFFIX)
    if not output.name.endswith(RUNTIME_SUFFIX):
        raise UserError(f"{output}: runtime weights are named *{RUNTIME_SUFFIX}")
    if output.exists() and not args.overwrite:
        raise UserError(f"{output}: exists; pass --overwrite to replace it")
    from c2e_core.weights.onnx_export import export_onnx, provenance
    from c2e_core.weights.store import sha256_file

    source = provenance(loaded.metadata, loaded.name or str(loaded.path), sha256_file(loaded.path))
    sha256, difference = export_onnx(loaded.model, loaded.architecture, loaded.config, output,
                                     source)  # fmt: skip
    print(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB, sha256 {sha256[:12]}; "
          f"onnxruntime matches torch within {difference:.1g})")
    return 0


def _check_input(path: Path) -> None:
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not an image")
    if not path.is_file():
        raise UserError(f"{path}: no such file")


def _output_paths(args: argparse.Namespace) -> list[Path]:
    if args.output is not None:
        if len(args.targets) != 1:
            raise UserError("-o/--output takes one target; use --output-dir for several")
        outputs = [args.output]
    else:
        outputs = [args.output_dir / f"{t.stem}.png" for t in args.targets]
        if len(set(outputs)) != len(outputs):
            raise UserError("several targets share a file name; colorize them separately")
    for target, output in zip(args.targets, outputs, strict=True):
        if output.suffix.lower() not in OUTPUT_EXTENSIONS:
            raise UserError(
                f"{output}: unsupported output type (use {', '.join(OUTPUT_EXTENSIONS)})"
            )
        if output.resolve() in {p.resolve() for p in (target, *args.reference)}:
            raise UserError(f"{output}: refusing to overwrite an input image")
        if output.is_dir():
            raise UserError(f"{output}: is a folder; give a file name")
        if output.exists() and not args.overwrite:
            raise UserError(f"{output} exists; pass --overwrite to replace it")
    return outputs


def _check_readable(target: Path, output: Path) -> None:
    """Read every target with :func:`~c2e_core.files.images.read_image` before the model loads,
    so that a bad file in a batch stops the run before anything is written: what passes is
    exactly what the colorizer reads (at the cost of decoding each target twice)."""
    from c2e_core.files.images import read_image

    has_alpha = read_image(target).alpha is not None
    if has_alpha and output.suffix.lower() in (".jpg", ".jpeg"):
        raise UserError(f"{target} has transparency, which JPEG cannot store; write PNG or TIFF")


def _output_depth(path: Path, bit_depth: int) -> int:
    suffix = path.suffix.lower()
    if suffix in (".jpg", ".jpeg", ".webp"):
        return 8
    if suffix == ".png":
        return 8 if bit_depth == 8 else 16
    return bit_depth


def cmd_colorize(args: argparse.Namespace) -> int:
    from c2e_core.files.images import pixel_limit

    with pixel_limit(args.max_pixels):
        return _colorize(args)


def _colorize(args: argparse.Namespace) -> int:
    request = ColorizeRequest.from_cli_args(args)
    for path in [*args.targets, *args.reference]:
        _check_input(path)
    if args.output_dir is not None and args.output_dir.exists() and not args.output_dir.is_dir():
        raise UserError(f"--output-dir {args.output_dir}: exists and is not a folder")
    outputs = _output_paths(args)
    for target, output in zip(args.targets, outputs, strict=True):
        _check_readable(target, output)
    if request.method != "c2e":
        return _colorize_with_baseline(args, outputs)
    host = get_plugin_host()
    from c2e_core.inference.pipeline import Colorizer
    from c2e_core.weights.store import default_weights_spec

    colorizer = Colorizer.from_weights(
        request.weights or default_weights_spec(),
        device=request.device,
        size=request.size,
        compat=request.compat,
        precision=request.precision,
        host=host,
    )
    embedding = colorizer.embed(args.reference, request.reference_weights, pre=request.pre)
    _make_output_dir(args)
    bar = ProgressBar(len(args.targets)) if len(args.targets) > 1 else None
    for index, (target, output) in enumerate(zip(args.targets, outputs, strict=True)):
        result = colorizer.colorize(
            target,
            embedding=embedding,
            pre=request.pre,
            post=request.post,
            strength=request.strength,
            clean=request.clean,
            keep_palette=request.keep_palette,
        )
        result.save(output, bit_depth=_output_depth(output, result.bit_depth))
        _report(bar, index, target, output)
    if bar is not None:
        bar.close(f"wrote {len(outputs)} images to {args.output_dir}")
    return 0


def _colorize_with_baseline(args: argparse.Namespace, outputs: list[Path]) -> int:
    """``--method lookup|reinhard|gray``: classical colour transfer, no weights needed."""
    from c2e_core.files.images import read_image
    from c2e_core.inference.baselines import colorize_with_baseline
    from c2e_core.inference.pipeline import Colorized

    if len(args.reference) != 1:
        raise UserError(f"--method {args.method} takes exactly one --reference")
    reference = read_image(args.reference[0])
    _make_output_dir(args)
    bar = ProgressBar(len(args.targets)) if len(args.targets) > 1 else None
    for index, (target, output) in enumerate(zip(args.targets, outputs, strict=True)):
        image = read_image(target)
        rgb = colorize_with_baseline(args.method, image, reference)
        result = Colorized(rgb, image.alpha, image.bit_depth, icc_profile=image.icc_profile)
        result.save(output, bit_depth=_output_depth(output, result.bit_depth))
        _report(bar, index, target, output)
    if bar is not None:
        bar.close(f"wrote {len(outputs)} images to {args.output_dir}")
    return 0


def _make_output_dir(args: argparse.Namespace) -> None:
    if args.output_dir is not None:
        try:
            args.output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create {args.output_dir}: {exc.strerror or exc}") from None


def _report(bar: ProgressBar | None, index: int, target: Path, output: Path) -> None:
    if bar is not None:
        bar.update(index + 1, target.name)
    else:
        print(f"wrote {output}", file=sys.stderr)


class ProgressBar:
    """A dependency-free progress bar on stderr (one line per step when not a terminal)."""

    def __init__(self, total: int, width: int = 30):
        self.total, self.width, self.start = total, width, time.monotonic()
        self.tty = sys.stderr.isatty()

    def update(self, done: int, label: str = "") -> None:
        filled = int(self.width * done / self.total)
        elapsed = time.monotonic() - self.start
        eta = elapsed / done * (self.total - done) if done else 0.0
        line = (
            f"[{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total} "
            f"{elapsed:.1f}s eta {eta:.1f}s {label}"
        )
        print(
            ("\r" + line[:100].ljust(100)) if self.tty else line,
            end="" if self.tty else "\n",
            file=sys.stderr,
            flush=True,
        )

    def close(self, message: str) -> None:
        print(("\n" if self.tty else "") + message, file=sys.stderr)


def cmd_info(args: argparse.Namespace) -> int:
    host = get_plugin_host()
    import numpy
    import PIL

    from c2e_core import __version__
    from c2e_core.inference.device import available_devices, select_device
    from c2e_core.runtime.networks import available_providers, runtime_version
    from c2e_core.weights.store import WeightsError, WeightsStore, torch_installed, weights_home

    versions = [f"c2e {__version__}", f"python {sys.version.split()[0]}"]
    if torch_installed():
        import torch

        versions.append(f"torch {torch.__version__}")
        try:  # only training needs it (the [train] extra)
            import torchvision

            versions.append(f"torchvision {torchvision.__version__}")
        except ImportError:
            pass
    version = runtime_version()
    if version is not None:
        versions.append(f"onnxruntime {version}")
    versions += [f"numpy {numpy.__version__}", f"pillow {PIL.__version__}"]
    print("  ".join(versions))
    if version is None:
        print("runtime weights (.c2e.onnx): onnxruntime is not installed")
    else:
        print(f"devices for runtime weights (.c2e.onnx): {', '.join(available_providers())} "
              "(cuda, directml, coreml and openvino where their onnxruntime package is "
              "installed)")  # fmt: skip
    if torch_installed():
        print(f"devices for torch weights: {', '.join(available_devices())} "
              f"(auto -> {select_device('auto')})")  # fmt: skip
    else:
        print("torch weights (.c2e.pt): torch is not installed (pip install 'c2e-studio[torch]')")
    print(f"weights home: {weights_home()}")
    try:
        entries = WeightsStore(host=host).list()
    except WeightsError as exc:
        print(f"c2e: warning: {exc}", file=sys.stderr)
        entries = []
    print("weights:" + ("" if entries else " none installed (see `c2e weights import`)"))
    for entry in entries:
        print(f"  {entry.name}  {entry.architecture or '?'}  {entry.source}")
    print("architectures: " + ", ".join(sorted(host.architectures())))
    processors = host.processors()
    for stage in ("pre", "post"):
        names = sorted(n for n, p in processors.items() if p.stage == stage)
        print(f"{stage}-processing steps: {', '.join(names) or 'none'}")
    print("plugins: " + ", ".join(host.plugin_names()))
    for name, error in host.failed.items():
        print(f"  failed to load {name}: {error}")
    return 0


def cmd_weights_list(args: argparse.Namespace) -> int:
    host = get_plugin_host()
    from c2e_core.weights.store import WeightsStore

    entries = WeightsStore(host=host).list()
    if not entries:
        print("no weights installed; import some with `c2e weights import PATH --name NAME`")
    for e in entries:
        size = f"{e.size_bytes / 1e6:.1f} MB" if e.size_bytes else "?"
        origin = f" from {e.imported_from}" if e.imported_from else ""
        twin = " (+ runtime weights)" if e.runtime_path is not None else ""
        print(f"{e.name}\t{e.architecture or '?'}\t{size}\t{e.source}{origin}\t"
              f"{e.sha256[:12]}{twin}")  # fmt: skip
        if e.description:
            print(f"    {e.description}")
    return 0


def cmd_weights_import(args: argparse.Namespace) -> int:
    host = get_plugin_host()
    from c2e_core.weights.store import WeightsStore, check_name, torch_required

    # an explicit name, even an empty one, is checked as given, before anything is read
    name = check_name(args.name if args.name is not None else args.path.name.split(".")[0])
    _check_input(args.path)
    from c2e_core.runtime.weights import is_runtime_weights

    if is_runtime_weights(args.path):  # graphs, no tensors to store
        raise UserError(
            f"{args.path}: runtime weights (.c2e.onnx) are used by path (--weights FILE); the "
            "store keeps c2e weights (importing them, where torch is, also writes their "
            "runtime weights)"
        )
    with torch_required(args.path):
        from c2e_core.weights.loader import read_weights_any

        weights, model = read_weights_any(args.path, host=host)
    store = WeightsStore(host=host)
    entry = store.add(name, weights, imported_from=str(args.path.resolve()), overwrite=args.force)
    print(
        f"imported {entry.name} ({entry.architecture}, {entry.size_bytes / 1e6:.1f} MB, "
        f"sha256 {entry.sha256[:12]}) into {entry.path.parent}"
    )
    print(_add_runtime_twin(store, entry, weights, model))
    return 0


def _add_runtime_twin(store, entry, weights, model) -> str:
    """Export imported weights to runtime weights beside them, so that their name also works
    without torch (the light runtime, the plugins' default install); what happened, in a line.
    A model that cannot be exported (or no onnx package to export with) keeps its import: the
    name then needs torch."""
    from c2e_core.weights.onnx_export import export_onnx, provenance
    from c2e_core.weights.store import exception_line

    source = provenance(weights.metadata, entry.name, entry.sha256)
    differences: list[float] = []

    def write(path: Path) -> str:
        sha256, difference = export_onnx(model, weights.architecture, weights.config, path,
                                         source)  # fmt: skip
        differences.append(difference)
        return sha256

    try:
        twin = store.add_runtime_twin(entry.name, write)
    except Exception as exc:  # noqa: BLE001 (an exporter's failure is reported, not fatal)
        return f"no runtime weights written ({exception_line(exc)}): {entry.name} needs torch"
    return (f"wrote its runtime weights {twin.runtime_path.name} (onnxruntime matches torch "
            f"within {differences[0]:.1g}): {entry.name} also works without torch")  # fmt: skip


def cmd_weights_verify(args: argparse.Namespace) -> int:
    host = get_plugin_host()
    from c2e_core.weights.store import WeightsStore

    results = WeightsStore(host=host).verify(args.name)
    if not results:
        print("no weights installed")
    for entry, ok, reason in results:
        print(f"{entry.name}\t{'ok' if ok else 'FAILED'}\t{reason}")
    if not all(ok for _, ok, _ in results):
        raise UserError(
            "some weights failed verification; re-import them with `c2e weights import`"
        )
    return 0


def cmd_weights_remove(args: argparse.Namespace) -> int:
    host = get_plugin_host()
    from c2e_core.weights.store import WeightsStore

    entry = WeightsStore(host=host).remove(args.name)
    print(f"removed {entry.name}")
    return 0


# -- entry point ------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        _shown_warnings.clear()
        return _main(argv)


#: The warning lines printed in this run: each is said once (an image read by the pre-check and
#: again to colorize it warns twice, and libraries reset Python's own once-only registry).
_shown_warnings: set[str] = set()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """Warnings as one line on stderr, ``c2e: warning: ...``, each once."""
    text = f"c2e: warning: {str(message).splitlines()[0] if str(message) else category.__name__}"
    if text not in _shown_warnings:
        _shown_warnings.add(text)
        print(text, file=sys.stderr)


def _main(argv: list[str]) -> int:
    from c2e_core.files.images import quiet_decoders

    quiet_decoders()
    try:
        host = get_plugin_host()
        parser = build_parser(host)
        args = parser.parse_args(argv)
        if args.version:
            from c2e_core import __version__

            print(f"c2e {__version__}")
            status = 0
        elif not getattr(args, "handler", None):
            parser.print_help(sys.stderr)
            return USAGE_ERROR
        else:
            status = int(args.handler(args) or 0)
        sys.stdout.flush()  # a reader that went away shows here, not at exit
        return status
    except (Cancelled, KeyboardInterrupt):
        print("c2e: cancelled", file=sys.stderr)
        return CANCELLED
    except BrokenPipeError:
        # the reader of stdout stopped early (`c2e info | head`): nothing to say, and nothing
        # more to write when Python flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE
    except (C2EError, *FILE_ERRORS) as exc:
        _fail(exc)
    except MemoryError:
        _fail(OUT_OF_MEMORY)
    except RuntimeError as exc:
        if not _is_out_of_memory(exc):
            raise
        _fail(OUT_OF_MEMORY)
    return USAGE_ERROR


#: Exit status when stdout's reader went away, as a shell reports a process killed by SIGPIPE.
BROKEN_PIPE = 128 + 13

OUT_OF_MEMORY = DeviceError(
    "out of memory; try a smaller --size, fewer or smaller images, or --device cpu"
)


def _is_out_of_memory(exc: RuntimeError) -> bool:
    """Whether a ``RuntimeError`` is torch running out of memory (CPU allocator or CUDA)."""
    torch = sys.modules.get("torch")
    oom_type = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    return "can't allocate memory" in str(exc) or "out of memory" in str(exc).lower()


def _fail(exc: BaseException) -> None:
    """Print the first line of ``exc`` on stderr, as ``c2e: error: ...``."""
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    prefix = "" if message.startswith("c2e") else "c2e: error: "
    print(prefix + message, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
