"""Safe generator weights: safetensors files and restricted checkpoints.

A weights file is either safetensors (tensors plus string metadata
``medsr.model`` = registry name and ``medsr.config`` = JSON build overrides),
or a PyTorch ``.pt``/``.pth``/``.ckpt`` loaded with ``weights_only=True``, so a
pickle that would import and call arbitrary code is refused, never run.

The model zoo (its manifest, checksums and loading by name) is :mod:`medsr.zoo`.
"""

from __future__ import annotations

import json
import pickle
import pickletools
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from medsr.errors import ConfigError, InputError, MedsrError
from medsr.models.base import SRModel

SAFETENSORS_SUFFIXES = (".safetensors",)
TORCH_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")
WEIGHT_SUFFIXES = SAFETENSORS_SUFFIXES + TORCH_SUFFIXES
#: Keys under which a training checkpoint may keep the generator's state dict.
STATE_KEYS = ("generator", "state_dict", "model_state", "model", "params", "ema")


# ----------------------------------------------------------------------------- saving
def save_generator(
    model: SRModel, path: str | Path, extra_metadata: dict[str, Any] | None = None
) -> Path:
    """Write ``model``'s weights and how to rebuild it; safetensors unless the suffix is .pt/.pth.

    Metadata values that are not strings are stored as JSON.
    """
    from medsr.io.core import atomic_path

    path = Path(path)
    name = getattr(model, "name", "")
    if not name:
        raise ConfigError("save_generator needs a registry model (with .name and .config)")
    metadata = {"medsr.model": str(name), "medsr.config": json.dumps(dict(model.config))}
    for key, value in (extra_metadata or {}).items():
        metadata[str(key)] = value if isinstance(value, str) else json.dumps(value)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        if path.suffix.lower() in TORCH_SUFFIXES:
            torch.save({"metadata": metadata, "state_dict": state}, tmp)
        else:
            from safetensors.torch import save_file

            save_file(state, str(tmp), metadata=metadata)
    return path


# ----------------------------------------------------------------------------- loading
@dataclass
class WeightsFile:
    """A state dict and the string metadata stored beside it."""

    state: dict[str, torch.Tensor]
    metadata: dict[str, str] = field(default_factory=dict)


