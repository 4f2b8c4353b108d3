"""The network-vs-baseline sentence shows the numbers it talks about, however small the difference."""

from __future__ import annotations

from typing import Any

from biodl.experiment.yardstick import compare_to_baseline, verdict


def _metrics(network: float, baseline: float) -> dict[str, Any]:
    return {"val": {"auroc": network}, "baseline": {"name": "random_forest", "val": {"auroc": baseline}}}


def test_a_tiny_margin_is_written_so_that_it_can_be_read() -> None:
    # river's shuttle table: both near-perfect on validation, the forest ahead by 4.4e-05
    m = _metrics(0.9999562557, 1.0)
    compare_to_baseline(m, "binary", standard_error=2.37e-05)
    text = verdict(m)
    assert text is not None and m["network_beats_baseline"] is False
    assert "auroc 1.000000 vs the network's 0.999956" in text  # agree to 4 decimals: 6 are shown
    assert "worse by 4.4e-05" in text and "standard error of the difference 2.4e-05: beyond" in text


def test_ordinary_margins_keep_four_decimals() -> None:
    m = _metrics(0.9, 0.85)
    compare_to_baseline(m, "binary", standard_error=0.02)
    text = verdict(m)
    assert text is not None and "auroc 0.9000 vs 0.8500 (margin +0.0500; standard error of the difference 0.0200: beyond" in text
