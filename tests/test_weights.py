"""Tests for the c2e-weights file format and the named weights store."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import platformdirs
import pytest
import torch

from c2e_core.hookspecs import hookimpl
from c2e_core.plugins import PluginHost, create_plugin_host
from c2e_core.weights.store import (
    ResolvedWeights,
    WeightsError,
    WeightsFile,
    WeightsIndexWarning,
    WeightsStore,
    is_c2e_weights,
    read_weights,
    resolve_weights,
    save_weights,
    sha256_file,
    weights_home,
)

CONFIG = {"width": 8, "levels": [1, 2], "name": "tiny"}
METADATA = {"source_file": "model.pth", "source_sha256": "ab" * 32, "description": "tiny test"}


def tiny_state_dict() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {
        "conv.weight": torch.randn(4, 3, 3, 3),
        "conv.bias": torch.zeros(4),
        "norm.num_batches_tracked": torch.tensor(7, dtype=torch.int64),
    }


def tiny_pieces() -> tuple[str, dict, dict, dict]:
    return ("color2embed", CONFIG, tiny_state_dict(), METADATA)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("C2E_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def host() -> PluginHost:
    return create_plugin_host(load_entry_points=False)


@pytest.fixture
def store(home: Path, host: PluginHost) -> WeightsStore:
    return WeightsStore(host=host)


def user_names(store: WeightsStore) -> list[str]:
    return [entry.name for entry in store.list() if entry.source == "user"]


def flip_byte(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    offset = len(data) // 2 if offset is None else offset
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


# -- file format --------------------------------------------------------------------------------
def test_save_read_roundtrip(tmp_path: Path) -> None:
    state = tiny_state_dict()
    path = tmp_path / "w.c2e.pt"
    sha = save_weights(
        path, architecture="color2embed", config=CONFIG, state_dict=state, metadata=METADATA
    )
    loaded = read_weights(path)
    assert isinstance(loaded, WeightsFile)
    assert loaded.architecture == "color2embed"
    assert loaded.config == CONFIG
    assert loaded.metadata == METADATA
    assert loaded.path == path and loaded.sha256 == sha
    assert set(loaded.state_dict) == set(state)
    for key, tensor in state.items():
        assert torch.equal(loaded.state_dict[key], tensor)
        assert loaded.state_dict[key].dtype == tensor.dtype
    # plain types only: loadable with weights_only
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert raw["format"] == "c2e-weights" and raw["format_version"] == 1


def test_views_are_saved_compact_and_contiguous(tmp_path: Path) -> None:
    base = torch.arange(10_000, dtype=torch.float32).reshape(100, 100)
    view = base[:2, :3]  # a small, non-contiguous view of a large storage
    transposed = torch.randn(3, 5).t()
    path = tmp_path / "w.c2e.pt"
    save_weights(
        path, architecture="a", config={}, state_dict={"v": view, "t": transposed}, metadata=None
    )
    assert path.stat().st_size < 10_000  # the 40 kB base storage was not written
    loaded = read_weights(path)
    assert torch.equal(loaded.state_dict["v"], view)
    assert loaded.state_dict["t"].is_contiguous()
    assert loaded.state_dict["v"].untyped_storage().nbytes() == view.numel() * 4
    assert loaded.metadata == {}


def test_sha256_matches_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "w.c2e.pt"
    arch, config, state, meta = tiny_pieces()
    sha = save_weights(path, architecture=arch, config=config, state_dict=state, metadata=meta)
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    assert sha == expected
    assert sha256_file(path) == expected
    assert read_weights(path, expected_sha256=expected).sha256 == expected


def test_expected_sha256_mismatch_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.c2e.pt"
    arch, config, state, meta = tiny_pieces()
    save_weights(path, architecture=arch, config=config, state_dict=state, metadata=meta)
    with pytest.raises(WeightsError, match="corrupted") as info:
        read_weights(path, expected_sha256="0" * 64)
    assert "c2e weights import" in str(info.value)


def test_save_rejects_bad_pieces(tmp_path: Path) -> None:
    path = tmp_path / "w.c2e.pt"
    with pytest.raises(WeightsError, match="JSON"):
        save_weights(path, architecture="a", config={"x": object()}, state_dict={})
    with pytest.raises(WeightsError, match="tensor"):
        save_weights(path, architecture="a", config={}, state_dict={"x": [1, 2]})
    with pytest.raises(WeightsError, match="architecture"):
        save_weights(path, architecture="", config={}, state_dict={})
    assert not path.exists()
    assert no_temp_files(tmp_path)


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    good = tmp_path / "good.c2e.pt"
    arch, config, state, meta = tiny_pieces()
    save_weights(good, architecture=arch, config=config, state_dict=state, metadata=meta)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    random_file = tmp_path / "random.bin"
    random_file.write_bytes(os.urandom(4096))
    other = tmp_path / "plain_state_dict.pth"
    torch.save({"conv.weight": torch.zeros(2, 2)}, other)
    other_version = tmp_path / "not_a_dict.pt"
    torch.save([torch.zeros(1)], other_version)
    pickled = tmp_path / "pickled_module.pt"
    torch.save({"model": torch.nn.Linear(2, 2)}, pickled)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    return {
        "truncated": truncated,
        "random": random_file,
        "other": other,
        "list": other_version,
        "empty": empty,
        "pickled": pickled,
    }


@pytest.mark.parametrize("kind", ["truncated", "random", "other", "list", "empty", "pickled"])
def test_non_c2e_files_are_refused(tmp_path: Path, kind: str) -> None:
    path = _bad_files(tmp_path)[kind]
    with pytest.raises(WeightsError) as info:
        read_weights(path)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    assert not is_c2e_weights(path)


def test_missing_file_and_is_c2e_weights(tmp_path: Path) -> None:
    missing = tmp_path / "missing.c2e.pt"
    with pytest.raises(WeightsError, match="missing.c2e.pt"):
        read_weights(missing)
    assert not is_c2e_weights(missing)
    good = tmp_path / "good.c2e.pt"
    arch, config, state, meta = tiny_pieces()
    save_weights(good, architecture=arch, config=config, state_dict=state, metadata=meta)
    assert is_c2e_weights(good)


def test_newer_format_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.c2e.pt"
    payload = {
        "format": "c2e-weights",
        "format_version": 99,
        "architecture": "a",
        "config": {},
        "state_dict": {},
        "metadata": {},
    }
    torch.save(payload, path)
    with pytest.raises(WeightsError, match="newer"):
        read_weights(path)


def test_atomic_write_leaves_no_temp_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w.c2e.pt"
    arch, config, state, meta = tiny_pieces()
    sha = save_weights(path, architecture=arch, config=config, state_dict=state, metadata=meta)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.c2e.pt"]

    def broken_save(obj: object, f: object, *args: object, **kwargs: object) -> None:
        f.write(b"partial")  # type: ignore[attr-defined]
        raise RuntimeError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)  # weights/store.py imports torch when it saves
    with pytest.raises(RuntimeError, match="disk full"):
        save_weights(path, architecture=arch, config=config, state_dict=state, metadata=meta)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.c2e.pt"]
    assert sha256_file(path) == sha  # the previous file is untouched


# -- home and store -----------------------------------------------------------------------------
def test_c2e_home_override(home: Path) -> None:
    assert weights_home() == home
    assert WeightsStore().root == home / "weights"


def test_default_home_is_platformdirs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("C2E_HOME", raising=False)
    default = weights_home()
    assert default == Path(platformdirs.user_data_dir("c2e", appauthor=False))
    assert default.name == "c2e"


def test_add_list_get_verify_remove(store: WeightsStore, home: Path) -> None:
    assert user_names(store) == []
    entry = store.add("tiny", tiny_pieces(), imported_from="/src/model.pth")
    assert entry.name == "tiny" and entry.source == "user"
    assert entry.path == home / "weights" / "tiny.c2e.pt"
    assert entry.sha256 == hashlib.sha256(entry.path.read_bytes()).hexdigest()
    assert entry.architecture == "color2embed"
    assert entry.size_bytes == entry.path.stat().st_size
    assert entry.description == "tiny test"
    assert entry.imported_from == "/src/model.pth" and entry.imported_at

    index = json.loads((home / "weights" / "index.json").read_text())
    assert index["version"] == 1
    record = index["weights"]["tiny"]
    assert record["file"] == "tiny.c2e.pt" and record["sha256"] == entry.sha256
    assert set(record) >= {
        "file",
        "sha256",
        "architecture",
        "size_bytes",
        "imported_from",
        "imported_at",
        "description",
    }

    loaded = read_weights(entry.path)
    second = store.add("second.v2", loaded, imported_from="tiny", description="copy")
    assert second.description == "copy"
    assert user_names(store) == ["second.v2", "tiny"]
    assert store.get("tiny") == entry

    with pytest.raises(WeightsError, match="second.v2") as info:
        store.get("nope")
    assert "tiny" in str(info.value)

    results = store.verify()
    assert [(e.name, ok) for e, ok, _ in results if e.source == "user"] == [
        ("second.v2", True),
        ("tiny", True),
    ]
    assert store.verify("tiny")[0][1:] == (True, "ok")

    weights = store.load("tiny")
    assert torch.equal(weights.state_dict["conv.weight"], tiny_state_dict()["conv.weight"])

    removed = store.remove("tiny")
    assert removed.name == "tiny"
    assert not entry.path.exists()
    assert user_names(store) == ["second.v2"]
    with pytest.raises(WeightsError):
        store.remove("tiny")
    assert no_temp_files(home / "weights")


def test_verify_reports_missing_and_modified_files(store: WeightsStore) -> None:
    a = store.add("a", tiny_pieces(), imported_from="x")
    b = store.add("b", tiny_pieces(), imported_from="x")
    a.path.unlink()
    flip_byte(b.path)
    with pytest.warns(WeightsIndexWarning, match="'a'"):  # a vanished file: a damaged entry
        results = {e.name: (ok, reason) for e, ok, reason in store.verify()}
        assert results["a"][0] is False and "missing" in results["a"][1]
        assert results["b"][0] is False and "mismatch" in results["b"][1]
        with pytest.raises(WeightsError, match="missing"):
            store.load("a")


def test_corrupted_file_is_refused_on_load(store: WeightsStore) -> None:
    entry = store.add("tiny", tiny_pieces(), imported_from="x")
    flip_byte(entry.path)
    with pytest.raises(WeightsError, match="corrupted") as info:
        store.load("tiny")
    assert str(entry.path) in str(info.value)


@pytest.mark.parametrize(
    "name", ["", "-leading-dash", ".hidden", "has space", "a/b", "a\\b", "x" * 65, "é"]
)
def test_invalid_names(store: WeightsStore, name: str) -> None:
    with pytest.raises(WeightsError, match="invalid weights name"):
        store.add(name, tiny_pieces(), imported_from="x")
    assert not store.root.exists() or no_temp_files(store.root)


def test_valid_name_edges(store: WeightsStore) -> None:
    store.add("x" * 64, tiny_pieces(), imported_from="x")
    store.add("A1._-z", tiny_pieces(), imported_from="x")
    assert set(user_names(store)) == {"x" * 64, "A1._-z"}


def test_duplicate_names(store: WeightsStore) -> None:
    first = store.add("tiny", tiny_pieces(), imported_from="first")
    with pytest.raises(WeightsError, match="--force") as info:
        store.add("tiny", tiny_pieces(), imported_from="second")
    assert "remove" in str(info.value)
    with pytest.raises(WeightsError, match="already exist"):
        store.add("TINY", tiny_pieces(), imported_from="second")  # clash on case-insensitive FS
    assert store.get("tiny") == first

    arch, config, state, meta = tiny_pieces()
    state["conv.bias"] = torch.ones(4)
    replaced = store.add(
        "tiny", (arch, config, state, meta), imported_from="second", overwrite=True
    )
    assert replaced.imported_from == "second"
    assert torch.equal(store.load("tiny").state_dict["conv.bias"], torch.ones(4))
    assert user_names(store) == ["tiny"]
    assert sorted(p.name for p in store.root.iterdir()) == ["index.json", "tiny.c2e.pt"]


def test_bad_weights_argument(store: WeightsStore) -> None:
    with pytest.raises(WeightsError, match="WeightsFile"):
        store.add("tiny", ("only", "two"), imported_from="x")  # type: ignore[arg-type]


def _damage(store: WeightsStore, name: str, record: object) -> None:
    """Hand-edit ``index.json``: set ``name``'s record to ``record``."""
    index = json.loads(store.index_path.read_text())
    index["weights"][name] = record
    store.index_path.write_text(json.dumps(index))


