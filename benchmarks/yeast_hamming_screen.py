"""Screen for the yeast Hamming loss (issue 15): variants of the multi-label recipe on biodl's own folds.

Plain PyTorch and scikit-learn on exactly the folds of ``biodl train ... --cv 5 --seed 0`` (``kfold_splits(1500,
5, (0.6, 0.1, 0.3), 0)``: 1,029 training / 171 validation / 300 test rows per fold). The recipe is the
portfolio's multi-label candidate 0: ``Linear(103, 256) → BatchNorm → ReLU → Dropout(0.5) → Linear(256, 14)``,
Adam (lr 1e-3, weight decay 1e-4), batch 64, ≤ 200 epochs, plateau schedule (×0.5 after 3 epochs) and early
stopping (patience 15) on the validation loss, best weights restored, 5 members averaged, threshold 0.5.
Variants (each one flag of ``--variants``):

* ``recipe``: as above;
* ``refit``: every member is trained as in ``recipe``, then a fresh member (same seed) is trained on the
  training + validation rows for the epoch count early stopping chose, replaying the learning rates of the
  first run epoch by epoch (what ``train.refit`` does in the product);
* ``quantile``: the inputs through a normal-output quantile transform fitted on the training rows;
* ``members10``: 10 members;
* ``deep`` / ``wide``: hidden layers ``[512, 256]`` / ``[1024]`` (same dropout);
* ``noise1`` / ``noise3``: Gaussian noise of sd 0.1 / 0.3 added to the standardised inputs while training;
* ``refit_noise3``: both;
* ``recipe_seeds``: the recipe with other member seeds (100-104): the seed-to-seed noise of the comparison;
* ``rf``: a random forest (500 trees, multi-output), fitted on the training rows (the run's baseline kind);
* ``ple8`` / ``ple16``: piecewise-linear encoding of every feature on 8 / 16 quantile bins of the training rows
  (Gorishniy et al., NeurIPS 2022), then the recipe's network on the encoded features; options after ``_``:
  ``s100`` member seeds from 100, ``wd1e-3`` weight decay, ``do0.3`` dropout, ``lr3e-4`` learning rate, ``m10`` members
  (``ple16_s100_wd1e-3``).

Test rows are scored, never used for a choice. Writes one JSON line per (variant, fold) to ``--out``.

    OMP_NUM_THREADS=1 PYTHONPATH=src nice -n 19 python benchmarks/yeast_hamming_screen.py --out /tmp/screen.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from yeast import load


def standardise(X: np.ndarray, rows: np.ndarray) -> np.ndarray:
    mu, sd = X[rows].mean(0), X[rows].std(0)
    return ((X - mu) / np.where(sd < 1e-8, 1.0, sd)).astype(np.float32)


def piecewise_linear(X: np.ndarray, rows: np.ndarray, bins: int) -> np.ndarray:
    """``(N, F)`` → ``(N, F × bins)``: feature ``f``'s bin ``t`` is ``clip((x − e_t) / (e_{t+1} − e_t), 0, 1)`` with
    the edges ``e`` at quantiles of ``rows``; the first bin is open below, the last open above (PLE)."""
    edges = np.quantile(X[rows], np.linspace(0, 1, bins + 1), axis=0)  # (bins + 1, F)
    lo, width = edges[:-1], np.maximum(np.diff(edges, axis=0), 1e-8)  # (bins, F)
    e = (X[:, None, :] - lo[None]) / width[None]  # (N, bins, F)
    e[:, 1:] = np.maximum(e[:, 1:], 0.0)
    e[:, :-1] = np.minimum(e[:, :-1], 1.0)
    return e.transpose(0, 2, 1).reshape(len(X), -1).astype(np.float32)


def scores(Y: np.ndarray, P: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import label_ranking_average_precision_score, roc_auc_score

    keep = [j for j in range(Y.shape[1]) if 0 < Y[:, j].sum() < len(Y)]
    return {
        "hamming": float(np.mean((P > 0.5) != (Y > 0.5))),
        "ap": float(label_ranking_average_precision_score(Y, P)),
        "auroc": float(np.mean([roc_auc_score(Y[:, j], P[:, j]) for j in keep])),
    }


def member(X: np.ndarray, Y: np.ndarray, tr: np.ndarray, va: np.ndarray | None, seed: int,
           epochs: int = 200, lrs: list[float] | None = None, hidden: tuple[int, ...] = (256,),
           noise: float = 0.0, weight_decay: float = 1e-4,
           dropout: float = 0.5, lr: float = 1e-3) -> tuple[Any, int, list[float]]:  # fmt: skip
    """One network; early stopping on ``va`` (or ``len(lrs)`` epochs at the replayed learning rates)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    n_in = X.shape[1]
    for h in hidden:
        layers += [nn.Linear(n_in, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(dropout)]
        n_in = h
    net = nn.Sequential(*layers, nn.Linear(n_in, Y.shape[1]))
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=3)
    loss_fn = nn.BCEWithLogitsLoss()
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    gen = torch.Generator().manual_seed(seed)
    best, best_state, best_epoch, bad, used = np.inf, None, 0, 0, []
    n_epochs = len(lrs) if lrs is not None else epochs
    for epoch in range(n_epochs):
        if lrs is not None:
            for g in opt.param_groups:
                g["lr"] = lrs[epoch]
        used.append(opt.param_groups[0]["lr"])
        net.train()
        perm = tr[torch.randperm(len(tr), generator=gen).numpy()]
        for i in range(0, len(perm), 64):
            b = perm[i : i + 64]
            if len(b) < 2:
                continue
            opt.zero_grad()
            xb = Xt[b] + noise * torch.randn(len(b), Xt.shape[1], generator=gen) if noise else Xt[b]
            loss_fn(net(xb), Yt[b]).backward()
            opt.step()
        if va is None:
            continue
        net.eval()
        with torch.no_grad():
            v = float(loss_fn(net(Xt[va]), Yt[va]))
        sched.step(v)
        if v < best:
            best, best_epoch, bad = v, epoch + 1, 0
            best_state = {k: t.clone() for k, t in net.state_dict().items()}
        else:
            bad += 1
            if bad >= 15:
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return net, best_epoch, used[:best_epoch]


