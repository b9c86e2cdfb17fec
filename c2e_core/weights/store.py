"""The compact ``c2e-weights`` file format and the named weights store.

A weights file is a :func:`torch.save` of a plain dict that loads with ``weights_only=True``::

    {"format": "c2e-weights", "format_version": 1, "architecture": "color2embed",
     "config": {...}, "state_dict": {name: Tensor}, "metadata": {...}}

The store keeps imported files under ``<home>/weights/`` (``<home>`` is ``$C2E_HOME`` or the
platform's user data directory) with an ``index.json`` that records each file's sha256, and adds
the weights that plugins register through ``c2e_register_weights``. Nothing happens at import.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import pickle
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from c2e_core.errors import WeightsError
from c2e_core.files.atomic import atomic_file

if TYPE_CHECKING:  # torch is imported where tensors are read or written: listing needs none
    import torch

    from c2e_core.plugins import PluginHost

FORMAT_NAME = "c2e-weights"
FORMAT_VERSION = 1
INDEX_VERSION = 1
HOME_ENV = "C2E_HOME"
WEIGHTS_SUFFIX = ".c2e.pt"
INDEX_NAME = "index.json"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DAMAGED_SUFFIX = ".damaged"
_SHA256 = re.compile(r"^[0-9A-Fa-f]{64}$")
_REFUSED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")
_CHUNK = 1 << 20
_REIMPORT_HINT = "re-import it with `c2e weights import`"


class WeightsIndexWarning(UserWarning):
    """A damaged ``index.json`` (or one of its entries) that is skipped."""


def _safe_file_name(file: Any) -> bool:
    """Whether an index ``file`` is a plain file name inside the store (no folder, no ``..``)."""
    return isinstance(file, str) and file not in ("", ".", "..") and Path(file).name == file


def torch_installed() -> bool:
    """Whether torch can be imported here (without importing it)."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


@contextlib.contextmanager
def torch_required(path: Path) -> Iterator[None]:
    """Turn torch's absence into a one-line :class:`WeightsError` about ``path``."""
    try:
        yield
    except ModuleNotFoundError as exc:
        if exc.name not in ("torch", "torchvision"):
            raise
        raise WeightsError(
            f"{path}: these are torch weights and torch is not installed; use runtime weights "
            "(the bundled `default`, or `c2e export onnx` where torch is) or install "
            "c2e-studio[torch]"
        ) from None


# -- the file format ----------------------------------------------------------------------------
@dataclass
class WeightsFile:
    """The content of a ``c2e-weights`` file, with where it was read from and its hash."""

    architecture: str
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    sha256: str | None = None


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The sha256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def exception_line(exc: BaseException, limit: int = 160) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    first = text[0].strip() if text else ""
    if len(first) > limit:
        first = first[: limit - 1] + "…"
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _plain_json(value: Any, what: str) -> Any:
    """A copy of ``value`` made of JSON types only (tuples become lists); refuses anything else."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"{what} must be JSON-compatible: {exception_line(exc)}") from exc


def save_weights(
    path: str | os.PathLike[str],
    *,
    architecture: str,
    config: Mapping[str, Any],
    state_dict: Mapping[str, torch.Tensor],
    metadata: Mapping[str, Any] | None = None,
) -> str:
    """Write a ``c2e-weights`` file atomically and return the sha256 of the written file."""
    import torch

    path = Path(path)
    if not isinstance(architecture, str) or not architecture:
        raise WeightsError("architecture must be a non-empty string")
    if not isinstance(config, Mapping):
        raise WeightsError(f"config must be a dict, not {type(config).__name__}")
    if not isinstance(state_dict, Mapping):
        raise WeightsError(f"state_dict must be a dict, not {type(state_dict).__name__}")
    tensors: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise WeightsError(f"state_dict keys must be strings, got {key!r}")
        if not isinstance(value, torch.Tensor):
            raise WeightsError(f"state_dict[{key!r}] is a {type(value).__name__}, not a tensor")
        # Own, compact storage: no view of a larger tensor is saved with its whole base.
        tensors[key] = value.detach().to("cpu").contiguous().clone()
    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "architecture": architecture,
        "config": _plain_json(dict(config), "config"),
        "state_dict": tensors,
        "metadata": _plain_json(dict(metadata or {}), "metadata"),
    }
    with atomic_file(path) as handle:
        torch.save(payload, handle)
    return sha256_file(path)


def load_plain(path: Path, *, mmap: bool = False) -> Any:
    """``torch.load`` restricted to plain types, without torch's chatter about pickle protocols."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)