@pytest.mark.parametrize(
    "damage",
    [
        lambda rec: {k: v for k, v in rec.items() if k != "sha256"},  # a missing key
        lambda rec: {k: v for k, v in rec.items() if k != "file"},
        lambda rec: {**rec, "file": 3},  # wrong types
        lambda rec: {**rec, "sha256": ["ab"]},
        lambda rec: {**rec, "file": "../elsewhere.c2e.pt"},
        lambda rec: ["not", "an", "object"],
        lambda rec: "vanished",  # the file is deleted (below)
    ],
    ids=["no-sha256", "no-file", "file-int", "sha256-list", "file-outside", "list", "vanished"],
)
def test_a_damaged_entry_is_reported_skipped_and_removable(store, host, tmp_path, damage):
    path, sha = _plugin_weights(tmp_path)
    host.register(ShippingPlugin(path, sha), name="shipper")
    good = store.add("good", tiny_pieces(), imported_from="x")
    bad = store.add("bad", tiny_pieces(), imported_from="x")
    record = json.loads(store.index_path.read_text())["weights"]["bad"]
    if damage(record) == "vanished":
        bad.path.unlink()
    else:
        _damage(store, "bad", damage(record))
    with pytest.warns(WeightsIndexWarning) as caught:
        names = store.names()  # one scan of the index
    assert [str(w.message).count("'bad'") for w in caught] == [1]  # one warning, naming it
    assert "bad" not in names and {"default", "good", "shipped"} <= set(names)
    assert "c2e weights remove bad" in str(caught[0].message)
    with pytest.warns(WeightsIndexWarning):
        assert resolve_weights("default", store=store).path.is_file()  # the bundled weights
        assert resolve_weights("good", store=store).load().sha256 == good.sha256
        assert store.load("shipped").sha256 == sha
        with pytest.raises(WeightsError, match="'bad' is damaged"):
            resolve_weights("bad", store=store)
        with pytest.raises(WeightsError, match="'bad' is damaged"):
            store.load("bad")
        verified = {e.name: ok for e, ok, _ in store.verify()}
        assert verified["bad"] is False and verified["good"] and verified["shipped"]
        assert store.remove("bad").name == "bad"
    assert sorted(json.loads(store.index_path.read_text())["weights"]) == ["good"]
    assert not bad.path.exists() and good.path.exists() and path.exists()
    assert "good" in store.names()  # and no warning now: nothing is damaged