def predict(nets: list[Any], X: np.ndarray, rows: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return np.mean([torch.sigmoid(n(torch.from_numpy(X[rows]))).numpy() for n in nets], axis=0)


def run(variant: str, X: np.ndarray, Y: np.ndarray, split: Any) -> dict[str, Any]:
    tr, va, te = split.train, split.val, split.test
    if variant == "rf":
        from sklearn.ensemble import RandomForestClassifier

        rf = RandomForestClassifier(n_estimators=500, n_jobs=1, random_state=0).fit(X[tr], Y[tr])
        P = np.stack([p[:, 1] for p in rf.predict_proba(X[te])], axis=1)
        Pv = np.stack([p[:, 1] for p in rf.predict_proba(X[va])], axis=1)
        return {"test": scores(Y[te], P), "val": scores(Y[va], Pv)}
    if variant == "quantile":
        from sklearn.preprocessing import QuantileTransformer

        q = QuantileTransformer(n_quantiles=min(1000, len(tr)), output_distribution="normal", random_state=0).fit(X[tr])
        Xs = q.transform(X).astype(np.float32)
    elif variant.startswith("ple"):
        Xs = piecewise_linear(X, tr, int(variant.split("_")[0][3:]))
    else:
        Xs = standardise(X, tr)
    k = 10 if variant == "members10" else 5
    hidden = {"deep": (512, 256), "wide": (1024,)}.get(variant, (256,))
    noise = {"noise1": 0.1, "noise3": 0.3, "refit_noise3": 0.3}.get(variant, 0.0)
    offset = 100 if variant == "recipe_seeds" else 0
    # ple variants take options after "_": s<offset> (member seeds), wd<weight decay>, do<dropout>, m<members>
    opts = {t[:2] if t[:2] in ("wd", "do", "lr") else t[:1]: t[2:] if t[:2] in ("wd", "do", "lr") else t[1:]
            for t in variant.split("_")[1:]} if variant.startswith("ple") else {}  # fmt: skip
    offset = int(opts.get("s", offset))
    k = int(opts.get("m", k))
    extra = {"weight_decay": float(opts.get("wd", 1e-4)), "dropout": float(opts.get("do", 0.5)),
             "lr": float(opts.get("lr", 1e-3))}  # fmt: skip
    nets, epochs, refits = [], [], []
    for m in range(k):
        net, e, lrs = member(Xs, Y, tr, va, seed=m + offset, hidden=hidden, noise=noise, **extra)
        nets.append(net)
        epochs.append(e)
        if variant.startswith("refit"):
            alltr = np.concatenate([tr, va])
            Xr = standardise(X, alltr)
            refits.append(member(Xr, Y, alltr, None, seed=m, lrs=lrs, hidden=hidden, noise=noise)[0])
    out: dict[str, Any] = {"epochs": epochs, "val": scores(Y[va], predict(nets, Xs, va))}
    if variant.startswith("refit"):
        out["test"] = scores(Y[te], predict(refits, standardise(X, np.concatenate([tr, va])), te))
        out["test_first"] = scores(Y[te], predict(nets, Xs, te))
    else:
        out["test"] = scores(Y[te], predict(nets, Xs, te))
    return out


def summarise(files: list[Path], command: str, notes: str) -> None:
    """Per-variant, per-fold test Hamming / AP of the JSON lines in ``files`` → ``results/yeast_hamming_screen.*``."""
    import os
    import platform

    from _common import write_results

    runs: dict[str, dict[int, dict[str, Any]]] = {}
    for f in files:
        for line in f.read_text().splitlines():
            r = json.loads(line)
            runs.setdefault(r["variant"], {})[r["fold"]] = r
    ref = runs.get("recipe", {})
    rows: list[list[Any]] = []
    for v, by_fold in runs.items():
        folds = sorted(by_fold)
        ham = [by_fold[f]["test"]["hamming"] for f in folds]
        ap = [by_fold[f]["test"]["ap"] for f in folds]
        paired = [by_fold[f]["test"]["hamming"] - ref[f]["test"]["hamming"] for f in folds if f in ref]
        better = sum(d < 0 for d in paired)
        diff = f"{np.mean(paired):+.4f} ({better}/{len(paired)} folds lower)" if v != "recipe" and paired else ""
        rows.append([v, len(folds), " ".join(f"{h:.4f}" for h in ham), f"{np.mean(ham):.4f}", f"{np.mean(ap):.4f}", diff])
    payload = {"runs": {v: list(b.values()) for v, b in runs.items()}, "command": command,
               "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "loadavg": os.getloadavg()}}  # fmt: skip
    header = ["variant", "folds", "test Hamming per fold", "mean Hamming", "mean AP", "Hamming − recipe, same folds"]
    write_results("yeast_hamming_screen", payload, header, rows, f"Command: {command}\n\n{notes}")


def main() -> None:
    import torch

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", nargs="+", default=["recipe", "refit", "quantile", "rf"])
    p.add_argument("--folds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--out", type=Path, required=False)
    p.add_argument("--summarise", nargs="+", type=Path, help="JSON-lines files to pool into benchmarks/results")
    p.add_argument("--command", default="")
    p.add_argument("--notes", default="")
    args = p.parse_args()
    if args.summarise:
        summarise(args.summarise, args.command, args.notes)
        return
    if args.out is None:
        p.error("--out is required")
    torch.set_num_threads(1)
    from biodl.data.folds import kfold_splits

    X, Y, _ = load()
    splits = kfold_splits(len(X), 5, (0.6, 0.1, 0.3), 0)
    for v in args.variants:
        for f in args.folds:
            t = time.time()
            r = run(v, X, Y, splits[f])
            r.update(variant=v, fold=f, seconds=round(time.time() - t, 1))
            with args.out.open("a") as fh:
                fh.write(json.dumps(r) + "\n")
            print(v, f, round(r["test"]["hamming"], 4), round(r["test"]["ap"], 4), r["seconds"], flush=True)


if __name__ == "__main__":
    main()
