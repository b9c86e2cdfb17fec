"""Third-party plugins: through the plugin manager and through an installed entry point."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from c2e_core.inference.pipeline import Colorizer
from c2e_core.plugins import PluginError, create_plugin_host
from c2e_core.weights.loader import load_model
from c2e_core.weights.store import save_weights

DEMO = Path(__file__).parent / "plugin_demo" / "c2e_demo_plugin.py"


def write_demo_weights(path: Path) -> Path:
    sys.path.insert(0, str(DEMO.parent))
    try:
        import c2e_demo_plugin
    finally:
        sys.path.remove(str(DEMO.parent))
    model = c2e_demo_plugin.MeanColourNet()
    with torch.no_grad():
        model.to_ab.weight.copy_(torch.tensor([[2.0, -1.0, -1.0], [1.0, 1.0, -2.0]]))
        model.to_ab.bias.zero_()
    save_weights(
        path,
        architecture="mean-colour",
        config={"embed_dim": 8},
        state_dict=model.state_dict(),
        metadata={"description": "demo"},
    )
    return path


def make_installed_package(site: Path, *, broken: bool = False) -> Path:
    """A package 'installed' in ``site``: module + dist-info with a ``c2e`` entry point."""
    site.mkdir(parents=True, exist_ok=True)
    shutil.copy(DEMO, site / "c2e_demo_plugin.py")
    dist = site / "c2e_demo_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: c2e-demo-plugin\nVersion: 0.1\n")
    lines = ["[c2e]", "demo = c2e_demo_plugin"]
    if broken:
        (site / "c2e_broken_plugin.py").write_text("raise ImportError('needs libfoo')\n")
        lines.append("broken = c2e_broken_plugin")
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return site


@pytest.fixture
def demo_module():
    sys.path.insert(0, str(DEMO.parent))
    import c2e_demo_plugin

    yield c2e_demo_plugin
    sys.path.remove(str(DEMO.parent))


def red_reference() -> np.ndarray:
    ref = np.zeros((32, 32, 3), np.uint8)
    ref[..., 0] = 230
    return ref


def test_builtins_are_registered_through_the_hooks():
    host = create_plugin_host(load_entry_points=False)
    assert "color2embed" in host.architectures()
    assert host.architectures()["color2embed"].plugin == "c2e_core.builtin"
    assert {"saturation", "auto-contrast"} <= set(host.processors())


def test_plugin_through_the_manager(tmp_path, demo_module):
    host = create_plugin_host(load_entry_points=False)
    host.register(demo_module, name="demo")
    assert "mean-colour" in host.architectures()
    weights = write_demo_weights(tmp_path / "demo.c2e.pt")
    loaded = load_model(weights, host=host)
    assert loaded.architecture == "mean-colour"
    colorizer = Colorizer(loaded.model, device="cpu", size=32, host=host)
    gray = np.full((24, 40), 128, np.uint8)
    plain = colorizer.colorize(gray, reference=red_reference())
    inverted = colorizer.colorize(gray, reference=red_reference(), post=["invert-ab"])
    lab_plain = torch.from_numpy(plain.rgb).permute(2, 0, 1)
    from c2e_core.modeling.colour import rgb_to_lab

    a_plain = rgb_to_lab(lab_plain)[1].mean().item()
    a_inverted = rgb_to_lab(torch.from_numpy(inverted.rgb).permute(2, 0, 1))[1].mean().item()
    assert a_plain > 5 and a_inverted < -5  # the post step really ran


def test_clashing_names_are_refused(demo_module):
    host = create_plugin_host(load_entry_points=False)
    host.register(demo_module, name="demo")

    from c2e_core import hookimpl

    class Clash:
        @hookimpl
        def c2e_register_processors(self, register):
            register("invert-ab", "post", lambda lab, target_lab: lab)

    host.register(Clash(), name="clash")
    with pytest.raises(PluginError, match="already registered by 'demo'"):
        host.processors()


def test_misspelled_hook_is_caught_at_registration():
    from pluggy import PluginValidationError

    from c2e_core import hookimpl

    class Typo:
        @hookimpl
        def c2e_register_processor(self, register):  # missing "s"
            pass

    host = create_plugin_host(load_entry_points=False)
    with pytest.raises(PluginValidationError):
        host.register(Typo(), name="typo")


def run_c2e(args, site: Path, home: Path, check=True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site), "C2E_HOME": str(home)}
    env.pop("C2E_DISABLE_PLUGIN_AUTOLOAD", None)
    result = subprocess.run(
        [sys.executable, "-m", "c2e_core", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.mark.integration
def test_entry_point_plugin_in_the_cli(tmp_path):
    site = make_installed_package(tmp_path / "site", broken=True)
    weights = write_demo_weights(tmp_path / "demo.c2e.pt")
    home = tmp_path / "home"
    info = run_c2e(["info"], site, home)
    assert "mean-colour" in info.stdout and "invert-ab" in info.stdout
    assert "demo" in info.stdout
    assert "broken" in info.stderr and "needs libfoo" in info.stderr  # warned, not crashed
    assert run_c2e(["demo-hello", "world"], site, home).stdout.strip() == (
        "hello from the demo plugin, world"
    )
    from PIL import Image

    Image.fromarray(np.full((24, 40), 128, np.uint8)).save(tmp_path / "gray.png")
    Image.fromarray(red_reference()).save(tmp_path / "red.png")
    out = tmp_path / "out.png"
    run_c2e(
        [
            "colorize",
            str(tmp_path / "gray.png"),
            "-r",
            str(tmp_path / "red.png"),
            "-o",
            str(out),
            "--weights",
            str(weights),
            "--post",
            "invert-ab",
            "--size",
            "32",
        ],
        site,
        home,
    )
    rgb = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert rgb[..., 1].mean() > rgb[..., 0].mean() + 5  # red reference, inverted a: greenish
    # int8 exists for Color2Embed only: a QuantizationError, one line and status 2 (it used to
    # escape as a traceback)
    args = ["colorize", str(tmp_path / "gray.png"), "-r", str(tmp_path / "red.png"), "-o",
            str(tmp_path / "int8.png"), "--weights", str(weights), "--precision", "int8"]
    result = run_c2e(args, site, home, check=False)
    errors = [line for line in result.stderr.splitlines() if line.startswith("c2e: error: ")]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(errors) == 1 and "only available for the Color2Embed" in errors[0], result.stderr
    assert not (tmp_path / "int8.png").exists()


@pytest.mark.integration
def test_entry_point_plugin_in_the_worker(tmp_path):
    from tests.conftest import load_client

    client_module = load_client()
    site = make_installed_package(tmp_path / "site", broken=True)
    weights = write_demo_weights(tmp_path / "demo.c2e.pt")
    env = {**os.environ, "PYTHONPATH": str(site), "C2E_HOME": str(tmp_path / "home")}
    env.pop("C2E_DISABLE_PLUGIN_AUTOLOAD", None)
    gray = np.full((24, 40, 3), 128, np.uint8)
    target = client_module.Pixels(40, 24, "RGB", "u8", gray.tobytes())
    reference = client_module.Pixels(32, 32, "RGB", "u8", red_reference().tobytes())
    with client_module.WorkerClient(sys.executable, env=env) as worker:
        hello = worker.hello_info
        assert "demo" in hello["plugins"]
        assert any("broken" in w for w in hello["warnings"])
        assert "invert-ab" in {p["name"] for p in hello["processors"]}
        options = {"weights": str(weights), "size": 32, "device": "cpu"}
        plain = worker.colorize(target, reference, options=options)
        inverted = worker.colorize(target, reference, options={**options, "post": ["invert-ab"]})
        with pytest.raises(client_module.WorkerError) as info:
            worker.colorize(target, reference, options={**options, "precision": "int8"})
        assert info.value.kind == "device" and "Color2Embed" in str(info.value)
    plain_rgb = np.frombuffer(plain.data, np.uint8).reshape(24, 40, 3).astype(int)
    inverted_rgb = np.frombuffer(inverted.data, np.uint8).reshape(24, 40, 3).astype(int)
    assert plain_rgb[..., 0].mean() > plain_rgb[..., 1].mean() + 5  # the plugin's architecture
    assert inverted_rgb[..., 1].mean() > inverted_rgb[..., 0].mean() + 5  # its post step


def test_pre_steps_see_targets_and_references():
    from c2e_core import hookimpl

    roles: list[str] = []

    class Spy:
        @hookimpl
        def c2e_register_processors(self, register):
            register("spy", "pre", lambda rgb, role: roles.append(role) or rgb)

    host = create_plugin_host(load_entry_points=False)
    host.register(Spy(), name="spy")
    from tests.conftest import tiny_model

    colorizer = Colorizer(tiny_model(), device="cpu", size=32, host=host)
    image = np.zeros((16, 16, 3), np.uint8)
    colorizer.colorize(image, reference=red_reference(), pre=["spy"])
    assert sorted(set(roles)) == ["reference", "target"]


BROKEN_HOOKS = {
    "misspelled": "from c2e_core import hookimpl\n\n"
    "@hookimpl\ndef c2e_register_procesors(register):\n    pass\n",
    "raising": "from c2e_core import hookimpl\n\n"
    "@hookimpl\ndef c2e_register_processors(register):\n    raise RuntimeError('boom')\n",
}


@pytest.mark.integration
@pytest.mark.parametrize("kind", sorted(BROKEN_HOOKS))
def test_a_broken_plugin_is_reported_not_fatal(tmp_path, kind):
    site = tmp_path / "site"
    site.mkdir()
    (site / "c2e_bad_plugin.py").write_text(BROKEN_HOOKS[kind])
    dist = site / "c2e_bad_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: c2e-bad-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[c2e]\nbad = c2e_bad_plugin\n")
    result = run_c2e(["info"], site, tmp_path / "home")
    assert "saturation" in result.stdout  # the built-ins still work
    assert "bad" in result.stderr and "Traceback" not in result.stderr


def test_hooks_run_through_pluggy_in_its_order_with_wrappers():
    from c2e_core import hookimpl

    calls: list[str] = []

    def step(rgb, role):
        return rgb

    class Late:
        @hookimpl(trylast=True)
        def c2e_register_processors(self, register):
            calls.append("late")
            register("late", "pre", step)

    class Early:
        @hookimpl(tryfirst=True)
        def c2e_register_processors(self, register):
            calls.append("early")
            register("early", "pre", step)

    class Wrapper:
        @hookimpl(wrapper=True)
        def c2e_register_processors(self, register):
            calls.append("wrapper before")
            result = yield
            calls.append("wrapper after")
            register("wrapped-after", "pre", step)
            return result

    class OldWrapper:
        @hookimpl(hookwrapper=True)
        def c2e_register_processors(self, register):
            calls.append("old wrapper before")
            yield
            calls.append("old wrapper after")

    host = create_plugin_host(load_entry_points=False)
    for name, plugin in {
        "late": Late(),
        "early": Early(),
        "w": Wrapper(),
        "o": OldWrapper(),
    }.items():
        host.register(plugin, name=name)
    processors = host.processors()
    assert calls == [
        "old wrapper before", "wrapper before", "early", "late", "wrapper after",
        "old wrapper after",
    ]  # fmt: skip
    names = list(processors)
    assert names[0] == "early" and names[-2:] == ["late", "wrapped-after"]
    assert names.index("saturation") < names.index("late")  # built-ins before plain plugins
    assert processors["wrapped-after"].plugin == "w" and processors["early"].plugin == "early"


def test_collection_runs_once_until_the_plugin_set_changes():
    from c2e_core import hookimpl
    from tests.conftest import tiny_model

    calls = {"processors": 0, "architectures": 0}

    class Counter:
        @hookimpl
        def c2e_register_processors(self, register):
            calls["processors"] += 1

        @hookimpl
        def c2e_register_architectures(self, register):
            calls["architectures"] += 1

    host = create_plugin_host(load_entry_points=False)
    host.register(Counter(), name="counter")
    colorizer = Colorizer(tiny_model(), device="cpu", size=32, host=host)
    image = np.zeros((16, 16, 3), np.uint8)
    for _ in range(3):
        colorizer.colorize(image, reference=red_reference(), pre=["auto-contrast"],
                           post=[("saturation", {"factor": 1.5})])  # fmt: skip
        host.architectures()
    assert calls == {"processors": 1, "architectures": 1}

    class Extra:
        @hookimpl
        def c2e_register_processors(self, register):
            register("extra", "post", lambda lab, target_lab: lab)

    host.register(Extra(), name="extra")
    assert "extra" in host.processors() and calls["processors"] == 2
    host.unregister(name="extra")
    assert "extra" not in host.processors() and calls["processors"] == 3


def test_a_raising_hook_is_isolated_and_reported_once():
    from c2e_core import hookimpl

    class Raising:
        @hookimpl
        def c2e_register_processors(self, register):
            register("half-done", "post", lambda lab, target_lab: lab)
            raise RuntimeError("boom")

    host = create_plugin_host(load_entry_points=False)
    host.register(Raising(), name="raising")
    with pytest.warns(RuntimeWarning, match="'raising' failed in c2e_register_processors: .*boom"):
        processors = host.processors()
    assert "saturation" in processors and "half-done" not in processors
    assert host.failed == {"raising": "RuntimeError: boom"}
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert host.processors() == processors  # cached: not called (nor warned) again


def test_colorize_resolves_each_stage_once():
    from tests.conftest import tiny_model

    host = create_plugin_host(load_entry_points=False)
    lookups: list[int] = []
    processors = host.processors
    host.processors = lambda: lookups.append(1) or processors()
    colorizer = Colorizer(tiny_model(), device="cpu", size=32, host=host)
    image = np.zeros((16, 16, 3), np.uint8)
    post = [("saturation", {"factor": 1.2})]
    colorizer.colorize(image, reference=red_reference(), pre=["auto-contrast"], post=post)
    assert len(lookups) == 2  # pre and post; embed() reuses the resolved pre steps
