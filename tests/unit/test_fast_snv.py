"""Single-column changes through the fast-ISM propagation (variant scoring) equal full forward passes within 1e-5."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from biodl.explain import variant_effects
from biodl.explain.fast_convs import conv1d_fast, fft_conv1d
from biodl.explain.fast_ism import local_plan, local_snv
from biodl.explain.variant_batches import _snv_alt_fast
from biodl.models import build_model
from toy_models import one_thread, random_onehot  # noqa: F401


def _basset(length: int, rc: bool, outputs: int = 3) -> nn.Module:
    torch.manual_seed(2)
    params = {
        "filters": [40, 36, 32], "filter_widths": [9, 7, 7], "pool_sizes": [3, 2, 2], "hidden_sizes": [16], "rc_average": rc,
    }  # fmt: skip
    net = build_model("basset", (4, length), outputs, params).eval()
    with torch.no_grad():  # non-trivial batch-norm statistics (folded into the convolutions by the plan)
        for m in net.modules():
            if isinstance(m, nn.BatchNorm1d):
                assert m.running_mean is not None and m.running_var is not None
                m.running_mean.normal_(0.0, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(-1.5, 1.5)  # negative scales too
    return net


def _two_conv(length: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv1d(4, 48, 9, padding=4), nn.ReLU(), nn.MaxPool1d(4),
        nn.Conv1d(48, 40, 7, padding="same", dilation=2), nn.ReLU(), nn.MaxPool1d(2),
        nn.Flatten(), nn.Linear(40 * (length // 8), 2),
    ).eval()  # fmt: skip


CASES = {"basset-rc": (_basset(60, True), 60), "basset": (_basset(60, False), 60), "two-conv": (_two_conv(64), 64)}


def _plain(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        y = model(X)
    return y[:, None] if y.ndim == 1 else y


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("fft", [False, True])
def test_snv_equals_full_forward_passes(name: str, fft: bool) -> None:
    model, L = CASES[name]
    X = random_onehot(8, L, seed=1)
    X[2, :, 5] = 0.0  # an N column in the reference
    pos = torch.tensor([0, L - 1, L // 2, 5, 1, L - 2, 3, 30])  # both edges, the N column, the middle
    alt = torch.tensor([0, 1, 2, 3, 3, 2, 1, 0])
    col = torch.eye(4)[alt]
    col[6] = X[6, :, 3]  # the reference letter itself: the reference output
    X_alt = X.clone()
    X_alt[torch.arange(8), :, pos] = col
    plan = local_plan(model)
    assert plan is not None
    with torch.inference_mode():
        ref, got = local_snv(plan, X, pos, col, torch.device("cpu"), fft=fft, chunk=3)
    torch.testing.assert_close(ref, _plain(model, X), atol=1e-5, rtol=0)
    torch.testing.assert_close(got, _plain(model, X_alt), atol=1e-5, rtol=0)
    torch.testing.assert_close(got[6], ref[6], atol=1e-6, rtol=0)
    assert float((got - ref).abs().max()) > 1e-4  # the changes do change the outputs


def test_fft_convolution_equals_conv1d() -> None:
    torch.manual_seed(0)
    for conv in (nn.Conv1d(40, 36, 11), nn.Conv1d(40, 36, 7, dilation=3, bias=False), nn.Conv1d(4, 36, 9)):
        x = torch.randn(3, conv.in_channels, 57)
        with torch.no_grad():
            want = conv(x)
            torch.testing.assert_close(fft_conv1d(conv, x), want, atol=1e-5, rtol=1e-5)
            fast = conv1d_fast(conv, x)
        assert (fast is None) == (conv.in_channels < 32)  # a one-hot first layer runs directly (faster)


def test_models_without_a_deep_local_stack_fall_back() -> None:
    """DeepBind-like (one convolution) and non-local models: no fast SNV path; variant scores still exact."""
    X = random_onehot(4, 40, seed=2)
    torch.manual_seed(1)
    one_conv = nn.Sequential(nn.Conv1d(4, 8, 5), nn.ReLU(), nn.AdaptiveMaxPool1d(1), nn.Flatten(), nn.Linear(8, 1)).eval()
    dense = nn.Sequential(nn.Flatten(), nn.Linear(160, 2)).eval()
    for model in (one_conv, dense):
        assert _snv_alt_fast(model, X, np.zeros(4, np.int64), np.full(4, 20), torch.device("cpu")) is None


def test_variant_scores_of_a_deep_cnn_equal_window_by_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end on a genome: SNVs near contig ends (N-padded windows), indels (full path), both strands, 3 tasks."""
    from biodl.data.sequence.genome import Genome
    from biodl.explain.variant_effects import variant_windows
    from biodl.explain.variant_windows import CODES, one_hot

    rng = np.random.default_rng(4)
    seqs = {"chr1": "".join(rng.choice(list("ACGT"), 700)), "chr2": "".join(rng.choice(list("ACGT"), 500))}
    fa = tmp_path / "g.fa"
    fa.write_text("".join(f">{k}\n{v}\n" for k, v in seqs.items()))
    rows = []
    for i, pos in enumerate([1, 2, 30, 31, 100, 250, 251, 400, 499, 500]):
        chrom = "chr2" if i % 2 else "chr1"
        ref = seqs[chrom][pos - 1]
        alt = "ACGT".replace(ref, "")[i % 3]
        if i == 4:
            ref, alt = seqs[chrom][pos - 1 : pos + 2], ref  # a deletion
        if i == 6:
            alt = ref + "TT"  # an insertion
        rows.append((chrom, pos, f"v{i}", ref, alt))
    table = pd.DataFrame(rows, columns=["chrom", "pos", "id", "ref", "alt"])
    model, L = CASES["basset-rc"]
    import biodl.explain.fast_ism as fast_ism

    calls: list[int] = []

    def spy(plan: object, X: torch.Tensor, *args: object, **kwargs: object) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(len(X))
        return local_snv(plan, X, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(fast_ism, "local_snv", spy)
    res = variant_effects(model, fa, table, activation="none")
    assert calls == [8]  # the 8 SNVs went through the fast path, the 2 indels did not
    assert list(res.table["id"]) == list(table["id"]) and res.summary["scored"] == len(table)
    g = Genome(fa)
    wins = [variant_windows(g, r.chrom, r.pos, r.ref, r.alt, L) for r in table.itertuples()]
    for allele, k in (("ref", 0), ("alt", 1)):
        codes = np.stack([CODES[np.frombuffer(str(w[k]).encode("ascii"), np.uint8)] for w in wins])
        want = _plain(model, one_hot(codes, "zero")).double().numpy()
        for t in range(3):
            np.testing.assert_allclose(res.table[f"{allele}_t{t}"], want[:, t], atol=1e-5, rtol=0)


def test_cached_plan_follows_weight_changes() -> None:
    """Plans (folded convolutions, FFT spectra) are reused per model, and rebuilt when its weights change."""
    model = _basset(60, True)
    X = random_onehot(4, 60, seed=3)
    pos, col = torch.tensor([0, 20, 40, 59]), torch.eye(4)[torch.tensor([1, 2, 3, 0])]
    plan = local_plan(model)
    assert plan is not None and local_plan(model) is plan
    with torch.no_grad():
        model.conv[0][1].weight.mul_(1.5)  # the first convolution, in place
    new_plan = local_plan(model)
    assert new_plan is not None and new_plan is not plan
    with torch.inference_mode():
        ref, _ = local_snv(new_plan, X, pos, col, torch.device("cpu"))
    torch.testing.assert_close(ref, _plain(model, X), atol=1e-5, rtol=0)
