"""The report section "Network vs baseline, model selection": the verdict and every ``auto`` candidate's score."""

from __future__ import annotations

from html import escape
from typing import Any

from biodl.experiment.yardstick import verdict


def _num(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else escape(str(v)) if v is not None else "–"


def selection_html(metrics: dict[str, Any]) -> str:
    """HTML of the verdict (``network_beats_baseline``) and the candidates table; empty when there is neither."""
    parts: list[str] = []
    said = verdict(metrics)
    if said:
        style = "" if metrics.get("network_beats_baseline") else ' style="color:#a00;font-weight:bold"'
        parts.append(f"<p{style}>{escape(said[0].upper() + said[1:])}.</p>")
    sel = metrics.get("model_selection")
    if isinstance(sel, dict):
        metric = str(sel.get("metric"))
        budget = sel.get("time_budget")
        parts.append(
            f"<p>model.name: auto trained the candidates below in {_num(sel.get('seconds'))} s "
            f"(train.time_budget {escape(str(budget))} s) and kept the best validation {escape(metric)} "
            f"(selected on: {escape(str(sel.get('selected_on')))}); the test rows played no part.</p>"
        )
        rows = [
            "<tr><th>candidate</th><th>status</th><th>validation " + escape(metric) + "</th><th>seconds</th>"
            "<th>epochs (best)</th><th>stopped by budget</th><th>selected</th></tr>"
        ]
        for r in sel.get("candidates", []):
            val = (r.get("val") or {}).get(metric)
            epochs = f"{r['epochs']} ({r['best_epoch']})" if "epochs" in r else "–"
            status = r.get("status", "")
            if r.get("reason"):
                status += f": {r['reason']}"
            rows.append(
                f"<tr><td>{escape(str(r.get('label')))}</td><td>{escape(status)}</td><td>{_num(val)}</td>"
                f"<td>{_num(r.get('seconds'))}</td><td>{escape(epochs)}</td>"
                f"<td>{'yes' if r.get('stopped_by_budget') else 'no'}</td><td>{'yes' if r.get('selected') else ''}</td></tr>"
            )
        parts.append("<table>" + "".join(rows) + "</table>")
    parts += refit_html(metrics.get("refit"))
    return "\n".join(parts)


def refit_html(refit: Any) -> list[str]:
    """A paragraph on ``train.refit``: which model ``model/`` is, and the validation scores of both."""
    if not isinstance(refit, dict) or refit.get("shipped") in (None, "measured"):
        return []
    val = refit.get("val") or {}
    scores = (
        f" Validation {escape(str(val.get('metric')))}: refit {_num(val.get('refit'))}, measured "
        f"{_num(val.get('heldout'))} (standard error of the difference {_num(val.get('standard_error'))})."
        if val
        else ""
    )
    if refit.get("shipped") == "refit":
        text = (
            f"train.refit: once measured, the model was trained again on {_num(refit.get('rows'))} rows (training + "
            f"test) in {float(refit.get('seconds') or 0):.0f} s; that model is model/. The test figures of this report are "
            f"those of the measured model, model_heldout/."
        )
    else:
        text = f"train.refit: the model trained again on training + test rows was not shipped: {refit.get('reason')}."
    return [f"<p>{escape(text)}{scores}</p>"]
