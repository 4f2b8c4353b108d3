"""Per-input attributions of multi-input models (DeepCpG, ``--data-type cpg`` / ``multi``).

A multi-input network takes the flat row of its named inputs (:class:`biodl.data.multi_input.Layout`); its
gradient attributions are cut back into one array per input, so they say *which input* drives a cell's (a
task's) prediction and, within an input, which part: for ``cpg-neighbours`` the state, distance and observed
flag of each neighbouring CpG of each cell, for ``dna-window`` each base around the site.

=============  ==========================================================================
``saliency``   input gradients (Captum ``Saliency``, signed)
``ixg``        gradient × input (Captum ``InputXGradient``; default)
``ig``         integrated gradients from the all-zero row (Captum ``IntegratedGradients``): no
               observed neighbour (state 0, the training mean log distance) and an all-N window
=============  ==========================================================================

Mutation maps (ISM), DeepLIFT with shuffled references, occlusion, Grad-CAM, LIME and attention weights need
one sequence or image per example and do not apply (a one-line error says so).

>>> result = explain_multi_input(bundle, X, ids, targets=[0], method="ixg")
>>> result.parts["cpg"].shape      # (N, T, cells, 2k, 3)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from biodl.errors import ConfigError

__all__ = ["MULTI_INPUT_METHODS", "MultiInputAttributions", "cmd_explain_multi_input", "explain_multi_input"]

MULTI_INPUT_METHODS = ("ixg", "saliency", "ig")
_FEATURES = ("state", "distance", "observed")


@dataclass
class MultiInputAttributions:
    """Attributions cut into the named inputs.

    Attributes
    ----------
    parts
        ``{input name: (N, T, *input shape)}`` float32 attributions (``T`` explained outputs).
    types
        ``{input name: input type}`` (``cpg-neighbours``, ``dna-window``, ``bed-overlaps``, ...).
    ids, targets, method
        Example ids ``(N,)``, the explained outputs' names ``(T,)`` and the method.
    """

    parts: dict[str, np.ndarray]
    types: dict[str, str]
    ids: np.ndarray
    targets: list[str]
    method: str

    def input_shares(self) -> pd.DataFrame:
        """One row per example and output: each input's share of the summed absolute attribution."""
        totals = {n: np.abs(a).reshape(a.shape[0], a.shape[1], -1).sum(-1) for n, a in self.parts.items()}
        whole = np.maximum(sum(totals.values()), 1e-12)  # type: ignore[call-overload]
        rows = []
        for i, ex in enumerate(self.ids):
            for t, tname in enumerate(self.targets):
                rows.append(
                    {"id": str(ex), "target": tname, **{f"share_{n}": float(v[i, t] / whole[i, t]) for n, v in totals.items()}}
                )
        return pd.DataFrame(rows)

    def cpg_table(self, name: str, cells: list[str]) -> pd.DataFrame:
        """Mean absolute attribution over the examples of every (output, cell, neighbour, feature) of a
        ``cpg-neighbours`` input; neighbours ``L{k}..L1`` (far → near, left) and ``R1..R{k}`` (right)."""
        a = np.abs(self.parts[name]).mean(axis=0)  # (T, cells, 2k, F)
        k = a.shape[2] // 2
        slots = [f"L{k - j}" for j in range(k)] + [f"R{j + 1}" for j in range(k)]
        rows = []
        for t, tname in enumerate(self.targets):
            for c in range(a.shape[1]):
                for s, slot in enumerate(slots):
                    for f in range(a.shape[3]):
                        cell = cells[c] if c < len(cells) else str(c)
                        feature = _FEATURES[f] if f < len(_FEATURES) else str(f)
                        rows.append({"target": tname, "input": name, "cell": cell, "neighbour": slot, "feature": feature,
                                     "mean_abs_attribution": float(a[t, c, s, f])})  # fmt: skip
        return pd.DataFrame(rows)

    def position_table(self, name: str) -> pd.DataFrame:
        """Mean absolute attribution per (output, position) of a ``(channels, length)`` input (offset from the
        centre, e.g. the CpG of a DNA window)."""
        a = np.abs(self.parts[name]).sum(axis=2).mean(axis=0)  # (T, L)
        offsets = np.arange(a.shape[1]) - a.shape[1] // 2
        return pd.DataFrame(
            [{"target": tname, "input": name, "offset": int(o), "mean_abs_attribution": float(a[t, j])}
             for t, tname in enumerate(self.targets) for j, o in enumerate(offsets)]
        )  # fmt: skip


