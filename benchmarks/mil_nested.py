"""Nested validation of the ``mil`` defaults inside the training folds (MIDatasets, ``rep1`` folds).

A plain-PyTorch replica of biodl's ``mil`` pipeline (instance standardisation fitted on the training
bags, dense [128, 64] encoder, dropout, masked pooling, linear head, ``members`` networks each on
its own BCE loss, Adam, batches of 8 bags, fixed epochs, no validation split), vectorised over the
members so that a configuration costs seconds per training. For outer test folds 1, 4 and 7 of
``rep1_test_fold`` the nine training folds are split into three inner folds (fold ranks mod 3); a
configuration's score is its inner cross-validated bag accuracy, so the choice never sees a test
fold. ``outer`` as 4th argument instead scores every outer fold (for reporting only).

    nice python benchmarks/mil_nested.py '{"base": {}, "mixed": {"pool": "mixed"}}' musk1,elephant,fox,tiger out.jsonl

Pools: ``mean``, ``max``, ``attention``, ``gated`` (biodl's ``gated_attention``; both attention
pools with zero-initialised biases on ``V`` and ``U``, as biodl's ``nn.Linear`` layers), ``meanmax``
(mean and max concatenated), ``mixed`` (members cycle mean, max, attention). Other keys: ``hidden``,
``dropout``, ``wd``, ``lr``, ``epochs``, ``members``, ``noise`` (Gaussian noise on standardised
instances), ``indrop`` (input dropout), ``instdrop`` (instance dropout: each instance of a training
batch masked out with this probability, one kept per bag; biodl's ``data.bags.instance_dropout``),
``clip`` (clip standardised features to ±clip), ``slog`` (sign·log1p of standardised features),
``rep`` (MIDatasets fold repetition, default 1), ``folds`` (outer folds to score, with ``outer``), ``ple``
(piecewise-linear encoding of the standardised instance features on this many quantile bins of the training
instances, as biodl's ``mlp`` ``numeric_encoding: ple``), ``mixple`` (that many bins for a second set of
``members`` networks on the encoded features, trained beside the plain ones and averaged with them).
Every record also holds the scores with the members averaged in logit space (``*_logit``; biodl's
``mil`` forward averages the members' logits, this replica's main score their probabilities).
"""

import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

torch.set_num_threads(1)
D = str(Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "mil" / "midatasets") + "/"


def load(name, rep=1):
    df = pd.read_csv(D + f"{name}.csv.gz")
    f = pd.read_csv(D + f"{name}_cv_folds.csv").set_index("bag_id")[f"rep{rep}_test_fold"]
    feats = [c for c in df.columns if c.startswith("f")]
    bags = []
    for b, g in df.groupby("bag_id", sort=True):
        bags.append((g[feats].to_numpy(np.float32), int(g.bag_label.iloc[0]), int(f[b])))
    X = [b[0] for b in bags]
    y = np.array([b[1] for b in bags])
    fold = np.array([b[2] for b in bags])
    y = (y > 0).astype(np.float32)
    return X, y, fold


def pack(X, idx, mu, sd, cfg=None):
    cfg = cfg or {}
    M = max(len(X[i]) for i in idx)
    F = X[0].shape[1]
    out = np.zeros((len(idx), M, F), np.float32)
    mask = np.zeros((len(idx), M), np.float32)
    for j, i in enumerate(idx):
        z = (X[i] - mu) / sd
        if cfg.get("clip"):
            z = np.clip(z, -cfg["clip"], cfg["clip"])
        if cfg.get("slog"):
            z = np.sign(z) * np.log1p(np.abs(z))
        out[j, : len(X[i])] = z
        mask[j, : len(X[i])] = 1
    if cfg.get("edges") is not None:
        out = encode(out, cfg["edges"])
    return torch.from_numpy(out), torch.from_numpy(mask)


def ple_edges(z, bins):
    """Per feature ``(bins + 1, F)`` quantiles of the standardised training instances ``z`` ``(N, F)``."""
    return np.quantile(z, np.linspace(0, 1, bins + 1), axis=0)


def encode(x, edges):
    """``(B, M, F)`` → ``(B, M, F × bins)``: repeated edges merged per feature (unused bins read 0)."""
    B, M, F = x.shape
    bins = edges.shape[0] - 1
    lo, w = np.zeros((F, bins)), np.ones((F, bins))
    floor, ceil = np.zeros((F, bins)), np.zeros((F, bins))
    for f in range(F):
        e = np.unique(edges[:, f])
        n = len(e) - 1
        if n < 1:
            continue
        lo[f, :n], w[f, :n], ceil[f, :n] = e[:-1], np.diff(e), 1.0
        floor[f, 0], ceil[f, n - 1] = -np.inf, np.inf
    v = (x[..., None] - lo) / w
    return np.minimum(np.maximum(v, floor), ceil).reshape(B, M, F * bins).astype(np.float32)