def unsafe_objects(exc: BaseException) -> str | None:
    """What a ``weights_only`` load refused, in one line (None: not a refused object)."""
    if not isinstance(exc, pickle.UnpicklingError) or "global" not in str(exc).lower():
        return None
    found = _REFUSED_GLOBAL.search(str(exc))
    what = f" ({found.group(1)})" if found else ""
    return f"it holds objects other than tensors and plain values{what}, which could run code"


def load_failure(exc: BaseException) -> str:
    """A short reason why ``torch.load(weights_only=True)`` refused a file."""
    refused = unsafe_objects(exc)
    if refused is not None:
        return f"{refused} (a full training checkpoint? convert it with `c2e weights import`)"
    if isinstance(exc, RuntimeError) and "zip" in str(exc).lower():
        return "it is truncated or damaged (its zip archive cannot be read)"
    if isinstance(exc, (EOFError, IndexError, KeyError, ValueError, pickle.PickleError)):
        return "it is not a PyTorch file, or it is truncated or damaged"
    return f"it cannot be loaded ({exception_line(exc, limit=100)})"


def _validate_payload(payload: Any, path: Path) -> WeightsFile:
    import torch

    def bad(reason: str) -> WeightsError:
        return WeightsError(f"{path} is not a c2e weights file: {reason}")

    if not isinstance(payload, dict):
        raise bad(f"it holds a {type(payload).__name__}, not a c2e-weights dict")
    if payload.get("format") != FORMAT_NAME:
        raise bad("no 'format': 'c2e-weights' marker (a checkpoint of another kind?)")
    version = payload.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise bad(f"invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise WeightsError(
            f"{path} uses c2e-weights format version {version}, newer than this c2e supports "
            f"({FORMAT_VERSION}); upgrade c2e"
        )
    architecture = payload.get("architecture")
    config = payload.get("config")
    state_dict = payload.get("state_dict")
    metadata = payload.get("metadata", {})
    if not isinstance(architecture, str) or not architecture:
        raise bad("missing or invalid 'architecture'")
    if not isinstance(config, dict):
        raise bad("missing or invalid 'config'")
    if not isinstance(metadata, dict):
        raise bad("invalid 'metadata'")
    if not isinstance(state_dict, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state_dict.items()
    ):
        raise bad("missing or invalid 'state_dict'")
    return WeightsFile(architecture, config, dict(state_dict), metadata, path)


def read_weights(path: str | os.PathLike[str], expected_sha256: str | None = None) -> WeightsFile:
    """Read a ``c2e-weights`` file, refusing it if its sha256 is not ``expected_sha256``."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    try:
        actual = sha256_file(path)
    except OSError as exc:
        raise WeightsError(f"cannot read weights file {path}: {exception_line(exc)}") from exc
    if expected_sha256 is not None and actual != expected_sha256.strip().lower():
        raise WeightsError(
            f"weights file {path} is corrupted or was modified: sha256 {actual} does not match "
            f"the recorded {expected_sha256}; {_REIMPORT_HINT}"
        )
    try:
        payload = load_plain(path)
    except Exception as exc:  # torch raises many types for foreign or damaged files
        raise WeightsError(f"{path} is not a c2e weights file: {load_failure(exc)}") from exc
    weights = _validate_payload(payload, path)
    weights.sha256 = actual
    return weights


def is_c2e_weights(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` looks like a ``c2e-weights`` file (memory-mapped load, no hashing)."""
    try:
        payload = load_plain(Path(path), mmap=True)
    except Exception:
        return False
    return isinstance(payload, dict) and payload.get("format") == FORMAT_NAME


# -- the named weights store --------------------------------------------------------------------
def weights_home() -> Path:
    """The c2e data folder: ``$C2E_HOME`` if set, else the platform's user data directory."""
    override = os.environ.get(HOME_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("c2e", appauthor=False))


def weights_dir() -> Path:
    """The folder of the named weights store, ``<home>/weights``."""
    return weights_home() / "weights"