def explain_multi_input(
    bundle: Any, X: np.ndarray, ids: np.ndarray, *, targets: list[int], method: str = "ixg", batch_size: int = 256
) -> MultiInputAttributions:
    """Gradient attributions of the bundle's model on model rows ``X`` ``(N, F)``, cut into its named inputs.

    Raises
    ------
    ConfigError
        ``method`` is not one of :data:`MULTI_INPUT_METHODS`.
    """
    from captum.attr import InputXGradient, IntegratedGradients, Saliency

    if method not in MULTI_INPUT_METHODS:
        raise ConfigError(
            f"--method {method}: multi-input models ({bundle.modality.name}) take {', '.join(MULTI_INPUT_METHODS)} "
            "(mutation maps, DeepLIFT references, occlusion, Grad-CAM, LIME and attention need one sequence or image per example)"
        )
    model = bundle.model.eval()
    explainer = {"saliency": Saliency, "ixg": InputXGradient, "ig": IntegratedGradients}[method](model)
    Xt = torch.as_tensor(np.asarray(X, dtype=np.float32))
    per_target = []
    with torch.backends.cudnn.flags(enabled=False):  # a GRU's backward pass in eval mode
        for t in targets:
            chunks = []
            for s in range(0, len(Xt), max(1, batch_size)):
                x = Xt[s : s + batch_size].clone().requires_grad_(True)
                if method == "saliency":
                    a = explainer.attribute(x, target=t, abs=False)
                else:
                    a = explainer.attribute(x, target=t)
                chunks.append(a.detach())
            per_target.append(torch.cat(chunks).numpy() if chunks else np.zeros((0, Xt.shape[1]), dtype=np.float32))
    flat = np.stack(per_target, axis=1).astype(np.float32)  # (N, T, F)
    layout = bundle.modality.layout
    cut = layout.unpack(flat.reshape(len(flat) * len(targets), -1))
    parts = {n: c.reshape(len(flat), len(targets), *c.shape[1:]) for n, c in zip(layout.names, cut, strict=True)}
    types = {p.name: p.type_name or p.spec.type for p in bundle.modality.parts}
    names = list(bundle.target_names)
    return MultiInputAttributions(
        parts, types, np.asarray(ids), [names[t] if t < len(names) else str(t) for t in targets], method
    )