def glorot(E, a, b):
    lim = np.sqrt(6 / (a + b))
    return nn.Parameter(torch.empty(E, a, b).uniform_(-lim, lim))


class Ens(nn.Module):
    def __init__(s, F, cfg):
        super().__init__()
        E = cfg["members"]
        s.cfg = cfg
        sizes = [F] + cfg["hidden"]
        s.W = nn.ParameterList([glorot(E, a, b) for a, b in itertools.pairwise(sizes)])
        s.B = nn.ParameterList([nn.Parameter(torch.zeros(E, 1, b)) for b in sizes[1:]])
        d = sizes[-1]
        pool = cfg["pool"]
        s.pools = [pool] * E if pool != "mixed" else [["mean", "max", "attention"][i % 3] for i in range(E)]
        dz = 2 * d if pool == "meanmax" else d
        s.V = glorot(E, d, 64)
        s.bV = nn.Parameter(torch.zeros(E, 1, 64))  # biodl's AttentionPool: V and U are nn.Linear (zero bias)
        s.U = glorot(E, d, 64) if pool == "gated" else None
        s.bU = nn.Parameter(torch.zeros(E, 1, 64)) if pool == "gated" else None
        s.w = glorot(E, 64, 1)
        s.Wh = glorot(E, dz, 1)
        s.bh = nn.Parameter(torch.zeros(E, 1, 1))
        s.drop = nn.Dropout(cfg["dropout"])
        s.indrop = nn.Dropout(cfg.get("indrop", 0.0))

    def forward(s, x, mask):  # x (B,M,F) -> (E,B)
        Bn, M, F = x.shape
        E = s.W[0].shape[0]
        h = s.indrop(x.reshape(1, Bn * M, F).expand(E, -1, -1))
        if s.training and s.cfg.get("noise", 0) > 0:
            h = h + s.cfg["noise"] * torch.randn_like(h)
        for W, b in zip(s.W, s.B):
            h = torch.relu(torch.baddbmm(b, h, W))
        h = s.drop(h).reshape(E, Bn, M, -1)
        m = mask.unsqueeze(0).unsqueeze(-1)
        need = set(s.pools)
        mean = mx = att = None
        if need & {"mean", "meanmax"}:
            mean = (h * m).sum(2) / m.sum(2).clamp_min(1)
        if need & {"max", "meanmax"}:
            mx = torch.where(m > 0.5, h, torch.full_like(h, -1e30)).max(2).values
        if need & {"attention", "gated"}:
            g = torch.tanh(torch.einsum("ebmd,edl->ebml", h, s.V) + s.bV.unsqueeze(1))
            if s.U is not None:  # gated attention (Ilse et al. 2018, eq. 9)
                g = g * torch.sigmoid(torch.einsum("ebmd,edl->ebml", h, s.U) + s.bU.unsqueeze(1))
            sc = torch.einsum("ebml,elo->ebmo", g, s.w).squeeze(-1)
            sc = sc.masked_fill(mask.unsqueeze(0) < 0.5, -1e30)
            a = torch.softmax(sc, 2)
            att = torch.einsum("ebm,ebmd->ebd", a, h)
        if len(need) == 1:
            p = s.pools[0]
            z = {"mean": mean, "max": mx, "attention": att, "gated": att}.get(p)
            if p == "meanmax":
                z = torch.cat([mean, mx], -1)
            return (torch.bmm(z, s.Wh) + s.bh).squeeze(-1)
        zs = []
        for e, p in enumerate(s.pools):
            z = {"mean": mean[e], "max": mx[e], "attention": att[e]}.get(p)
            if p == "meanmax":
                z = torch.cat([mean[e], mx[e]], -1)
            zs.append(z)
        z = torch.stack(zs)
        return (torch.bmm(z, s.Wh) + s.bh).squeeze(-1)