@dataclass(frozen=True)
class WeightsEntry:
    """One named weights file: imported into the store (``source="user"``) or from a plugin."""

    name: str
    path: Path
    sha256: str
    source: str
    architecture: str | None = None
    size_bytes: int | None = None
    imported_from: str | None = None
    imported_at: str | None = None
    description: str = ""
    #: The same weights as runtime weights (``*.c2e.onnx``, written by ``c2e weights import``
    #: where torch is), used by name where torch is not installed; None: no twin.
    runtime_path: Path | None = None
    runtime_sha256: str | None = None

    @property
    def is_plugin(self) -> bool:
        return self.source.startswith("plugin:")


@dataclass(frozen=True)
class ResolvedWeights:
    """Where a weights spec points, and the hash to check it against (None: not recorded)."""

    path: Path
    expected_sha256: str | None
    name: str | None
    source: str

    def load(self) -> WeightsFile:
        """Read the file, verifying it when a hash is recorded."""
        return read_weights(self.path, self.expected_sha256)


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid weights name, else raise :class:`WeightsError`."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise WeightsError(
            f"invalid weights name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


WeightsPieces = tuple[
    str, Mapping[str, Any], Mapping[str, "torch.Tensor"], Mapping[str, Any] | None
]


class WeightsStore:
    """Named weights: files imported under ``root`` (default ``<home>/weights``) and plugins'."""

    def __init__(
        self, root: str | os.PathLike[str] | None = None, *, host: PluginHost | None = None
    ):
        self.root = Path(root) if root is not None else weights_dir()
        self._host = host
        self._index_damaged = False  # the last read found index.json unparseable

    @property
    def index_path(self) -> Path:
        return self.root / INDEX_NAME

    @property
    def host(self) -> PluginHost:
        """The plugin host, :func:`c2e_core.plugins.get_plugin_host` unless one was given."""
        if self._host is None:
            from c2e_core.plugins import get_plugin_host

            self._host = get_plugin_host()
        return self._host

    # -- index ----------------------------------------------------------------------------------
    def _warn(self, message: str) -> None:
        # one fixed location: Python shows each distinct message once per process
        text = f"weights index {self.index_path}: {message}"
        warnings.warn(text, WeightsIndexWarning, stacklevel=1)

    def _read_index(self) -> dict[str, Any]:
        """The index's raw records; a damaged file is reported and read as empty."""
        self._index_damaged = False
        try:
            raw = self.index_path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise WeightsError(f"cannot read {self.index_path}: {exception_line(exc)}") from exc
        try:
            data = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            reason = f"not valid JSON ({exception_line(exc)})"
        else:
            if isinstance(data, dict) and isinstance(data.get("weights"), dict):
                version = data.get("version")
                if isinstance(version, int) and version > INDEX_VERSION:
                    raise WeightsError(
                        f"weights index {self.index_path} has version {version}, newer than "
                        f"this c2e supports ({INDEX_VERSION}); upgrade c2e"
                    )
                return data["weights"]
            reason = "an unexpected layout"
        self._index_damaged = True
        self._warn(
            f"{reason}; its entries are ignored (the next import sets it aside as "
            f"{INDEX_NAME}{DAMAGED_SUFFIX})"
        )
        return {}

    def _write_index(self, weights: dict[str, Any]) -> None:
        if self._index_damaged:  # keep what the user may want to repair
            os.replace(self.index_path, self.index_path.with_name(INDEX_NAME + DAMAGED_SUFFIX))
            self._index_damaged = False
        data = {"version": INDEX_VERSION, "weights": dict(sorted(weights.items()))}
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        with atomic_file(self.index_path) as handle:
            handle.write(text.encode("utf-8"))

    def _user_entry(self, name: str, record: Any) -> WeightsEntry:
        """The entry for one index record; :class:`WeightsError` saying what is wrong with it."""
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise WeightsError("it is not a valid weights name")
        if not isinstance(record, dict):
            raise WeightsError(f"its record is a {type(record).__name__}, not an object")
        file = record.get("file")
        sha = record.get("sha256")
        if not _safe_file_name(file):
            raise WeightsError(f"its 'file' is missing or invalid ({file!r})")
        if not isinstance(sha, str) or not _SHA256.match(sha):
            raise WeightsError(f"its 'sha256' is missing or invalid ({sha!r})")
        if not (self.root / file).is_file():
            raise WeightsError(f"its file {self.root / file} is missing")

        def text(key: str) -> str | None:
            value = record.get(key)
            return value if isinstance(value, str) else None

        size = record.get("size_bytes")
        runtime_file, runtime_sha = record.get("runtime_file"), record.get("runtime_sha256")
        twin = (
            _safe_file_name(runtime_file)
            and isinstance(runtime_sha, str)
            and _SHA256.match(runtime_sha)
            and (self.root / runtime_file).is_file()
        )
        return WeightsEntry(
            name=name,
            path=self.root / file,
            sha256=sha.lower(),
            source="user",
            architecture=text("architecture"),
            size_bytes=size if isinstance(size, int) and not isinstance(size, bool) else None,
            imported_from=text("imported_from"),
            imported_at=text("imported_at"),
            description=text("description") or "",
            runtime_path=self.root / runtime_file if twin else None,
            runtime_sha256=runtime_sha.lower() if twin else None,
        )

    def _scan(self) -> tuple[dict[str, WeightsEntry], dict[str, str]]:
        """The usable index entries, and the damaged ones' reasons (each reported once)."""
        entries: dict[str, WeightsEntry] = {}
        damaged: dict[str, str] = {}
        for name, record in self._read_index().items():
            try:
                entries[name] = self._user_entry(name, record)
            except WeightsError as exc:
                damaged[name] = str(exc)
                self._warn(
                    f"skipping damaged entry {name!r}: {exc}; "
                    f"`c2e weights remove {name}` deletes it"
                )
        return entries, damaged

    def _plugin_entries(self) -> dict[str, WeightsEntry]:
        entries = {}
        for name, named in self.host.named_weights().items():
            try:
                size: int | None = named.path.stat().st_size
            except OSError:
                size = None
            entries[name] = WeightsEntry(
                name=name,
                path=named.path,
                sha256=str(named.sha256).strip().lower(),
                source=f"plugin:{named.plugin}",
                size_bytes=size,
                description=named.description or "",
            )
        return entries

    def _known(self) -> tuple[dict[str, WeightsEntry], dict[str, str]]:
        """The usable entries (plugins' and the store's) and the damaged ones' reasons."""
        entries = self._plugin_entries()
        user, damaged = self._scan()
        entries.update(user)  # the user's own entry wins a (rare) clash
        return entries, {name: why for name, why in damaged.items() if name not in entries}

    def _all(self) -> dict[str, WeightsEntry]:
        return self._known()[0]

    @staticmethod
    def _damaged_error(name: str, reason: str) -> WeightsError:
        return WeightsError(
            f"the index entry of weights {name!r} is damaged ({reason}); {_REIMPORT_HINT} "
            f"after `c2e weights remove {name}`"
        )

    def _damaged_entry(self, name: str, record: Any) -> WeightsEntry:
        """A stand-in entry for a damaged record: its file, else the file ``add`` names
        ``<name>.c2e.pt``; the index's own path when there is neither (nothing to delete)."""
        record = record if isinstance(record, dict) else {}
        file, sha = record.get("file"), record.get("sha256")
        if not _safe_file_name(file):
            file = f"{name}{WEIGHTS_SUFFIX}" if NAME_PATTERN.match(name) else None
        path = self.root / file if file else self.index_path
        return WeightsEntry(name, path, sha if isinstance(sha, str) else "", "user")

    def damaged(self) -> dict[str, str]:
        """The index entries that are skipped, each with why."""
        return self._known()[1]

    # -- public API -----------------------------------------------------------------------------
    def list(self) -> list[WeightsEntry]:
        """All usable named weights, the store's and the plugins', sorted by name."""
        return sorted(self._all().values(), key=lambda entry: entry.name.lower())

    def names(self) -> list[str]:
        return [entry.name for entry in self.list()]

    def get(self, name: str) -> WeightsEntry:
        """The entry called ``name``; :class:`WeightsError` listing the names when unknown."""
        entries, damaged = self._known()
        if name in entries:
            return entries[name]
        if name in damaged:
            raise self._damaged_error(name, damaged[name])
        available = ", ".join(sorted(entries, key=str.lower)) or "none"
        raise WeightsError(f"no weights named {name!r}; available: {available}")

    def add(
        self,
        name: str,
        weights: WeightsFile | WeightsPieces,
        *,
        imported_from: str,
        overwrite: bool = False,
        description: str | None = None,
    ) -> WeightsEntry:
        """Save ``weights`` into the store as ``name`` (a WeightsFile or its four pieces)."""
        check_name(name)
        if isinstance(weights, WeightsFile):
            architecture, config = weights.architecture, weights.config
            state_dict, metadata = weights.state_dict, weights.metadata
        else:
            try:
                architecture, config, state_dict, metadata = weights
            except (TypeError, ValueError) as exc:
                raise WeightsError(
                    "weights must be a WeightsFile or (architecture, config, state_dict, metadata)"
                ) from exc
        plugin_entries = self._plugin_entries()
        if name in plugin_entries:
            raise WeightsError(
                f"weights name {name!r} is provided by {plugin_entries[name].source}; "
                "choose another name"
            )
        index = self._read_index()
        clash = next((n for n in index if n.lower() == name.lower()), None)
        if clash is not None and not overwrite:
            raise WeightsError(
                f"weights named {clash!r} already exist; pass --force to replace them or "
                f"`c2e weights remove {clash}` first"
            )
        if clash is not None and clash != name:  # replace "Foo" by "foo": drop the old file
            old = index.pop(clash)
        else:
            old = index.get(name)
        if description is None:
            description = str((metadata or {}).get("description", "") or "")
        file_name = f"{name}{WEIGHTS_SUFFIX}"
        path = self.root / file_name
        sha = save_weights(
            path,
            architecture=architecture,
            config=config,
            state_dict=state_dict,
            metadata=metadata,
        )
        index[name] = {
            "file": file_name,
            "sha256": sha,
            "architecture": architecture,
            "size_bytes": path.stat().st_size,
            "imported_from": str(imported_from),
            "imported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "description": description,
        }
        try:
            self._write_index(index)
        except BaseException:
            if old is None:
                path.unlink(missing_ok=True)
            raise
        if isinstance(old, dict):
            for key in ("file", "runtime_file"):
                old_file = old.get(key)
                if _safe_file_name(old_file) and old_file != file_name:
                    (self.root / str(old_file)).unlink(missing_ok=True)
        return self._user_entry(name, index[name])

    def add_runtime_twin(self, name: str, write: Callable[[Path], str]) -> WeightsEntry:
        """Give the imported weights ``name`` a runtime twin: ``write(path)`` writes the runtime
        weights (``*.c2e.onnx``) and returns their sha256; the index records them, so the
        name works where torch is not installed. The file is written beside the torch one,
        replacing a previous twin; on failure nothing is recorded and no file is left."""
        from c2e_core.runtime.weights import RUNTIME_SUFFIX

        index = self._read_index()
        if name not in index:
            raise WeightsError(f"no imported weights named {name!r}")
        file_name = f"{name}{RUNTIME_SUFFIX}"
        path = self.root / file_name
        try:
            sha = write(path)
            index[name] = {**index[name], "runtime_file": file_name, "runtime_sha256": sha}
            self._write_index(index)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return self._user_entry(name, index[name])

    def verify(self, name: str | None = None) -> list[tuple[WeightsEntry, bool, str]]:
        """Re-hash one entry's file, or all (damaged entries fail): ``(entry, ok, reason)``."""
        if name is not None:
            entry = self.get(name)
            return [(entry, *self._check(entry))]
        index = self._read_index()
        entries, damaged = self._known()
        results = [(entry, *self._check(entry)) for entry in entries.values()]
        for n, why in damaged.items():
            results.append((self._damaged_entry(n, index.get(n)), False, why))
        return sorted(results, key=lambda result: result[0].name.lower())

    @staticmethod
    def _check(entry: WeightsEntry) -> tuple[bool, str]:
        files = [(entry.path, entry.sha256)]
        if entry.runtime_path is not None:
            files.append((entry.runtime_path, str(entry.runtime_sha256)))
        for path, expected in files:
            if not path.is_file():
                return False, f"file missing: {path}"
            try:
                actual = sha256_file(path)
            except OSError as exc:
                return False, f"cannot read {path}: {exception_line(exc)}"
            if actual != expected:
                return False, f"sha256 mismatch: recorded {expected}, {path.name} has {actual}"
        return True, "ok" if len(files) == 1 else "ok (and its runtime weights)"

    def remove(self, name: str) -> WeightsEntry:
        """Delete an imported entry (damaged or not) and its file; plugins' weights stay."""
        index = self._read_index()
        if name not in index:
            entry = self.get(name)  # unknown: the list of names; a plugin's: refused below
            raise WeightsError(
                f"weights {name!r} are provided by {entry.source} and cannot be removed; "
                "uninstall or disable that plugin instead"
            )
        user, _ = self._scan()
        entry = user.get(name) or self._damaged_entry(name, index[name])
        del index[name]
        self._write_index(index)
        kept = {rec.get(key) for rec in index.values() if isinstance(rec, dict)
                for key in ("file", "runtime_file")}  # fmt: skip
        for path in (entry.path, entry.runtime_path):
            if path is not None and path != self.index_path and path.name not in kept:
                path.unlink(missing_ok=True)
        return entry

    def load(self, name: str) -> WeightsFile:
        """Read the weights called ``name``, verified against their recorded sha256."""
        entry = self.get(name)
        if not entry.path.is_file():
            raise WeightsError(
                f"the file of weights {name!r} is missing ({entry.path}); "
                + ("reinstall its plugin" if entry.is_plugin else _REIMPORT_HINT)
            )
        return read_weights(entry.path, expected_sha256=entry.sha256)


