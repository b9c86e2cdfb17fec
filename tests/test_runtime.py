"""Runtime weights (``*.c2e.onnx``): export, reading, execution providers, and the same colours.

The outputs of onnxruntime's networks are compared with torch's on real photos through the
whole pipeline: at least 99.9 % of 8-bit values within one level, for the bundled default
weights and for the paper model (the authors' checkpoint format, exported here).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from c2e_core.errors import DeviceError, WeightsError
from c2e_core.inference.pipeline import Colorizer
from c2e_core.runtime.networks import providers_for
from c2e_core.runtime.weights import is_runtime_weights, read_runtime_weights
from c2e_core.weights.loader import load_model
from tests.conftest import REPO
from tests.official_format import write_official_checkpoint
from tests.test_cli import c2e

EXAMPLES = REPO / "examples"
NO_TORCH = REPO / "tests" / "no_torch.py"


def photo_pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    """Real photos: the bundled example pair, and scikit-image's astronaut from its coffee."""
    chelsea = np.asarray(Image.open(EXAMPLES / "chelsea-gray.jpg").convert("RGB"))
    coffee = np.asarray(Image.open(EXAMPLES / "coffee.jpg").convert("RGB"))
    return [(chelsea, coffee), (skimage.data.astronaut(), skimage.data.coffee())]