def fit_predict(X, y, tr, te, cfg, seed):
    if cfg.get("mixple"):  # plain and encoded member sets, probabilities averaged
        a = fit_predict(X, y, tr, te, {**cfg, "mixple": 0}, seed)
        b = fit_predict(X, y, tr, te, {**cfg, "mixple": 0, "ple": cfg["mixple"]}, seed + 1000)
        return (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    allx = np.concatenate([X[i] for i in tr])
    mu = allx.mean(0)
    sd = allx.std(0)
    sd[sd == 0] = 1
    if not cfg.get("std", True):
        mu = mu * 0
        sd = sd * 0 + 1
    if cfg.get("ple"):
        cfg = {**cfg, "edges": None}
        cfg["edges"] = ple_edges((allx - mu) / sd, cfg["ple"])
    xt, mt = pack(X, tr, mu, sd, cfg)
    yt = torch.from_numpy(y[tr])
    net = Ens(xt.shape[2], cfg)
    opt = torch.optim.Adam(net.parameters(), lr=cfg["lr"], weight_decay=cfg["wd"])
    bs = cfg.get("bs", 8)
    lossf = nn.BCEWithLogitsLoss()
    for _ep in range(cfg["epochs"]):
        net.train()
        perm = rng.permutation(len(tr))
        for k in range(0, len(tr), bs):
            b = perm[k : k + bs]
            mb = mt[b]
            if cfg.get("instdrop", 0) > 0:  # drop instances, keep at least one per bag
                keep = (torch.rand(mb.shape) >= cfg["instdrop"]).float() * mb
                first = torch.argmax(mb * torch.rand(mb.shape), dim=1)
                keep[torch.arange(len(b)), first] = 1.0
                mb = keep
            L = int(mt[b].sum(1).max())
            out = net(xt[b][:, :L], mb[:, :L])
            loss = lossf(out, yt[b].expand_as(out)) * out.shape[0]
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    xe, me = pack(X, te, mu, sd, cfg)
    with torch.no_grad():
        out = net(xe, me)  # (members, bags) logits
    # members averaged in probability space (this replica's score) and in logit space (biodl's forward)
    return torch.sigmoid(out).mean(0).numpy(), torch.sigmoid(out.mean(0)).numpy()


BASE = dict(pool="mean", hidden=[128, 64], dropout=0.25, wd=1e-3, lr=5e-4, epochs=50, members=5)


def run(name, cfgname, cfg, outer_only=False, seed=0):
    X, y, fold = load(name, cfg.get("rep", 1))
    res = {"set": name, "cfg": cfgname, "inner": [], "outer": [], "inner_logit": [], "outer_logit": []}
    for k in sorted(set(fold)):
        tr = np.where(fold != k)[0]
        te = np.where(fold == k)[0]
        if outer_only:
            if cfg.get("folds") and k not in cfg["folds"]:
                continue
            p, pl = fit_predict(X, y, tr, te, cfg, seed + k)
            res["outer"].append(float(((p > 0.5) == (y[te] > 0.5)).mean()))
            res["outer_logit"].append(float(((pl > 0.5) == (y[te] > 0.5)).mean()))
            continue
        if k not in (1, 4, 7):
            continue
        # inner 3-fold CV on the 9 training folds (folds grouped by rank mod 3)
        others = [f for f in sorted(set(fold)) if f != k]
        accs, accs_logit = [], []
        for g in range(3):
            vf = set(others[g::3])
            itr = np.array([i for i in tr if fold[i] not in vf])
            ite = np.array([i for i in tr if fold[i] in vf])
            q, ql = fit_predict(X, y, itr, ite, cfg, seed + 100 * k + g)
            accs.append(float(((q > 0.5) == (y[ite] > 0.5)).mean()) * len(ite))
            accs_logit.append(float(((ql > 0.5) == (y[ite] > 0.5)).mean()) * len(ite))
        res["inner"].append(sum(accs) / len(tr))
        res["inner_logit"].append(sum(accs_logit) / len(tr))
    return res


if __name__ == "__main__":
    cfgs = json.loads(sys.argv[1])
    sets = sys.argv[2].split(",")
    outp = sys.argv[3]
    outer_only = len(sys.argv) > 4 and sys.argv[4] == "outer"
    for cname, over in cfgs.items():
        cfg = dict(BASE, **over)
        for s in sets:
            t = time.time()
            r = run(s, cname, cfg, outer_only)
            r["time"] = time.time() - t
            r["inner_mean"] = float(np.mean(r["inner"])) if r["inner"] else None
            r["outer_mean"] = float(np.mean(r["outer"])) if r["outer"] else None
            r["inner_mean_logit"] = float(np.mean(r["inner_logit"])) if r["inner_logit"] else None
            r["outer_mean_logit"] = float(np.mean(r["outer_logit"])) if r["outer_logit"] else None
            with open(outp, "a") as f:
                f.write(json.dumps(r) + "\n")
            print(cname, s, r["inner_mean"], r["outer_mean"], round(r["time"]), flush=True)