def resolve_weights(
    spec: str | os.PathLike[str],
    *,
    store: WeightsStore | None = None,
    host: PluginHost | None = None,
) -> ResolvedWeights:
    """Resolve a weights spec: a ``c2e_resolve_weights`` plugin, then a name, then a file path.

    A :class:`pathlib.Path` spec is taken as a path and never looked up by name.
    """
    if host is None:
        if store is not None:
            host = store.host
        else:
            from c2e_core.plugins import get_plugin_host

            host = get_plugin_host()
    if store is None:
        store = WeightsStore(host=host)
    text = os.fspath(spec)
    claimed = host.resolve_weights(text)
    if claimed is not None:
        if not claimed.is_file():
            raise WeightsError(f"a plugin resolved {text!r} to {claimed}, which does not exist")
        return ResolvedWeights(claimed, None, None, "resolver")
    path = Path(text).expanduser()
    if isinstance(spec, str) and NAME_PATTERN.match(spec):
        try:
            entries, damaged = store._known()
        except WeightsError:
            if not path.is_file():  # an unreadable index only matters for names
                raise
            entries, damaged = {}, {}
        if spec in entries:
            entry = entries[spec]
            if entry.runtime_path is not None and not torch_installed():
                return ResolvedWeights(entry.runtime_path, entry.runtime_sha256, entry.name,
                                       entry.source)  # fmt: skip
            return ResolvedWeights(entry.path, entry.sha256, entry.name, entry.source)
        if spec in damaged and not path.is_file():
            raise store._damaged_error(spec, damaged[spec])
    if path.is_file():
        return ResolvedWeights(path, None, None, "file")
    if path.is_dir():
        raise WeightsError(f"{path} is a folder, not a weights file")
    raise WeightsError(f"no weights named {text!r} and no such file; see `c2e weights list`")