def test_a_damaged_entry_with_an_invalid_name_is_skipped(store):
    store.add("good", tiny_pieces(), imported_from="x")
    record = json.loads(store.index_path.read_text())["weights"]["good"]
    _damage(store, "", record)
    with pytest.warns(WeightsIndexWarning, match="not a valid weights name"):
        assert user_names(store) == ["good"]
        store.remove("")
    assert sorted(json.loads(store.index_path.read_text())["weights"]) == ["good"]
    assert store.get("good").path.is_file()  # the other entry's file is kept


def test_wrong_typed_optional_fields_are_ignored(store):
    store.add("tiny", tiny_pieces(), imported_from="x")
    record = json.loads(store.index_path.read_text())["weights"]["tiny"]
    _damage(store, "tiny", {**record, "description": 5, "size_bytes": "big", "architecture": []})
    entry = store.get("tiny")
    assert (entry.description, entry.size_bytes, entry.architecture) == ("", None, None)
    assert store.load("tiny").architecture == "color2embed"


@pytest.mark.parametrize("text", [b"{not json", b"[]", b'{"weights": 3}', b"\xff\xfe{}"])
def test_a_non_json_index_is_reported_and_set_aside(store, host, tmp_path, text):
    path, sha = _plugin_weights(tmp_path)
    host.register(ShippingPlugin(path, sha), name="shipper")
    store.root.mkdir(parents=True)
    store.index_path.write_bytes(text)
    with pytest.warns(WeightsIndexWarning, match="index.json") as caught:
        assert user_names(store) == []
        assert {"default", "shipped"} <= set(store.names())  # plugins' weights still resolve
        assert resolve_weights("shipped", store=store).name == "shipped"
        store.add("new", tiny_pieces(), imported_from="x")
    assert len({str(w.message) for w in caught}) == 1
    assert (store.root / "index.json.damaged").read_bytes() == text  # kept for repair
    assert user_names(store) == ["new"]


