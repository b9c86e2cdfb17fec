"""ColorizeRequest: one home for the colorize options, checked against the protocol and client."""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import fields
from pathlib import Path

import pytest

from c2e_core import options
from c2e_core.cli import build_parser
from c2e_core.errors import DeviceError, OptionError
from c2e_core.options import ColorizeRequest
from tests.conftest import load_client

PROTOCOL = Path(__file__).resolve().parents[1] / "docs" / "worker-protocol.md"


def test_defaults_and_normalisation():
    request = ColorizeRequest()
    assert (request.size, request.strength, request.precision, request.device) == (
        256, 1.0, "fp32", "auto"
    )  # fmt: skip
    assert (request.compat, request.weights, request.method) == (None, None, "c2e")
    assert request.pre == request.post == () and request.reference_weights is None
    request = ColorizeRequest(
        size="512",
        strength=0,
        pre=["auto-contrast"],
        post=[["saturation", {"factor": 2}]],
        reference_weights=[1, 3],
    )
    assert request.size == 512 and request.strength == 0.0
    assert request.pre == ("auto-contrast",)
    assert request.post[0][0] == "saturation" and dict(request.post[0][1]) == {"factor": 2}
    assert request.reference_weights == (1.0, 3.0)
    assert ColorizeRequest(size="native").size == "native"
    with pytest.raises(AttributeError):
        request.size = 64  # frozen


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"size": 100}, "size must be a multiple of 16 from 16 to 4096"),
        ({"size": 4112}, "from 16 to 4096"),
        ({"size": 0}, "multiple of 16"),
        ({"size": True}, "multiple of 16"),
        ({"size": "big"}, "'big'"),
        ({"strength": 1.5}, "strength must be a number from 0 to 1"),
        ({"strength": True}, "strength"),
        ({"keep_palette": "no"}, "keep_palette must be true or false, not 'no'"),
        ({"keep_palette": 1}, "keep_palette must be true or false"),
        ({"precision": "fp8"}, "precision must be one of 'fp32'"),
        ({"compat": "paper"}, "compat must be one of null, 'official'"),
        ({"method": "magic"}, "method"),
        ({"weights": 3}, "weights must be a name or a path"),
        ({"device": 0}, "device must be a string"),
        ({"pre": "auto-contrast"}, "pre must be a list of steps"),
        ({"post": [["saturation"]]}, "post steps are names or (name, {options})"),
        ({"reference_weights": [float("nan"), 1]}, "finite"),
        ({"reference_weights": [0, 0]}, "not all 0"),
        ({"reference_weights": [True]}, "reference_weights"),
    ],
)
def test_bad_values_are_option_errors(values, fragment):
    with pytest.raises(OptionError) as info:
        ColorizeRequest(**values)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError) and info.value.kind == "bad-request"


def test_an_unknown_device_name_is_a_device_error():
    with pytest.raises(DeviceError, match="unknown device 'tpu'") as info:
        ColorizeRequest(device="tpu")
    assert info.value.kind == "device"
    for name in ("auto", "CPU", "cuda", "cuda:1", "gpu", "mps", " cpu "):
        assert ColorizeRequest(device=name).device == name  # existence is select_device's


def _cli_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["colorize", "t.png", "-r", "r.png", "-o", "o.png", *argv])


def test_from_cli_args_names_the_flags():
    request = ColorizeRequest.from_cli_args(
        _cli_args("--size", "native", "--strength", "0.5", "--post", "saturation:factor=2")
    )
    assert (request.size, request.strength) == ("native", 0.5)
    assert request.keep_palette is True  # the default, the flag not given
    assert ColorizeRequest.from_cli_args(_cli_args("--no-keep-palette")).keep_palette is False
    assert request.post[0][0] == "saturation" and dict(request.post[0][1]) == {"factor": 2.0}
    with pytest.raises(OptionError, match=r"^--size must be a multiple of 16"):
        ColorizeRequest.from_cli_args(_cli_args("--size", "100"))
    with pytest.raises(OptionError, match=r"^--strength must be"):
        ColorizeRequest.from_cli_args(_cli_args("--strength", "2"))
    once = "must be given once per reference, not 2 for 1"
    with pytest.raises(OptionError, match=rf"^--ref-weight {once} reference$"):
        ColorizeRequest.from_cli_args(_cli_args("--ref-weight", "1", "--ref-weight", "2"))


