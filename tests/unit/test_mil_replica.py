"""The MIL benchmark replica (benchmarks/mil_nested.py) computes what biodl's ``mil`` model computes.

The replica's default candidates are chosen on its scores, so each of its poolings must give the
same member logits as biodl's :class:`~biodl.models.mil.MIL` with the same weights (padded bags
included).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from biodl.models.mil import MIL
from biodl.models.mil.model import MILParams

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "mil_nested.py"
#: replica pool -> biodl ``model.pooling``
POOLS = {"mean": "mean", "max": "max", "attention": "attention", "gated": "gated_attention"}


@pytest.fixture(scope="module")
def replica() -> Any:
    threads = torch.get_num_threads()
    spec = importlib.util.spec_from_file_location("mil_nested", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mil_nested"] = module
    spec.loader.exec_module(module)  # sets torch's thread count: put it back
    torch.set_num_threads(threads)
    return module


def _copy(linear: torch.nn.Linear, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    """Replica weights ``(in, out)`` and bias ``(1, out)`` into an ``nn.Linear``."""
    with torch.no_grad():
        linear.weight.copy_(weight.T)
        if bias is not None:
            linear.bias.copy_(bias.reshape(-1))


@pytest.mark.parametrize(("pool", "bins"), [*((p, 0) for p in sorted(POOLS)), ("mean", 4)])
def test_replica_member_logits_equal_biodl_mil(replica: Any, pool: str, bins: int) -> None:
    """``bins`` > 0: the replica's ``ple`` option (instances encoded on quantile bins) against biodl's
    ``numeric_encoding: ple`` fitted on the same real instances."""
    import numpy as np

    torch.manual_seed(0)
    n_feat, members = 5, 2
    x = torch.randn(3, 6, n_feat)
    mask = torch.tensor([[1.0] * 6, [1.0] * 4 + [0.0] * 2, [1.0] + [0.0] * 5])  # padded bags
    x = x * mask.unsqueeze(-1)
    packed = torch.cat([x, mask.unsqueeze(-1)], dim=-1)
    cfg = dict(replica.BASE, pool=pool, hidden=[8, 4], members=members)
    ens = replica.Ens(n_feat * max(bins, 1), cfg).eval()
    with torch.no_grad():  # non-zero biases so that a missing bias would show
        for p in ens.parameters():
            p.add_(0.1 * torch.randn_like(p))
    params = MILParams.model_validate({"pooling": POOLS[pool], "hidden_sizes": [8, 4], "members": members,
                                       "attention_size": 64, "numeric_encoding": "ple" if bins else "none",
                                       "encoding_bins": max(bins, 1)})  # fmt: skip
    model = MIL((6, n_feat + 1), 1, params).eval()
    replica_x = x
    if bins:
        model.fit_inputs(packed.numpy())
        real = x[mask > 0].numpy().astype(np.float64)
        replica_x = torch.from_numpy(replica.encode(x.numpy(), replica.ple_edges(real, bins)))
    for e, net in enumerate(model.networks()):
        dense = [m for m in net.encoder if isinstance(m, torch.nn.Linear)]
        for layer, w, b in zip(dense, ens.W, ens.B, strict=True):
            _copy(layer, w[e], b[e])
        _copy(net.head, ens.Wh[e], ens.bh[e])
        if net.attention is not None:
            _copy(net.attention.V, ens.V[e], ens.bV[e])
            _copy(net.attention.w, ens.w[e], None)
            if net.attention.U is not None:
                _copy(net.attention.U, ens.U[e], ens.bU[e])
    with torch.no_grad():
        want = ens(replica_x, mask)  # (members, bags)
        got = model.member_scores(packed).squeeze(-1)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