def test_the_cli_refuses_an_empty_name_and_removes_damaged_entries(home, tmp_path, capsys):
    from c2e_core.cli import main

    loose = tmp_path / "tiny.c2e.pt"
    arch, config, state, meta = tiny_pieces()
    save_weights(loose, architecture=arch, config=config, state_dict=state, metadata=meta)
    assert main(["weights", "import", str(loose), "--name", ""]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "invalid weights name ''" in err[0]
    assert not (home / "weights").exists()  # nothing written

    store = WeightsStore()
    store.add("tiny", tiny_pieces(), imported_from="x")
    _damage(store, "tiny", {"file": "tiny.c2e.pt"})
    assert main(["weights", "list"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("c2e: warning:") == 1 and "'tiny'" in captured.err
    assert len(captured.err.splitlines()) == 1
    assert main(["weights", "remove", "tiny"]) == 0
    assert "removed tiny" in capsys.readouterr().out
    assert json.loads(store.index_path.read_text())["weights"] == {}
    assert not (store.root / "tiny.c2e.pt").exists()


# -- plugins ------------------------------------------------------------------------------------
def _plugin_weights(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "plugin_pkg" / "shipped.c2e.pt"
    arch, config, state, meta = tiny_pieces()
    sha = save_weights(path, architecture=arch, config=config, state_dict=state, metadata=meta)
    return path, sha


class ShippingPlugin:
    def __init__(self, path: Path, sha256: str):
        self.path = path
        self.sha256 = sha256

    @hookimpl
    def c2e_register_weights(self, register):
        register("shipped", self.path, self.sha256, "weights shipped by a plugin")


def test_plugin_weights_are_listed_and_verified(
    store: WeightsStore, host: PluginHost, tmp_path: Path
) -> None:
    path, sha = _plugin_weights(tmp_path)
    host.register(ShippingPlugin(path, sha), name="shipper")
    store.add("mine", tiny_pieces(), imported_from="x")

    by_name = {entry.name: entry for entry in store.list()}
    assert by_name["mine"].source == "user"
    shipped = by_name["shipped"]
    assert shipped.source == "plugin:shipper" and shipped.is_plugin
    assert shipped.path == path and shipped.sha256 == sha
    assert shipped.description == "weights shipped by a plugin"
    assert not (store.root / "shipped.c2e.pt").exists()
    assert "shipped" not in json.loads(store.index_path.read_text())["weights"]

    assert store.get("shipped") == shipped
    assert store.load("shipped").sha256 == sha
    assert store.verify("shipped")[0][1] is True

    with pytest.raises(WeightsError, match="plugin:shipper"):
        store.remove("shipped")
    assert path.exists()
    with pytest.raises(WeightsError, match="provided by"):
        store.add("shipped", tiny_pieces(), imported_from="x")

    flip_byte(path)
    with pytest.raises(WeightsError, match="corrupted"):
        store.load("shipped")
    assert store.verify("shipped")[0][1] is False


def test_store_gets_the_process_host_lazily(
    home: Path, monkeypatch: pytest.MonkeyPatch, host: PluginHost
) -> None:
    import c2e_core.plugins as plugins

    calls: list[int] = []

    def fake_get_plugin_host() -> PluginHost:
        calls.append(1)
        return host

    monkeypatch.setattr(plugins, "get_plugin_host", fake_get_plugin_host)
    store = WeightsStore()
    assert calls == []  # nothing at construction
    store.list()
    assert calls == [1]


# -- resolving specs ----------------------------------------------------------------------------
class Resolver:
    def __init__(self, answers: dict[str, Path]):
        self.answers = answers

    @hookimpl
    def c2e_resolve_weights(self, spec):
        return self.answers.get(spec)


def test_resolve_name_path_and_unknown(
    store: WeightsStore, host: PluginHost, tmp_path: Path
) -> None:
    entry = store.add("tiny", tiny_pieces(), imported_from="x")
    resolved = resolve_weights("tiny", store=store, host=host)
    assert resolved == ResolvedWeights(entry.path, entry.sha256, "tiny", "user")
    assert resolved.load().architecture == "color2embed"

    loose = tmp_path / "loose.c2e.pt"
    arch, config, state, meta = tiny_pieces()
    save_weights(loose, architecture=arch, config=config, state_dict=state, metadata=meta)
    for spec in (str(loose), loose):
        by_path = resolve_weights(spec, store=store, host=host)
        assert by_path.path == loose and by_path.expected_sha256 is None
        assert by_path.name is None and by_path.source == "file"

    with pytest.raises(WeightsError, match="no weights named 'nope' and no such file") as info:
        resolve_weights("nope", store=store, host=host)
    assert "c2e weights list" in str(info.value)

    flip_byte(entry.path)
    with pytest.raises(WeightsError, match="corrupted"):
        resolve_weights("tiny", store=store, host=host).load()


def test_resolve_plugin_weights_by_name(
    store: WeightsStore, host: PluginHost, tmp_path: Path
) -> None:
    path, sha = _plugin_weights(tmp_path)
    host.register(ShippingPlugin(path, sha), name="shipper")
    resolved = resolve_weights("shipped", store=store)  # host taken from the store
    assert resolved == ResolvedWeights(path, sha, "shipped", "plugin:shipper")


def test_resolver_plugin_wins_over_store(
    store: WeightsStore, host: PluginHost, tmp_path: Path
) -> None:
    store.add("tiny", tiny_pieces(), imported_from="x")
    elsewhere = tmp_path / "elsewhere.c2e.pt"
    arch, config, state, meta = tiny_pieces()
    save_weights(elsewhere, architecture=arch, config=config, state_dict=state, metadata=meta)
    host.register(Resolver({"tiny": elsewhere, "ghost": tmp_path / "ghost.pt"}), name="resolver")

    resolved = resolve_weights("tiny", store=store, host=host)
    assert resolved.path == elsewhere
    assert resolved.expected_sha256 is None and resolved.name is None
    flip_byte(elsewhere, offset=elsewhere.stat().st_size - 1)  # no recorded hash: not checked
    try:
        resolved.load()
    except WeightsError as exc:
        assert "corrupted" not in str(exc)

    with pytest.raises(WeightsError, match="does not exist"):
        resolve_weights("ghost", store=store, host=host)