def read_weights(path: str | Path) -> WeightsFile:
    """Tensors and metadata of a safetensors file or a weights-only PyTorch checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such weights file")
    if path.suffix.lower() in SAFETENSORS_SUFFIXES:
        return _read_safetensors(path)
    with path.open("rb") as fh:
        head = fh.read(8)
    if path.suffix.lower() not in TORCH_SUFFIXES and len(head) == 8:
        header_len = int.from_bytes(head, "little")
        if 2 <= header_len < 100_000_000:  # a safetensors file with another suffix
            try:
                return _read_safetensors(path)
            except InputError:
                pass
    return _read_torch(path)


def _read_safetensors(path: Path) -> WeightsFile:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            metadata = dict(fh.metadata() or {})
            state = {key: fh.get_tensor(key) for key in fh.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(path, f"not a readable safetensors file ({exc})") from None
    return WeightsFile(state, metadata)


def _not_weights(path: Path) -> str | None:
    """Why ``path`` is plainly not a PyTorch checkpoint, judged from its first bytes (a
    checkpoint is a zip archive or a pickle of protocol 2 or later), or None."""
    try:
        with path.open("rb") as fh:
            head = fh.read(132)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        return None
    if head[128:132] == b"DICM":
        kind = "a DICOM image"
    elif head.startswith(b"\x89PNG"):
        kind = "a PNG image"
    elif head.startswith(b"\x1f\x8b"):
        kind = "gzip data (a .nii.gz image?)"
    else:
        kind = "neither a safetensors file nor a PyTorch checkpoint"
    return (
        f"is {kind}, not a weights file; --model takes a zoo name, an interpolation "
        "baseline or a .safetensors/.pt file"
    )


def _read_torch(path: Path) -> WeightsFile:
    problem = _not_weights(path)
    if problem is not None:
        raise InputError(path, problem)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL:?\s+([\w.]+)", str(exc))
        names = pickle_imports(path) or ([found.group(1)] if found else [])
        culprit = f" (it imports {', '.join(names[:4])})" if names else ""
        raise InputError(
            path,
            "refusing to load: the checkpoint holds Python objects that would run code when "
            f"unpickled{culprit}; only tensors and plain "
            "containers are accepted. Re-save the weights as safetensors from a trusted copy",
        ) from None
    except Exception as exc:  # torch raises many types for damaged archives and pickles
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise InputError(path, f"not a readable PyTorch checkpoint ({first})") from None
    return _unpack_checkpoint(path, obj)


def _check_finite(path: Path, state: dict[str, torch.Tensor]) -> None:
    """Refuse weights holding NaN or infinity: they turn every output into NaN (then zeros)."""
    broken = [
        key
        for key, tensor in state.items()
        if isinstance(tensor, torch.Tensor)
        and tensor.is_floating_point()
        and not bool(torch.isfinite(tensor).all())
    ]
    if broken:
        raise InputError(
            path,
            f"{len(broken)} weight tensor(s) hold NaN or infinite values (e.g. {broken[0]}); "
            "the file is damaged or the training diverged",
        )


_SAFE_MODULES = ("torch", "collections", "_codecs", "numpy")


def pickle_imports(path: Path) -> list[str]:
    """Callables a pickle (or a torch zip checkpoint's data.pkl) would import, found by reading
    its opcodes without executing them; torch, collections and numpy names are left out."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                member = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
                if member is None:
                    return []
                data = archive.read(member)
        else:
            data = path.read_bytes()
        strings: list[str] = []
        found: list[str] = []
        for opcode, arg, _ in pickletools.genops(data):
            if opcode.name == "GLOBAL" and isinstance(arg, str):
                found.append(arg.replace(" ", "."))
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
            elif isinstance(arg, str):
                strings.append(arg)
    except (OSError, ValueError, zipfile.BadZipFile, pickle.UnpicklingError):
        return []
    return sorted({n for n in found if not n.startswith(_SAFE_MODULES)})


def _unpack_checkpoint(path: Path, obj: Any) -> WeightsFile:
    if not isinstance(obj, dict):
        raise InputError(
            path, f"a checkpoint must hold a dict of tensors, found {type(obj).__name__}"
        )
    metadata: dict[str, str] = {}
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        metadata.update(
            {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}
        )
    described = obj.get("model")
    if isinstance(described, dict) and isinstance(described.get("name"), str):
        # a medsr training checkpoint: {"model": {"name", "config"}, "generator": state, ...}
        metadata.setdefault("medsr.model", described["name"])
        metadata.setdefault("medsr.config", json.dumps(described.get("config") or {}))
    for key in ("model_name", "architecture"):
        if isinstance(obj.get(key), str):
            metadata.setdefault("medsr.model", obj[key])
            if isinstance(obj.get("config"), dict):
                metadata.setdefault("medsr.config", json.dumps(obj["config"]))
    if all(isinstance(v, torch.Tensor) for v in obj.values()) and obj:
        return WeightsFile(dict(obj), metadata)
    for key in STATE_KEYS:
        value = obj.get(key)
        if (
            isinstance(value, dict)
            and value
            and all(isinstance(v, torch.Tensor) for v in value.values())
        ):
            return WeightsFile(dict(value), metadata)
    raise InputError(
        path, f"no generator state dict found; expected one of the keys {', '.join(STATE_KEYS)}"
    )


def tag_model(model: nn.Module, **tags: Any) -> None:
    """Attach provenance to a module as ``medsr_<key>`` attributes (zoo name, degradation)."""
    for key, value in tags.items():
        setattr(model, f"medsr_{key}", value)


def build_generator(
    path: Path, weights: WeightsFile, architecture: str | None, config: dict[str, Any] | None
) -> SRModel:
    from medsr import models

    name = architecture or weights.metadata.get("medsr.model")
    if not name:
        raise InputError(
            path,
            "the file does not say which architecture it holds (no 'medsr.model' metadata); "
            "pass architecture=NAME to load_generator",
        )
    if config is None:
        try:
            config = json.loads(weights.metadata.get("medsr.config", "{}"))
        except json.JSONDecodeError:
            raise InputError(path, "its 'medsr.config' metadata is not valid JSON") from None
    if not isinstance(config, dict):
        raise InputError(path, f"its 'medsr.config' metadata is not a JSON object: {config!r:.80}")
    _check_finite(path, weights.state)
    try:
        model = models.build(name, **config)
    except MedsrError as exc:
        raise InputError(path, f"its metadata does not build a model: {exc}") from None
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        raise InputError(
            path, f"its metadata does not build {name} with config {config!r:.120} ({exc})"
        ) from None
    strip = "_orig_mod."  # torch.compile wrappers
    state = {k[len(strip) :] if k.startswith(strip) else k: v for k, v in weights.state.items()}
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        first = str(exc).strip().splitlines()
        detail = first[1].strip() if len(first) > 1 else (first[0] if first else "")
        raise InputError(
            path, f"weights do not fit {name} with config {config}: {detail[:200]}"
        ) from None
    if result.missing_keys or result.unexpected_keys:
        missing = ", ".join(result.missing_keys[:4])
        unexpected = ", ".join(result.unexpected_keys[:4])
        raise InputError(
            path,
            f"weights do not fit {name} with config {config}: "
            f"missing [{missing}] unexpected [{unexpected}]",
        )
    for key in ("degradation", "window"):  # JSON, or a plain name
        value = weights.metadata.get(f"medsr.{key}")
        if value:
            try:
                tag_model(model, **{key: json.loads(value)})
            except json.JSONDecodeError:
                tag_model(model, **{key: value})
    return model.eval()


def load_generator(
    path: str | Path,
    device: str | torch.device = "cpu",
    architecture: str | None = None,
    **config: Any,
) -> SRModel:
    """Rebuild a generator from a weights file and load its weights (zoo names:
    :func:`medsr.zoo.manifest.load_zoo_model`, or :func:`medsr.load_model` for any name).

    ``architecture`` and ``config`` override what the file records, for files
    written by other tools.
    """
    path = Path(path)
    weights = read_weights(path)
    model = build_generator(path, weights, architecture, config or None)
    return model.to(device)


def describe_weights(module: nn.Module) -> str:
    """``zoo:name`` / registry name, for history lines."""
    zoo = getattr(module, "medsr_zoo_name", None)
    return f"zoo:{zoo}" if zoo else str(getattr(module, "name", type(module).__name__))