def plot_attributions(res: MultiInputAttributions, row: int | None, t: int, cells: list[str], path: Path) -> None:
    """One panel per input: a cell × neighbour heat map per feature (``cpg-neighbours``), attribution per position
    (``(channels, length)`` inputs), bars otherwise. ``row=None`` draws the mean absolute attribution."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(res.parts)
    fig, axes = plt.subplots(len(names), 1, figsize=(8, 2.6 * len(names)), squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        a = np.abs(res.parts[name]).mean(axis=0)[t] if row is None else res.parts[name][row, t]
        kind = res.types.get(name, "")
        if a.ndim == 3:  # cpg-neighbours: (cells, 2k, F) → cells x (features · neighbours)
            k = a.shape[1] // 2
            img = np.concatenate([a[:, :, f] for f in range(a.shape[2])], axis=1)
            lim = float(np.abs(img).max()) or 1.0
            im = ax.imshow(img, aspect="auto", cmap="viridis" if row is None else "RdBu_r",
                           vmin=0 if row is None else -lim, vmax=lim)  # fmt: skip
            slots = [f"L{k - j}" for j in range(k)] + [f"R{j + 1}" for j in range(k)]
            ax.set_xticks(range(img.shape[1]))
            ax.set_xticklabels([f"{_FEATURES[f][:4]} {s}" for f in range(a.shape[2]) for s in slots], rotation=90, fontsize=6)
            ax.set_yticks(range(a.shape[0]))
            ax.set_yticklabels(cells[: a.shape[0]], fontsize=7)
            fig.colorbar(im, ax=ax, fraction=0.03)
        elif a.ndim == 2:  # (channels, length): summed over channels per position
            values = a.sum(axis=0)
            offsets = np.arange(len(values)) - len(values) // 2
            ax.plot(offsets, values, lw=0.8)
            ax.axvline(0, color="grey", lw=0.5, ls=":")
            ax.set_xlabel("position relative to the site (bp)")
        else:
            values = a.reshape(-1)
            ax.bar(range(len(values)), values)
        ax.set_title(f"{name} ({kind})", fontsize=9)
    what = "mean |attribution| over the examples" if row is None else str(res.ids[row])
    fig.suptitle(f"{what}: {res.targets[t]} ({res.method})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _target_indices(bundle: Any, target: str | None) -> list[int]:
    names = list(bundle.target_names)
    if target is None:
        return list(range(int(bundle.model.num_outputs)))
    if target in names:
        return [names.index(target)]
    if target.lstrip("-").isdigit() and -len(names) <= int(target) < len(names):
        return [int(target) % len(names)]
    raise ConfigError(f"--target {target!r}: not an output of the model; outputs: {names}")


def cmd_explain_multi_input(args: Any) -> int:
    """``biodl explain`` for multi-input models → ``OUTPUT_DIR/explain.npz`` (one array per input),
    ``input_shares.csv``, ``cpg_neighbours.csv`` / ``positions.csv`` and ``figures/``."""
    from biodl.bundle import load
    from biodl.inference import load_data

    method = args.method or "ixg"
    if method not in MULTI_INPUT_METHODS:
        raise ConfigError(
            f"--method {method}: multi-input models take {', '.join(MULTI_INPUT_METHODS)} "
            "(mutation maps, DeepLIFT references, occlusion, Grad-CAM, LIME and attention need one sequence or image per example)"
        )
    bundle = load(args.model_path)
    targets = _target_indices(bundle, args.target)
    data = load_data(bundle, list(args.data_path), {}, require_targets=False)
    n = min(len(data), args.max_sequences) if args.max_sequences else len(data)
    X = np.asarray(bundle.modality.transform(data.X[:n]), dtype=np.float32)
    res = explain_multi_input(bundle, X, np.asarray(data.ids)[:n], targets=targets, method=method, batch_size=args.batch_size)
    out = Path(args.output_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {"ids": res.ids.astype(str), "targets": np.asarray(res.targets), "method": np.asarray(method)}
    arrays.update({f"attributions_{k}": v for k, v in res.parts.items()})
    np.savez_compressed(out / "explain.npz", **arrays)
    res.input_shares().to_csv(out / "input_shares.csv", index=False)
    cells = list(getattr(bundle.modality, "cells", None) or bundle.target_names)
    written = ["input_shares.csv"]
    cpg = [k for k, v in res.parts.items() if v.ndim == 5]
    pos = [k for k, v in res.parts.items() if v.ndim == 4]
    if cpg:
        pd.concat([res.cpg_table(k, cells) for k in cpg]).to_csv(out / "cpg_neighbours.csv", index=False)
        written.append("cpg_neighbours.csv")
    if pos:
        pd.concat([res.position_table(k) for k in pos]).to_csv(out / "positions.csv", index=False)
        written.append("positions.csv")
    n_fig = 0
    for t, tname in enumerate(res.targets):
        for fmt in args.format:
            plot_attributions(res, None, t, cells, out / "figures" / f"mean_{_safe(tname)}.{fmt}")
            n_fig += 1
        for i in range(min(args.plots, len(X))):
            for fmt in args.format:
                plot_attributions(res, i, t, cells, out / "figures" / f"{i:04d}_{_safe(str(res.ids[i]))}_{_safe(tname)}.{fmt}")
                n_fig += 1
    print(
        f"{method} attributions of {len(X)} example(s) for {', '.join(res.targets)} per input "
        f"({', '.join(res.parts)}) written to {out / 'explain.npz'} and {', '.join(written)}; "
        f"{n_fig} figure(s) in {out / 'figures'}"
    )
    return 0


def _safe(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:60]
