"""Model bundles that are safe by construction: safetensors weights plus JSON metadata.

Layout of ``DIR/model/``::

    bundle.json                 architecture, task, labels, column mapping, preprocessing
                                settings, metrics, package version, SHA-256 of every array file
    weights.safetensors         the network's state dict
    preprocessing.safetensors   fitted normalisation / target-scaling arrays

Loading never unpickles anything: a directory holding a pickle, a weights file whose checksum
does not match, or a bundle written by an incompatible format version is refused with a clear
message.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file as load_numpy
from safetensors.numpy import save as save_numpy_bytes
from safetensors.torch import load_file as load_torch
from safetensors.torch import save as save_torch_bytes

from biodl._version import __version__
from biodl.config import DataConfig
from biodl.data import DATA_TYPES, Modality
from biodl.data.normalise import TargetScaler
from biodl.errors import BundleError
from biodl.io_utils import atomic_write_bytes, atomic_write_text
from biodl.model_sources import resolve_model_path
from biodl.models import MODELS, BiodlModel, build_model

FORMAT = "biodl-bundle"
FORMAT_VERSION = 1
META = "bundle.json"
WEIGHTS = "weights.safetensors"
PREPROCESSING = "preprocessing.safetensors"
#: ``--precision`` of ``biodl predict`` / ``evaluate`` (as ``train.precision``; mixed = autocast).
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".joblib", ".npy", ".bin")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Bundle:
    """A trained model with everything needed to predict on new files.

    Attributes
    ----------
    model
        The network (eval mode, CPU).
    modality
        The data type with its fitted preprocessing.
    meta
        The parsed ``bundle.json``.
    target_scaler
        Regression target scaling, or ``None``.
    path
        The ``model/`` directory it was loaded from (or saved to).
    """

    model: BiodlModel
    modality: Modality
    meta: dict[str, Any]
    target_scaler: TargetScaler | None
    path: Path | None = None
    autocast: str | None = None

    def to_device(self, device: str = "cpu", precision: str = "32-true") -> str:
        """Move the network to ``device`` (``cpu``, ``cuda``, ``cuda:N``, ``mps`` or ``auto``: CUDA when
        available) and predict there, under autocast for ``bf16-mixed`` / ``16-mixed``; returns the device used.

        Raises
        ------
        BundleError
            For a device this machine does not have, or an unknown precision.
        """
        import torch

        name = device.strip().lower()
        if name == "auto":
            name = "cuda" if torch.cuda.is_available() else "cpu"
        if name.startswith("cuda") and not torch.cuda.is_available():
            raise BundleError(f"--device {device}: no CUDA device is available on this machine (use --device cpu)")
        if name == "mps" and not torch.backends.mps.is_available():
            raise BundleError(f"--device {device}: no Apple MPS device is available on this machine (use --device cpu)")
        if precision not in PRECISIONS:
            raise BundleError(f"--precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
        self.model.to(torch.device(name))
        self.autocast = None if precision == "32-true" else precision
        return name

    @property
    def kind(self) -> str:
        """``binary``, ``multiclass`` or ``regression``."""
        return str(self.meta["kind"])

    @property
    def target_names(self) -> list[str]:
        """Names of the targets."""
        return list(self.meta["target_names"])

    @property
    def classes(self) -> list[str] | None:
        """Class labels for single-column classification."""
        c = self.meta.get("classes")
        return list(c) if c is not None else None

    @property
    def data_config(self) -> DataConfig:
        """The data section the model was trained with."""
        return DataConfig.model_validate(self.meta["data"])

    def predict_arrays(self, X_model: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """Outputs for preprocessed inputs: probabilities or (unscaled) values ``(N, K)``."""
        import contextlib

        import torch

        from biodl.models.outputs import predict_outputs

        device = next(self.model.parameters()).device
        ctx: Any = contextlib.nullcontext()
        if self.autocast is not None:
            dtype = torch.bfloat16 if self.autocast == "bf16-mixed" else torch.float16
            ctx = torch.autocast(device_type=device.type, dtype=dtype)
        with ctx, torch.inference_mode():
            out = predict_outputs(self.model, X_model, self.kind, batch_size=batch_size)
        if self.target_scaler is not None:
            out = self.target_scaler.inverse(out)
        return out

    def save(self, directory: Path) -> Path:
        """Write the bundle atomically file by file; returns the directory."""
        directory.mkdir(parents=True, exist_ok=True)
        weights = save_torch_bytes({k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()})
        mod_meta, arrays = self.modality.state()
        prep = {f"data.{k}": np.ascontiguousarray(v) for k, v in arrays.items()}
        if self.target_scaler is not None:
            prep["target.mean"], prep["target.std"] = self.target_scaler.mean, self.target_scaler.std
        prep_bytes = save_numpy_bytes(prep) if prep else save_numpy_bytes({"_empty": np.zeros(0, np.float32)})
        meta = dict(self.meta)
        meta.update(
            format=FORMAT,
            format_version=FORMAT_VERSION,
            biodl_version=__version__,
            preprocessing={"data": mod_meta, "target_scaling": self.target_scaler is not None},
            sha256={WEIGHTS: _sha256(weights), PREPROCESSING: _sha256(prep_bytes)},
        )
        atomic_write_bytes(directory / WEIGHTS, weights)
        atomic_write_bytes(directory / PREPROCESSING, prep_bytes)
        atomic_write_text(directory / META, json.dumps(meta, indent=1, allow_nan=False))
        self.meta, self.path = meta, directory
        return directory


def resolve_bundle_dir(path: str | Path) -> Path:
    """Accept a run directory (containing ``model/``), the ``model/`` directory itself, or a model name
    (``zoo:NAME[@VERSION]``, ``hf://OWNER/REPO[@REVISION]``, ``http(s)://BASE/NAME``; see :mod:`biodl.model_sources`)."""
    p = resolve_model_path(path)
    if not p.exists():
        raise BundleError(f"model path not found: {p}")
    if (p / "model" / META).is_file():
        return p / "model"
    if (p / META).is_file():
        return p
    raise BundleError(f"{p}: not a biodl model bundle (no {META}; expected a run directory or its model/ folder)")


def _check_no_pickles(directory: Path) -> None:
    for f in directory.rglob("*"):
        if not f.is_file():
            continue
        if f.suffix.lower() in _PICKLE_SUFFIXES:
            raise BundleError(f"{f}: refusing to load a bundle that contains a pickle-capable file ({f.suffix})")
        with open(f, "rb") as fh:
            head = fh.read(9)
        if f.suffix.lower() == ".safetensors" and head[8:9] == b"{":
            continue  # an 8-byte little-endian header length, then JSON; a length of 640 starts with 80 02
        if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
            raise BundleError(f"{f}: refusing to load a bundle that contains a pickle")


def _read_verified(directory: Path, name: str, meta: dict[str, Any]) -> bytes:
    f = directory / name
    if not f.is_file():
        raise BundleError(f"{directory}: missing {name}")
    data = f.read_bytes()
    expected = meta.get("sha256", {}).get(name)
    if expected is None or _sha256(data) != expected:
        raise BundleError(f"{f}: checksum mismatch (the file is corrupted or was modified)")
    return data


def load(path: str | Path) -> Bundle:
    """Load a bundle without running any stored code.

    Parameters
    ----------
    path
        A run directory or its ``model/`` folder, or a model name: ``zoo:NAME[@VERSION]``,
        ``hf://OWNER/REPO[@REVISION]`` or ``http(s)://BASE/NAME`` (fetched into the cache and verified first).
    """
    directory = resolve_bundle_dir(path)
    _check_no_pickles(directory)
    try:
        meta = json.loads((directory / META).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{directory / META}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BundleError(f"{directory / META}: not a {FORMAT} file")
    if meta.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"{directory}: bundle format version {meta.get('format_version')} (biodl {meta.get('biodl_version')}) "
            f"is incompatible with this biodl {__version__} (format version {FORMAT_VERSION})"
        )
    weights_bytes = _read_verified(directory, WEIGHTS, meta)
    _read_verified(directory, PREPROCESSING, meta)
    try:
        state = load_torch(directory / WEIGHTS)
        prep = load_numpy(directory / PREPROCESSING)
    except (SafetensorError, OSError) as exc:
        raise BundleError(f"{directory}: cannot read safetensors file: {exc}") from None
    del weights_bytes
    spec = meta["model"]
    # pretrained weights only initialise training; the bundle's own weights replace them
    params = {k: v for k, v in spec["params"].items() if k != "pretrained_weights"}
    if spec["name"] in MODELS:  # keys added since the bundle was saved keep the value it was trained with
        params = {**MODELS[spec["name"]].Params.saved_before, **params}
    model = build_model(spec["name"], tuple(spec["in_shape"]), int(spec["num_outputs"]), params)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "mismatch"
        raise BundleError(f"{directory / WEIGHTS}: weights do not match the architecture {spec['name']!r}: {first}") from None
    model.eval()
    data_cfg = DataConfig.model_validate(meta["data"])
    modality = DATA_TYPES[data_cfg.type](data_cfg)
    arrays = {k.removeprefix("data."): v for k, v in prep.items() if k.startswith("data.")}
    modality.load_state(meta.get("preprocessing", {}).get("data", {}), arrays)
    modality.configure_model(model)
    scaler = TargetScaler(prep["target.mean"], prep["target.std"]) if "target.mean" in prep else None
    return Bundle(model, modality, meta, scaler, directory)