def share_within_one_level(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape and a.dtype == b.dtype == np.uint8
    return float((np.abs(a.astype(np.int16) - b.astype(np.int16)) <= 1).mean())


def assert_same_colours(torch_colorizer: Colorizer, runtime_colorizer: Colorizer, **options):
    for target, reference in photo_pairs():
        expected = torch_colorizer.colorize(target, reference, **options).to_array(np.uint8)
        got = runtime_colorizer.colorize(target, reference, **options).to_array(np.uint8)
        assert share_within_one_level(got, expected) >= 0.999
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 3


@pytest.fixture(scope="module")
def paper_runtime(tmp_path_factory) -> tuple[Path, Path]:
    """An authors'-format checkpoint (the parity fixture's deterministic weights) and its
    runtime weights, exported by the real ``c2e export onnx``."""
    folder = tmp_path_factory.mktemp("paper")
    checkpoint = write_official_checkpoint(folder / "paper.pt")
    home = tmp_path_factory.mktemp("home")
    out = folder / "paper.c2e.onnx"
    result = c2e("export", "onnx", "--weights", checkpoint, "-o", out, home=home)
    assert "onnxruntime matches torch within" in result.stdout
    return checkpoint, out


def test_the_bundled_default_is_runtime_weights_with_the_torch_models_colours():
    runtime = Colorizer.from_weights("default", device="cpu")
    assert runtime.info["architecture"] == "color2embed-corr"
    assert type(runtime.networks).__name__ == "OnnxNetworks"
    default = Colorizer.from_weights("default-torch", device="cpu")
    assert type(default.networks).__name__ == "TorchNetworks"
    assert_same_colours(default, runtime)
    assert_same_colours(default, runtime, size=384, strength=0.7)


def test_the_bundled_graphs_let_onnxruntime_fold_every_pad_into_its_convolution(tmp_path):
    """torch writes ``Pad(x, pads, "")``; the empty input stops onnxruntime's Pad -> Conv
    fusion (measured in BENCHMARKS.md: the reference network 88 -> 67 ms with it), so the
    export drops every trailing empty input."""
    import onnx
    import onnxruntime as ort

    weights = read_runtime_weights(REPO / "c2e_core" / "bundled" / "corr-photos153.c2e.onnx")
    for name, graph in weights.graphs.items():
        nodes = onnx.load_from_string(graph).graph.node
        assert not [n.name for n in nodes if n.input and n.input[-1] == ""], name
        assert any(n.op_type == "Pad" for n in nodes), name  # the backbone's "SAME" paddings
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(tmp_path / f"{name}.onnx")
        ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        optimized = onnx.load(options.optimized_model_filepath).graph.node
        assert not [n.name for n in optimized if n.op_type == "Pad"], name


def test_the_bundled_graphs_convolve_with_fixed_weights_and_mask_nothing(tmp_path):
    """Every convolution of both networks has fixed weights once onnxruntime has folded the
    constants (the modulated ones too: the export scales their input and output instead of
    their weights, so onnxruntime lays the weights out once; BENCHMARKS.md, thirteenth
    session), and the target network fills no mask over its attention (``Where``)."""
    import onnx
    import onnxruntime as ort

    weights = read_runtime_weights(REPO / "c2e_core" / "bundled" / "corr-photos153.c2e.onnx")
    for name, graph in weights.graphs.items():
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(tmp_path / f"{name}.onnx")
        ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        optimized = onnx.load(options.optimized_model_filepath).graph
        fixed = {tensor.name for tensor in optimized.initializer}
        convolutions = [n for n in optimized.node if n.op_type in ("Conv", "FusedConv")]
        assert convolutions and all(n.input[1] in fixed for n in convolutions), name
    # the similarities' maxima (orientation scores, confidence) are taken over sums, not over
    # masked copies: no Where feeds a ReduceMax (the colour conversion keeps its own Wheres)
    predict = onnx.load_from_string(weights.graphs["predict_ab"]).graph
    masked = {out for n in predict.node if n.op_type == "Where" for out in n.output}
    for node in predict.node:  # nodes are in topological order; a reshape keeps the mask
        if node.op_type == "Reshape" and node.input[0] in masked:
            masked.update(node.output)
    maxima = [n for n in predict.node if n.op_type == "ReduceMax"]
    assert maxima and not [n.name for n in maxima if masked & set(n.input)]


def test_several_references_blend_as_in_torch():
    default = Colorizer.from_weights("default-torch", device="cpu")
    runtime = Colorizer.from_weights("default", device="cpu")
    target = np.asarray(Image.open(EXAMPLES / "chelsea-gray.jpg").convert("RGB"))
    references = [skimage.data.coffee(), skimage.data.astronaut()]
    expected = default.colorize(target, references, reference_weights=[2, 1]).to_array(np.uint8)
    got = runtime.colorize(target, references, reference_weights=[2, 1]).to_array(np.uint8)
    assert share_within_one_level(got, expected) >= 0.999


@pytest.mark.parametrize(("orientations", "target_stride"), [(1, 8), (8, 8), (8, 4)])
def test_a_correspondence_model_exports_with_one_or_eight_orientations(
    tmp_path, orientations, target_stride
):
    """With one orientation the network never reads the code's token orientations, and the
    exported graph has no such input: the runtime feeds only the inputs a graph has. A model
    matching at stride 4 exports as well."""
    import torch

    from c2e_core.weights.build import COLOR2EMBED_CORR, build_model, init_for_training
    from c2e_core.weights.onnx_export import export_onnx

    config = {"unet_widths": [8, 8, 16, 16, 16], "embed_dim": 16, "encoder_hidden": 16,
              "encoder_mlp_hidden": 16, "reference_orientations": orientations,
              "target_stride": target_stride}  # fmt: skip
    torch.manual_seed(5)
    model = init_for_training(build_model(COLOR2EMBED_CORR, config)).eval()
    out = tmp_path / "corr.c2e.onnx"
    export_onnx(model, COLOR2EMBED_CORR, config, out)
    runtime = Colorizer.from_weights(out, device="cpu")
    assert runtime.networks.weights.code_names[-1] == "orientation"
    assert_same_colours(Colorizer(model, device="cpu"), runtime, size=128)


def test_the_paper_model_exports_and_gives_the_same_colours(paper_runtime):
    checkpoint, runtime_path = paper_runtime
    weights = read_runtime_weights(runtime_path)
    assert weights.architecture == "color2embed" and weights.code_names == ("z",)
    assert weights.metadata["exported_from"]["weights"] == str(checkpoint)
    for compat in (None, "official"):
        torch_colorizer = Colorizer(load_model(checkpoint).model, device="cpu", compat=compat)
        runtime = Colorizer.from_weights(runtime_path, device="cpu", compat=compat)
        assert_same_colours(torch_colorizer, runtime)


def test_cli_colorizes_with_runtime_weights(paper_runtime, tmp_path):
    _, runtime_path = paper_runtime
    out = tmp_path / "out.png"
    c2e("colorize", EXAMPLES / "chelsea-gray.jpg", "--reference", EXAMPLES / "coffee.jpg",
        "--weights", runtime_path, "-o", out, home=tmp_path)  # fmt: skip
    image = np.asarray(Image.open(out))
    assert image.shape[2] == 3 and image.std(axis=2).mean() > 0.5  # coloured, not gray
    refused = c2e("colorize", EXAMPLES / "chelsea-gray.jpg", "--reference",
                  EXAMPLES / "coffee.jpg", "--weights", runtime_path, "--precision", "int8",
                  "-o", tmp_path / "int8.png", home=tmp_path, check=False)  # fmt: skip
    assert refused.returncode == 2 and "fp32 only" in refused.stderr
    assert "Traceback" not in refused.stderr and not (tmp_path / "int8.png").exists()


def test_export_refuses_what_it_cannot_do(paper_runtime, tmp_path):
    checkpoint, runtime_path = paper_runtime
    again = c2e("export", "onnx", "--weights", runtime_path, "-o", tmp_path / "x.c2e.onnx",
                home=tmp_path, check=False)  # fmt: skip
    assert again.returncode == 2 and "runtime weights already" in again.stderr
    exists = c2e("export", "onnx", "--weights", checkpoint, "-o", runtime_path,
                 home=tmp_path, check=False)  # fmt: skip
    assert exists.returncode == 2 and "--overwrite" in exists.stderr
    suffix = c2e("export", "onnx", "--weights", checkpoint, "-o", tmp_path / "paper.onnx",
                 home=tmp_path, check=False)  # fmt: skip
    assert suffix.returncode == 2 and "*.c2e.onnx" in suffix.stderr
    for result in (again, exists, suffix):
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_the_store_refuses_runtime_weights(paper_runtime, tmp_path):
    _, runtime_path = paper_runtime
    result = c2e("weights", "import", runtime_path, "--name", "x", home=tmp_path, check=False)
    assert result.returncode == 2 and "used by path" in result.stderr
    assert not list((tmp_path / "weights").glob("x*"))


def test_imported_weights_work_by_name_without_torch(paper_runtime, tmp_path):
    """``c2e weights import`` (torch present) also exports the weights to runtime weights kept
    beside them: the same name then colorizes where torch cannot be imported, with the torch
    model's colours; ``verify`` checks both files and ``remove`` deletes both."""
    checkpoint, _ = paper_runtime
    home = tmp_path / "home"
    imported = c2e("weights", "import", checkpoint, "--name", "paper", home=home)
    assert "paper also works without torch" in imported.stdout
    store = home / "weights"
    assert sorted(p.name for p in store.glob("paper*")) == ["paper.c2e.onnx", "paper.c2e.pt"]
    listed = c2e("weights", "list", home=home).stdout
    assert any(line.startswith("paper\t") and "(+ runtime weights)" in line
               for line in listed.splitlines())  # fmt: skip
    pair = (EXAMPLES / "chelsea-gray.jpg", "-r", EXAMPLES / "coffee.jpg", "--weights", "paper")
    with_torch, without_torch = tmp_path / "torch.png", tmp_path / "runtime.png"
    c2e("colorize", *pair, "-o", with_torch, home=home)
    env = {**os.environ, "PYTHONPATH": str(REPO), "C2E_HOME": str(home),
           "C2E_DISABLE_PLUGIN_AUTOLOAD": "1"}  # fmt: skip
    light = subprocess.run([sys.executable, str(NO_TORCH), "colorize", *map(str, pair), "-o",
                            str(without_torch)], capture_output=True, text=True, env=env,
                           timeout=300)  # fmt: skip
    assert light.returncode == 0, light.stderr
    expected, got = (np.asarray(Image.open(p)) for p in (with_torch, without_torch))
    assert share_within_one_level(got, expected) >= 0.999 and np.ptp(got, axis=2).max() > 0
    assert "ok (and its runtime weights)" in c2e("weights", "verify", "paper", home=home).stdout
    twin = store / "paper.c2e.onnx"
    data = bytearray(twin.read_bytes())
    data[len(data) // 2] ^= 0xFF
    twin.write_bytes(bytes(data))
    failed = c2e("weights", "verify", "paper", home=home, check=False)
    assert failed.returncode == 2 and "FAILED" in failed.stdout
    assert "paper.c2e.onnx" in failed.stdout
    c2e("weights", "remove", "paper", home=home)
    assert not list(store.glob("paper*"))


def _rewrite(source: Path, out: Path, change) -> Path:
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    change(members)
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out


def test_damaged_runtime_weights_are_one_line_errors(paper_runtime, tmp_path):
    _, good = paper_runtime
    truncated = tmp_path / "cut.c2e.onnx"
    truncated.write_bytes(good.read_bytes()[:100000])
    no_graph = _rewrite(good, tmp_path / "nograph.c2e.onnx", lambda m: m.pop("predict_ab.onnx"))

    def future(members):
        manifest = json.loads(members["runtime.json"])
        members["runtime.json"] = json.dumps({**manifest, "format_version": 99})

    newer = _rewrite(good, tmp_path / "newer.c2e.onnx", future)
    bad_graph = _rewrite(good, tmp_path / "badgraph.c2e.onnx",
                         lambda m: m.update({"embed.onnx": b"not a graph"}))  # fmt: skip
    with pytest.raises(WeightsError, match="sha256"):
        read_runtime_weights(good, expected_sha256="0" * 64)
    with pytest.raises(WeightsError, match="not readable runtime weights"):
        read_runtime_weights(no_graph)
    with pytest.raises(WeightsError, match="format version 99"):
        read_runtime_weights(newer)
    assert not is_runtime_weights(truncated)
    for path, message in ((truncated, "weights"), (bad_graph, "cannot load the networks")):
        result = c2e("colorize", EXAMPLES / "chelsea-gray.jpg", "--reference",
                     EXAMPLES / "coffee.jpg", "--weights", path, "-o", tmp_path / "o.png",
                     home=tmp_path, check=False)  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr
        assert not (tmp_path / "o.png").exists()


def test_devices_map_to_execution_providers():
    assert providers_for("cpu") == ["CPUExecutionProvider"]
    assert providers_for("auto")[-1] == "CPUExecutionProvider"
    import onnxruntime

    if "DmlExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(DeviceError, match="install onnxruntime-directml"):
            providers_for("directml")
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(DeviceError, match="install onnxruntime-gpu"):
            providers_for("cuda:0")
    with pytest.raises(DeviceError, match="unknown device"):
        providers_for("mps")


def test_torch_refuses_runtime_only_devices(tmp_path):
    result = c2e("colorize", EXAMPLES / "chelsea-gray.jpg", "--reference",
                 EXAMPLES / "coffee.jpg", "--device", "openvino", "--weights", "default-torch",
                 "-o", tmp_path / "o.png", home=tmp_path, check=False)  # fmt: skip
    assert result.returncode == 2 and "runtime weights" in result.stderr


def test_info_shows_onnxruntime_and_its_devices(tmp_path):
    import onnxruntime

    out = c2e("info", home=tmp_path).stdout
    assert f"onnxruntime {onnxruntime.__version__}" in out
    assert "devices for runtime weights (.c2e.onnx): cpu" in out
    assert "default-torch" in out


def test_the_runtime_runs_the_networks_without_torch():
    """The runtime package alone (no torch imported) runs the bundled graphs."""
    script = (
        "import sys, numpy as np\n"
        "from importlib import resources\n"
        "from c2e_core.runtime.weights import read_runtime_weights\n"
        "from c2e_core.runtime.networks import OnnxNetworks\n"
        "path = resources.files('c2e_core.bundled') / 'corr-photos153.c2e.onnx'\n"
        "nets = OnnxNetworks(read_runtime_weights(path), 'cpu')\n"
        "code = nets.embed(np.random.default_rng(0).random((1, 3, 128, 96), np.float32))\n"
        "ab = nets.predict_ab(np.zeros((2, 1, 64, 80), np.float32), code)\n"
        "assert ab.shape == (2, 2, 64, 80) and np.isfinite(ab).all()\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('ok', nets.provider)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=env, timeout=120, cwd=str(REPO))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok CPUExecutionProvider"


def test_colorize_info_and_the_worker_run_without_torch(tmp_path):
    """The light runtime: with torch made unimportable, ``c2e colorize`` (default weights), ``c2e
    info`` and the worker's hello and colorize work, and torch weights get a one-line error."""
    out = tmp_path / "out.png"
    env = {**os.environ, "PYTHONPATH": str(REPO), "C2E_HOME": str(tmp_path / "home"),
           "C2E_DISABLE_PLUGIN_AUTOLOAD": "1"}  # fmt: skip

    def run(*args):
        return subprocess.run([sys.executable, str(NO_TORCH), *map(str, args)],
                              capture_output=True, text=True, env=env, timeout=300)  # fmt: skip

    done = run("colorize", EXAMPLES / "chelsea-gray.jpg", "-r", EXAMPLES / "coffee.jpg", "-o", out)
    assert done.returncode == 0, done.stderr
    assert np.asarray(Image.open(out)).std(axis=2).mean() > 0.5
    info = run("info")
    assert info.returncode == 0 and "torch is not installed" in info.stdout
    refused = run("colorize", EXAMPLES / "chelsea-gray.jpg", "-r", EXAMPLES / "coffee.jpg",
                  "--weights", "default-torch", "-o", tmp_path / "t.png")  # fmt: skip
    assert refused.returncode == 2 and "torch is not installed" in refused.stderr
    assert "Traceback" not in refused.stderr
    worker = run("--worker-check", EXAMPLES / "chelsea-gray.jpg", EXAMPLES / "coffee.jpg")
    assert worker.returncode == 0, worker.stderr
    assert worker.stdout.strip() == "worker ok: torch None, default weights default"
