"""ONNX export parity for every registered model family, on plausible inputs of its data type."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from biodl.config import DataConfig
from biodl.engine import TorchEngine
from biodl.errors import BiodlError
from biodl.export.graph import ExportError, InferenceNet, onnx_runner, to_onnx, to_torchscript, torchscript_runner
from biodl.export.parity import Sample, check_parity
from biodl.models import MODELS, build_model

ROWS = 6
SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "CCN(CC)CC", "O=C(O)c1ccccc1", "C1CCNCC1"]
#: Data types in the order a multi-type family is tried.
PREFERENCE = ("tabular", "sequence", "image", "molecule")
#: Parameters a family needs beyond its defaults, and narrower layers for speed (same operators as the defaults).
#: VGG keeps its 7 x 7 adaptive pooling, which ONNX cannot express for 32 x 32 images: the clear-error path.
EXTRA_PARAMS: dict[str, dict[str, object]] = {
    "ensemble": {"member": "mlp", "size": 2, "member_params": {"hidden_sizes": [16]}},
    "vgg": {"encoder": "vgg11", "classifier_width": 32},
    "danq": {"filters": 32, "lstm_hidden": 16, "dense_size": 32},
    "basset": {"filters": [32, 32, 32], "hidden_sizes": [64, 64]},
    "deepsea": {"filters": [32, 48, 64], "dense_size": 64},
    "unet": {"depth": 2, "base_channels": 8},
    "cnn": {"channels": [8, 16], "dense_units": 16},
    "dmpnn": {"hidden_size": 32, "ffn_hidden_sizes": [32]},
    "unet3d": {"depth": 2, "base_channels": 4},
    "chemception": {"filters": 8},
    # the named inputs of a multi-input network: CpG neighbours (2 cells, k = 3), a 21 bp DNA window, 2 BED overlaps
    "deepcpg": {
        "inputs": {
            "cpg": {"type": "cpg-neighbours", "shape": [2, 6, 3]},
            "dna": {"type": "dna-window", "shape": [4, 21]},
            "annotation": {"type": "bed-overlaps", "shape": [2]},
        },
        "dna_filters": 8,
    },
}


def _inputs(data_type: str, featurizer: tuple[str, ...] = ("graph",)) -> np.ndarray:
    """Model inputs of a data type: features, one-hot DNA, images, or molecules as the model's featuriser makes them
    (packed graphs, molecule images)."""
    rng = np.random.default_rng(0)
    if data_type == "tabular":
        return rng.standard_normal((ROWS, 32)).astype(np.float32)
    if data_type == "sequence":
        return np.eye(4, dtype=np.float32)[rng.integers(0, 4, (ROWS, 101))].transpose(0, 2, 1).copy()
    if data_type == "image":
        return rng.random((ROWS, 3, 32, 32), dtype=np.float32)
    if data_type == "volume":  # (N, C, D, H, W) single-channel 16³ stacks
        return rng.random((ROWS, 1, 16, 16, 16), dtype=np.float32)
    if data_type == "bags":  # table bags of 1-6 instances, padded, with the mask feature
        from biodl.data.bags import pack_bags

        return pack_bags([rng.standard_normal((k, 16)).astype(np.float32) for k in (1, 3, 5, 2, 4, 6)])
    if data_type == "cpg":  # flat rows of the deepcpg inputs above (2 x 6 x 3 + 4 x 21 + 2 values)
        return rng.random((ROWS, 2 * 6 * 3 + 4 * 21 + 2), dtype=np.float32)
    if data_type == "molecule":
        from biodl.data import DATA_TYPES

        modality = DATA_TYPES["molecule"](DataConfig(type="molecule", molecule={"featurizer": list(featurizer)}))  # type: ignore[arg-type]
        raw = modality.parse_inputs(SMILES)
        modality.fit(raw)
        return np.asarray(modality.transform(raw), dtype=np.float32)
    raise ValueError(data_type)


def _family(name: str) -> tuple[nn.Module, np.ndarray]:
    cls = MODELS[name]
    reasons = []
    for data_type in sorted(cls.data_types, key=lambda t: PREFERENCE.index(t) if t in PREFERENCE else 99):
        try:
            X = _inputs(data_type, tuple(getattr(cls, "default_featurizer", None) or ("graph",)))
        except (BiodlError, ValueError, ImportError) as exc:
            reasons.append(f"{data_type}: {str(exc).splitlines()[0]}")
            continue
        params = {k: v for k, v in EXTRA_PARAMS.get(name, {}).items() if k in cls.Params.model_fields}
        # three outputs (tasks/classes), or one per input element for reconstruction models (auto-encoders)
        for outputs in (3, int(np.prod(X.shape[1:]))):
            try:
                model = build_model(name, tuple(X.shape[1:]), outputs, params).eval()
                with torch.no_grad():
                    model(torch.from_numpy(X[:2]))
                return model, X
            except (BiodlError, ValueError, RuntimeError) as exc:
                reasons.append(f"{data_type}, {outputs} outputs: {str(exc).splitlines()[0]}")
    pytest.skip(f"model {name!r}: no plausible input could be built ({'; '.join(reasons)})")


@pytest.mark.parametrize("name", MODELS.names())
def test_family_exports_with_parity(name: str) -> None:
    model, X = _family(name)
    net = InferenceNet(model, "binary").eval()
    sample = Sample(X, None, f"plausible {name} inputs", real=False)
    reference = TorchEngine(net).predict
    try:
        data = to_onnx(net, model_name=name)
    except ExportError as exc:
        message = str(exc)
        # the clear error: names the model and what ONNX cannot express, and suggests TorchScript
        assert f"model {name!r}" in message and "--format torchscript" in message
        assert "operator" in message or "support" in message
        report = check_parity(reference, torchscript_runner(to_torchscript(net, model_name=name)), sample)
        assert report.passed, report.summary()
        pytest.skip(f"{message} (TorchScript parity holds: max |Δ| {report.max_abs_diff:.1e})")
    report = check_parity(reference, onnx_runner(data), sample)
    assert report.passed, report.summary()
    assert report.batch_sizes == [1, ROWS]


class _Histogram(nn.Module):
    """A model using an operator ONNX has no equivalent for."""

    in_shape = (8,)

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.histc(row, bins=4, min=-3.0, max=3.0) for row in self.linear(x)])


def test_unsupported_operator_is_named_and_torchscript_suggested() -> None:
    net = InferenceNet(_Histogram(), "regression").eval()
    with pytest.raises(ExportError) as info:
        to_onnx(net, model_name="histogram")
    message = str(info.value)
    assert "'aten::histc'" in message and "histogram" in message and "--format torchscript" in message
    assert "Torch IR graph" not in message


def test_unsupported_operator_does_not_dump_the_graph(capfd: pytest.CaptureFixture[str]) -> None:
    net = InferenceNet(_Histogram(), "regression").eval()
    with pytest.raises(ExportError):
        to_onnx(net, model_name="histogram")
    assert "Torch IR graph" not in capfd.readouterr().err


def test_regression_head_unscales_inside_the_graph() -> None:
    model = build_model("mlp", (5,), 2, {"hidden_sizes": [8], "batch_norm": False}).eval()
    mean, std = np.array([10.0, -2.0], np.float32), np.array([3.0, 0.5], np.float32)
    net = InferenceNet(model, "regression", mean, std).eval()
    X = np.random.default_rng(1).standard_normal((7, 5)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(X)).numpy() * std + mean
    out = onnx_runner(to_onnx(net))(X)
    assert np.abs(out - expected).max() < 1e-4
    assert net.head_description() and "target" in net.head_description()[-1]


@pytest.mark.parametrize(("name", "data_type"), [("mlp", "tabular"), ("deepbind", "sequence"), ("cnn", "image")])
def test_saliency_for_each_input_rank(name: str, data_type: str) -> None:
    from biodl.serve.explain import gradient_x_input, saliency_png

    if name not in MODELS:
        pytest.skip(f"model {name!r} is not registered")
    X = _inputs(data_type)[:1]
    params = {k: v for k, v in EXTRA_PARAMS.get(name, {}).items() if k in MODELS[name].Params.model_fields}
    model = build_model(name, tuple(X.shape[1:]), 2, params).eval()
    sal = gradient_x_input(model, X[0], target=1)
    assert sal.values.shape == X.shape[1:] and np.isfinite(sal.values).all() and sal.target == 1
    names = [f"g{i}" for i in range(X.shape[1])] if X.ndim == 2 else None
    png = saliency_png(sal, title="test", feature_names=names, row_labels=list("ACGT") if X.ndim == 3 else None)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 2000
    assert all(p.grad is None for p in model.parameters())  # autograd.grad leaves the weights alone
