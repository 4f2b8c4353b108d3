"""AdrenalMNIST3D (28³): stratified K-fold cross-validation over train + val, our proxy for the official test.

The official test split is not available here, and MedMNIST's val part (98 volumes, 22 positive) was
already used to choose the first defaults, so new choices are made on K-fold CV over the 1,286
train + val volumes instead. Each fold: the other folds train, 10 % of them (stratified) are the
inner validation split for early stopping and the learning-rate plateau, the fold itself is scored
once. The network is trained as ``biodl train`` trains it (``cnn3d`` defaults: Adam 1e-3, batch 32,
plateau ×0.5 after 3 epochs, early stopping after 10, at most ``--max-epochs`` (30 here: the cap when
these figures were made; the product's cap is now 50), best weights restored;
``flip rot90`` augmentation; ``members`` networks each on its own loss; per-channel standardisation
fitted on the training part), in a lean
loop without the run's reports. Per fold it records the held-out AUROC of:

* the best-epoch network without test-time augmentation, with the 8 flips (``tta: flip``) and with
  the 16 views of in-plane rotations × flips × depth flip (``tta: dihedral``);
* logistic regression and random forest on 7³ averaged voxels (the run's baselines).

``--ema D`` validates, keeps and scores an exponential moving average of the weights instead (decay ``D`` per
step, batch-norm statistics recomputed on the training volumes each epoch); ``--params`` takes other ``cnn3d``
settings (``--config`` labels them). Seeds run as separate processes (``--seed``); ``--combine`` averages the
probabilities of the seeds found in the JSONL per fold (an ensemble of independently trained networks) and
writes the tables.

    nice python benchmarks/adrenal_cv.py --seeds 0 --threads 1     # CPU: one process per seed
    python benchmarks/adrenal_cv.py --seeds 0 1 2                  # a GPU: all seeds in one process
    python benchmarks/adrenal_cv.py --combine                      # results/adrenal_cv.{json,md}
    python benchmarks/adrenal_cv.py --linear-sweep                 # results/adrenal_linear_sweep.{json,md}

``--linear-sweep`` scores logistic regression on the same folds over pooling sizes and regularisation
strengths: how far the best linear model in this CV is from the ≈ 0.85 the issue quotes on the
official test split, a yardstick for how this CV relates to that split.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import RESULTS, write_results

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "volumes" / "adrenalmnist3d"
RUNS = RESULTS / "adrenal_cv_runs.jsonl"


def load(side: int) -> tuple[np.ndarray, np.ndarray]:
    z = np.load(DATA / f"adrenalmnist3d_{side}_train_val.npz")
    x = np.concatenate([z["train_images"], z["val_images"]]).astype(np.float32) / 255.0
    y = np.concatenate([z["train_labels"], z["val_labels"]]).reshape(-1).astype(np.int64)
    return x[:, None], y


def folds(y: np.ndarray, k: int) -> list[np.ndarray]:
    from sklearn.model_selection import StratifiedKFold

    return [test for _, test in StratifiedKFold(k, shuffle=True, random_state=0).split(np.zeros(len(y)), y)]


def baselines(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray) -> dict[str, float]:
    import torch
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def feats(x: np.ndarray) -> np.ndarray:
        return torch.nn.functional.adaptive_avg_pool3d(torch.from_numpy(x), 7).reshape(len(x), -1).numpy()

    ftr, fte = feats(xtr), feats(xte)
    out = {}
    lr = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)).fit(ftr, ytr)
    out["logreg_7cubed"] = float(roc_auc_score(yte, lr.predict_proba(fte)[:, 1]))
    rf = RandomForestClassifier(500, n_jobs=1, random_state=0).fit(ftr, ytr)
    out["rf_7cubed"] = float(roc_auc_score(yte, rf.predict_proba(fte)[:, 1]))
    return out


def train_fold(
    xtr: np.ndarray,
    ytr: np.ndarray,
    xte: np.ndarray,
    seed: int,
    params: dict,
    max_epochs: int,
    device: str = "cpu",
    ema: float = 0.0,
    schedule: str = "plateau",
) -> tuple[dict[str, np.ndarray], dict]:
    import torch
    from sklearn.model_selection import train_test_split

    from biodl.data.volume.augment import VolumeAugment
    from biodl.models.base import build_model

    torch.manual_seed(seed)
    np.random.seed(seed)
    itr, iva = train_test_split(np.arange(len(ytr)), test_size=0.1, stratify=ytr, random_state=seed)
    mean, std = float(xtr[itr].mean()), float(xtr[itr].std())
    norm = lambda a: torch.from_numpy((a - mean) / std).to(device)  # noqa: E731
    xt, yt = norm(xtr[itr]), torch.from_numpy(ytr[itr]).float().to(device)
    xv, yv = norm(xtr[iva]), torch.from_numpy(ytr[iva]).float().to(device)
    xs = norm(xte)
    model = build_model("cnn3d", (1, *xtr.shape[2:]), 1, {**params, "tta": "none"}).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    # plateau: x0.5 after 3 epochs without improvement, early stopping after 10; cosine: decay to 1 % over
    # max_epochs, every epoch trained (biodl's train.lr_schedule: cosine with early_stopping false)
    sched: Any = (
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, max_epochs - 1), eta_min=1e-5)
        if schedule == "cosine"
        else torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=3)
    )
    aug = VolumeAugment(["flip", "rot90"])
    lossf = torch.nn.BCEWithLogitsLoss()
    # ``ema`` > 0: an exponential moving average of the weights after every step, with batch-norm
    # statistics recomputed on the training volumes each epoch (SWA's update_bn: averaged weights do not
    # fit averaged statistics), is what is validated, kept at its best epoch and scored
    averaged = (
        torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(ema), use_buffers=False
        )
        if ema
        else None
    )
    scored = averaged.module if averaged is not None else model
    best, best_state, bad, hist = float("inf"), None, 0, []
    for epoch in range(max_epochs):
        model.train()
        perm = torch.randperm(len(xt), device=device)
        for i in range(0, len(perm), 32):
            b = perm[i : i + 32]
            # every member on its own loss, summed (biodl's training step); one network: the plain loss
            loss = sum(lossf(s[:, 0], yt[b]) for s in model.member_scores(aug(xt[b])))  # type: ignore[operator]
            opt.zero_grad()
            loss.backward()
            opt.step()
            if averaged is not None:
                averaged.update_parameters(model)
        if averaged is not None:
            torch.optim.swa_utils.update_bn([xt[i : i + 64] for i in range(0, len(xt), 64)], scored)
        scored.eval()
        with torch.no_grad():
            vl = float(lossf(scored(xv)[:, 0], yv))
        sched.step() if schedule == "cosine" else sched.step(vl)
        hist.append(round(vl, 4))
        if vl < best:
            best, bad, best_state = vl, 0, {k: v.clone() for k, v in scored.state_dict().items()}
            best_epoch = epoch + 1
        else:
            bad += 1
            if bad >= 10 and schedule != "cosine":
                break
    assert best_state is not None
    model = scored
    model.load_state_dict(best_state)
    model.eval()
    out = {}
    with torch.no_grad():
        for tta in ("none", "flip", "dihedral"):
            model.params.tta = tta  # type: ignore[attr-defined]
            out[tta] = torch.sigmoid(model(xs)[:, 0]).cpu().numpy()
    return out, {"best_epoch": best_epoch, "epochs": len(hist), "val_loss": hist}


def run(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    x, y = load(28)
    params = json.loads(args.params)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    for f, test in enumerate(folds(y, args.k)):
        if args.folds and f not in args.folds:
            continue
        for seed in args.seeds:
            fold_run(args, x, y, f, test, seed, params, device)


def fold_run(
    args: argparse.Namespace, x: np.ndarray, y: np.ndarray, f: int, test: np.ndarray, seed: int, params: dict, device: str
) -> None:
    from sklearn.metrics import roc_auc_score

    train = np.setdiff1d(np.arange(len(y)), test)
    t0 = time.time()
    probs, info = train_fold(x[train], y[train], x[test], seed, params, args.max_epochs, device, args.ema, args.schedule)
    rec = {
        "config": args.config, "params": params, "seed": seed, "fold": f, "k": args.k, "device": device,
        "max_epochs": args.max_epochs, **({"ema": args.ema} if args.ema else {}),
        **({"schedule": args.schedule} if args.schedule != "plateau" else {}),
        "auroc": {k: float(roc_auc_score(y[test], p)) for k, p in probs.items()},
        "probs": {k: p.round(5).tolist() for k, p in probs.items()}, "test_index": test.tolist(),
        "seconds": round(time.time() - t0, 1), **info,
    }  # fmt: skip
    if seed == 0 and args.config == "default":
        rec["baselines"] = baselines(x[train], y[train], x[test], y[test])
    with RUNS.open("a") as fh:
        fh.write(json.dumps(rec) + "\n")
    print(f"fold {f} seed {seed}: {rec['auroc']} {rec.get('baselines', '')} {rec['seconds']} s", flush=True)


def combine() -> None:
    from sklearn.metrics import roc_auc_score

    _, y = load(28)
    recs = [json.loads(line) for line in RUNS.read_text().splitlines() if line.strip()]
    rows, payload = [], {"runs": RUNS.name, "results": {}}

    def add(name: str, per_fold: list[float], note: str = "") -> None:
        a = np.asarray(per_fold)
        sd = float(a.std(ddof=1)) if len(a) > 1 else None
        payload["results"][name] = {"folds": [round(float(v), 4) for v in a], "mean": float(a.mean()), "sd": sd}
        rows.append([name, len(a), float(a.mean()), sd if sd is not None else "-", note])

    def boot(cr: list[dict], tta: str) -> str:
        """Bootstrap sd of the AUROC over the held-out volumes of each fold (1,000 resamples)."""
        rng = np.random.default_rng(0)
        out = []
        for r in cr:
            yt, p = y[np.asarray(r["test_index"])], np.asarray(r["probs"][tta])
            idx = [rng.integers(0, len(yt), len(yt)) for _ in range(1000)]
            vals = [roc_auc_score(yt[i], p[i]) for i in idx if 0 < yt[i].sum() < len(i)]
            out.append(f"{np.std(vals):.3f}")
        return "bootstrap sd per fold " + ", ".join(out)

    for config in sorted({r["config"] for r in recs}):
        cr = [r for r in recs if r["config"] == config]
        seeds = sorted({r["seed"] for r in cr})
        fold_ids = sorted({r["fold"] for r in cr})
        for tta in ("none", "flip", "dihedral"):
            first = [r for r in cr if r["seed"] == seeds[0]]
            add(f"{config} seed {seeds[0]}, tta {tta}", [r["auroc"][tta] for r in first], boot(first, tta))
        full = [f for f in fold_ids if len({r["seed"] for r in cr if r["fold"] == f}) == len(seeds)]
        if len(seeds) > 1 and full:
            for tta in ("flip", "dihedral"):
                single, ens = [], []
                for f in full:
                    fr = [r for r in cr if r["fold"] == f]
                    yt = y[np.asarray(fr[0]["test_index"])]
                    single.append(np.mean([r["auroc"][tta] for r in fr]))
                    ens.append(roc_auc_score(yt, np.mean([r["probs"][tta] for r in fr], axis=0)))
                add(f"{config} mean of single seeds {seeds}, tta {tta}", single, f"folds {full}")
                add(f"{config} ensemble of seeds {seeds}, tta {tta}", ens, f"folds {full}")
    base = [r for r in recs if "baselines" in r]
    for key in ("logreg_7cubed", "rf_7cubed"):
        if base:
            add(key, [r["baselines"][key] for r in base])
    write_results(
        "adrenal_cv", payload, ["model", "folds", "mean AUROC", "sd", "note"], rows,
        notes="Stratified 5-fold CV (random_state 0) over AdrenalMNIST3D 28³ train+val (1,286 volumes); "
        "each fold's held-out part scored once; inner 10 % split for early stopping. "
        "Commands: `nice python benchmarks/adrenal_cv.py --seed S --threads 1`, then `--combine`.",
    )  # fmt: skip


def linear_sweep(sides: tuple[int, ...] = (7, 14, 28), cs: tuple[float, ...] = (1e-3, 1e-2, 0.1, 1.0)) -> None:
    """Logistic regression on ``side``³ average-pooled voxels for every C, on the CV folds above."""
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load(28)
    fold_list = folds(y, 5)
    rows, payload = [], {"results": {}}
    for side in sides:
        feats = torch.nn.functional.adaptive_avg_pool3d(torch.from_numpy(x), side).reshape(len(x), -1).numpy()
        for c in cs:
            aucs = []
            for test in fold_list:
                train = np.setdiff1d(np.arange(len(y)), test)
                model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000)).fit(feats[train], y[train])
                aucs.append(float(roc_auc_score(y[test], model.predict_proba(feats[test])[:, 1])))
            a = np.asarray(aucs)
            payload["results"][f"{side}^3 C={c}"] = {"folds": [round(v, 4) for v in aucs], "mean": float(a.mean())}
            rows.append([f"{side}³", c, " ".join(f"{v:.3f}" for v in aucs), float(a.mean()), float(a.std(ddof=1))])
            print(rows[-1], flush=True)
    write_results(
        "adrenal_linear_sweep", payload, ["pooled to", "C", "AUROC per fold", "mean", "sd"], rows,
        notes="Logistic regression (standardised features) on average-pooled voxels, the 5 stratified folds of "
        "`adrenal_cv.py` (train+val, 1,286 volumes). Command: `python benchmarks/adrenal_cv.py --linear-sweep`.",
    )  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", "--seed", type=int, nargs="+", default=[0], help="one training per seed and fold")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--folds", type=int, nargs="*", default=None, help="run only these folds")
    ap.add_argument("--max-epochs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ema", type=float, default=0.0, help="EMA decay of the weights per step (0: none)")
    ap.add_argument("--schedule", choices=["plateau", "cosine"], default="plateau", help="learning-rate schedule")
    ap.add_argument("--config", default="default", help="label of the network parameters")
    ap.add_argument("--params", default="{}", help="cnn3d parameters as JSON")
    ap.add_argument("--combine", action="store_true")
    ap.add_argument("--linear-sweep", action="store_true", help="logistic regression over pooling sizes and C")
    args = ap.parse_args()
    if args.linear_sweep:
        linear_sweep()
    elif args.combine:
        combine()
    else:
        run(args)


if __name__ == "__main__":
    main()