def test_from_message_uses_the_worker_defaults_and_names_the_options():
    message = {
        "options": {"size": 64, "weights": "", "precision": "int8"},
        "references": [{}, {}],
        "reference_weights": [1, 2],
    }
    request = ColorizeRequest.from_message(message, weights="paper", device="cpu")
    assert (request.size, request.weights, request.device, request.precision) == (
        64, "paper", "cpu", "int8"
    )  # fmt: skip
    assert request.reference_weights == (1.0, 2.0)
    single = ColorizeRequest.from_message({"reference": {}, "reference_weights": [1, 2]})
    assert single.reference_weights is None  # one reference: nothing to blend
    with pytest.raises(OptionError, match=r"^options must be an object"):
        ColorizeRequest.from_message({"options": [1]})
    with pytest.raises(OptionError, match=r"^options\.strength must be"):
        ColorizeRequest.from_message({"options": {"strength": "1"}})
    with pytest.raises(OptionError, match=r"^options\.keep_palette must be true or false"):
        ColorizeRequest.from_message({"options": {"keep_palette": "false"}})
    for value, kept in ((None, True), (False, False), (True, True)):
        options = {"keep_palette": value}
        assert ColorizeRequest.from_message({"options": options}).keep_palette is kept
    once = "must be given once per reference, not 2 for 1 reference$"
    with pytest.raises(OptionError, match=rf"^reference_weights {once}"):
        ColorizeRequest.from_message({"references": [{}], "reference_weights": [1, 2]})


# -- the protocol's options table -----------------------------------------------------------------
def _options_table() -> dict[str, dict[str, str]]:
    lines = PROTOCOL.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"\s*\| option\s+\| values", line))
    header = [cell.strip() for cell in lines[start].strip().strip("|").split("|")]
    rows = {}
    for line in lines[start + 2 :]:
        if not line.strip().startswith("|"):
            break
        values = [cell.strip() for cell in line.strip().strip("|").split("|")]
        cells = dict(zip(header, values, strict=True))
        rows[cells["option"].strip("`")] = cells
    return rows


def _literals(cell: str) -> list:
    return [json.loads(token) for token in re.findall(r"`([^`]*)`", cell)]


def test_the_protocol_table_matches_colorize_request():
    table = _options_table()
    assert list(table) == list(ColorizeRequest.PROTOCOL_OPTIONS)
    defaults = {f.name: f.default for f in fields(ColorizeRequest)}
    defaults["clean"] = ColorizeRequest().clean  # None in the field: 1, or 0 in "official"
    assert ColorizeRequest(compat="official").clean == 0.0
    defaults["keep_palette"] = ColorizeRequest().keep_palette  # None in the field: true
    for name, row in table.items():
        if row["default"].startswith("the worker's"):
            assert row["default"] == f"the worker's `--{name}`"
            parser = build_parser()
            worker = parser.parse_args(["worker"])
            assert getattr(worker, name) == defaults[name]  # the worker's flag has the default
        else:
            literal = _literals(row["default"])[0]
            default = defaults[name]
            assert literal == (list(default) if isinstance(default, tuple) else default), name
    size = f"a multiple of {options.SIZE_MULTIPLE} from {options.MIN_SIZE} to {options.MAX_SIZE}"
    assert table["size"]["values"] == f'{size}, or `"{options.NATIVE}"`'
    strength = f"a number from {options.MIN_STRENGTH:g} to {options.MAX_STRENGTH:g}"
    assert table["strength"]["values"] == strength
    assert table["clean"]["values"] == f"{strength}, or `null` for the default"
    assert table["keep_palette"]["values"] == "`true`, `false`, or `null` for the default"
    assert tuple(_literals(table["precision"]["values"])) == options.PRECISIONS
    assert tuple(_literals(table["compat"]["values"])) == options.COMPAT_MODES
    assert tuple(re.findall(r"`([^`]*)`", table["device"]["values"])) == options.DEVICES


# -- the plugins' client --------------------------------------------------------------------------
def test_the_client_has_the_same_limits():
    client = load_client()
    for name in (
        "DEFAULT_SIZE",
        "SIZE_MULTIPLE",
        "MIN_SIZE",
        "MAX_SIZE",
        "MIN_STRENGTH",
        "MAX_STRENGTH",
        "DEFAULT_STRENGTH",
        "DEFAULT_CLEAN",
        "DEFAULT_KEEP_PALETTE",
        "PRECISIONS",
    ):
        assert getattr(client, name) == getattr(options, name), name
    assert client.NATIVE_SIZE == options.NATIVE
    for size in (16, 256, 4096, "native", 0, 8, 100, 4112, True, "256", None):
        valid = not isinstance(size, str) or size == "native"
        try:
            ColorizeRequest(size=size)
        except OptionError:
            valid = False
        assert client.is_working_size(size) is valid, size
    for strength in (0, 0.5, 1, 1.5, -0.1, True, "1", None):
        try:
            ColorizeRequest(strength=strength)
            valid = True
        except OptionError:
            valid = False
        assert client.is_strength(strength) is valid, strength