# -- the default weights ------------------------------------------------------------------------
NO_WEIGHTS_HELP = (
    "no weights given and no default weights are installed. Import the authors' released "
    "checkpoint with `c2e weights import PATH --name paper` and pass `--weights paper` "
    "(or pass any checkpoint file with --weights PATH)"
)
#: The weights used when none are named: the small model shipped in ``c2e_core/bundled``.
DEFAULT_WEIGHTS_NAME = "default"
#: Environment variable naming other weights to use by default (e.g. ``paper``).
DEFAULT_WEIGHTS_ENV = "C2E_DEFAULT_WEIGHTS"


def default_weights_spec(store=None) -> str:
    """The name of the default weights: ``$C2E_DEFAULT_WEIGHTS`` if set, else the bundled
    ``default``; a :class:`WeightsError` explaining how to get some when they are missing."""
    store = store or WeightsStore()
    chosen = os.environ.get(DEFAULT_WEIGHTS_ENV, "").strip()
    names = {entry.name for entry in store.list()}
    if chosen:
        if chosen in names:
            return chosen
        raise WeightsError(
            f"{DEFAULT_WEIGHTS_ENV}={chosen} names weights that are not installed; import them "
            f"with `c2e weights import PATH --name {chosen}`, or unset {DEFAULT_WEIGHTS_ENV}"
        )
    if DEFAULT_WEIGHTS_NAME in names:
        return DEFAULT_WEIGHTS_NAME
    raise WeightsError(NO_WEIGHTS_HELP)
