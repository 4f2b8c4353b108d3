"""Per-atom attributions of molecule models, drawn on the molecule with RDKit.

* **Graph networks** (D-MPNN): gradient × input of the one-hot atom features, summed per atom
  (how much each atom's description pushes the output).
* **Networks on molecule images** (Chemception): signed Grad-CAM on the grid, summed over each
  atom's pixels (:mod:`biodl.explain.molecule_image`).
* **Dense networks on fingerprints**: gradient × input of every fingerprint bit, spread evenly
  over the atoms of the Morgan environments that set the bit (centre atom and its neighbourhood
  up to the environment's radius). Descriptor inputs (RDKit 2-D, MACCS) have no atom mapping;
  their share of the total attribution is returned as ``non_atom``.
* **Averages of both on packed graphs** (``model.name: auto`` for molecules): each network's
  attributions as above (a dense network reads the graphs' descriptor slots), weighted by its share
  of the mean.

Positive weights (green) raise the output (probability or predicted value), negative (red) lower it.

Example
-------
>>> from biodl.bundle import load
>>> res = explain_molecules(load("runs/esol"), ["CCO", "c1ccccc1O"], target=0, out_dir="figs")
>>> res[1].weights        # one value per heavy atom
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from biodl.data.molecule.featurizers import Featurizer, _Morgan
from biodl.data.molecule.graph import BASE_WIDTH
from biodl.data.molecule.parse import mols_from_smiles
from biodl.errors import ConfigError


@dataclass
class AtomAttribution:
    """Attribution of one molecule.

    Attributes
    ----------
    smiles
        Canonical SMILES explained.
    weights
        ``(n_atoms,)`` per-heavy-atom attribution.
    non_atom
        Attribution carried by inputs without an atom mapping (descriptors).
    prediction
        The model output for the target (probability or value on the training scale).
    image
        The drawing, when written.
    """

    smiles: str
    weights: np.ndarray
    non_atom: float
    prediction: float
    image: Path | None = None


def _members(model: nn.Module) -> list[nn.Module]:
    members = getattr(model, "members", None)
    return list(members) if members is not None else [model]


def graph_attributions(model: nn.Module, X: np.ndarray, target: int) -> list[np.ndarray]:
    """Gradient × input per atom for packed graphs ``(N, R, W)`` (averaged over ensemble members)."""
    from biodl.models.mpnn import DMPNN, unpack_batch

    x = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    total: np.ndarray | None = None
    for m in _members(model):
        if not isinstance(m, DMPNN):
            raise ConfigError("graph attributions need a D-MPNN (model 'dmpnn')")
        m.eval()
        batch = unpack_batch(x, m.layout)
        f_atoms = batch.f_atoms.clone().requires_grad_(True)
        out = m.forward_from_atoms(x, f_atoms)
        (grad,) = torch.autograd.grad(out[:, target].sum(), f_atoms)
        per_atom = (grad * f_atoms).sum(dim=1).detach().numpy()
        total = per_atom if total is None else total + per_atom
    assert total is not None
    total = total / len(_members(model))
    counts = x[:, 0, 0].long().tolist()
    return list(np.split(total, np.cumsum(counts)[:-1]))


def _leaves(model: nn.Module, weight: float = 1.0) -> list[tuple[nn.Module, float]]:
    """The networks inside (nested) ensembles with their share of the mean output."""
    members = getattr(model, "members", None)
    if members is None:
        return [(model, weight)]
    return [leaf for m in members for leaf in _leaves(m, weight / len(members))]


def mixed_graph_attributions(
    model: nn.Module, X: np.ndarray, mols: Sequence[Any], featurizers: Sequence[Featurizer], target: int
) -> list[tuple[np.ndarray, float]]:
    """``(per-atom weights, non-atom share)`` of networks on packed graphs ``(N, R, W)``: D-MPNNs (gradient ×
    input of the atom features) and dense networks reading the graphs' descriptor slots (fingerprint bits
    spread over their atoms), weighted by their share of an averaged blend (``model.name: auto``)."""
    from biodl.models.ffn import FFN
    from biodl.models.mpnn import DMPNN

    per = [(np.zeros(m.GetNumAtoms()), 0.0) for m in mols]
    slots = np.ascontiguousarray(X[:, :, BASE_WIDTH:]).reshape(len(X), -1)
    for leaf, share in _leaves(model):
        if isinstance(leaf, DMPNN):
            parts = [(w, 0.0) for w in graph_attributions(leaf, X, target)]
        elif isinstance(leaf, FFN) and leaf.graph_slots:
            dense = nn.Sequential(leaf.body, leaf.head)
            parts = vector_attributions(dense, slots, mols, featurizers, target)
        else:
            raise ConfigError("graph attributions need a D-MPNN (model 'dmpnn') or a dense network on its descriptor slots")
        per = [(w + share * pw, n + share * pn) for (w, n), (pw, pn) in zip(per, parts)]
    return per


def _environment_atoms(mol: Any, centre: int, radius: int) -> list[int]:
    from rdkit import Chem

    if radius == 0:
        return [centre]
    bonds = Chem.FindAtomEnvironmentOfRadiusN(mol, radius, centre)
    atoms = {centre}
    for b in bonds:
        bond = mol.GetBondWithIdx(b)
        atoms.update((bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()))
    return sorted(atoms)


def vector_attributions(
    model: nn.Module, X: np.ndarray, mols: Sequence[Any], featurizers: Sequence[Featurizer], target: int
) -> list[tuple[np.ndarray, float]]:
    """``(per-atom weights, non-atom share)`` of a dense network on concatenated feature vectors."""
    x = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)).requires_grad_(True)
    model.eval()
    out = model(x)
    (grad,) = torch.autograd.grad(out[:, target].sum(), x)
    gi = (grad * x).detach().numpy()
    results = []
    for i, mol in enumerate(mols):
        w = np.zeros(mol.GetNumAtoms())
        non_atom = 0.0
        offset = 0
        for f in featurizers:
            block = gi[i, offset : offset + f.dim]
            if isinstance(f, _Morgan):
                for bit, envs in f.bit_atoms(mol).items():
                    atoms = [a for c, r in envs for a in _environment_atoms(mol, c, r)]
                    if atoms:
                        np.add.at(w, atoms, block[bit] / len(atoms))
            else:
                non_atom += float(block.sum())
            offset += f.dim
        results.append((w, non_atom))
    return results


def draw_attributions(mol: Any, weights: np.ndarray, path: str | Path, size: int = 400) -> Path:
    """Draw ``weights`` (one per atom) on the molecule as a similarity map (PNG)."""
    from rdkit.Chem.Draw import SimilarityMaps, rdMolDraw2D

    d = rdMolDraw2D.MolDraw2DCairo(size, size)
    w = [float(v) for v in weights]
    if len(w) == 1 or not np.any(w):
        w = [v + 1e-6 for v in w]  # a flat map cannot be contoured
    SimilarityMaps.GetSimilarityMapFromWeights(mol, w, draw2d=d, colorMap="PiYG")
    d.FinishDrawing()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(d.GetDrawingText())
    return out


def explain_molecules(
    bundle: Any, smiles: Sequence[str], *, target: int | str = 0, out_dir: str | Path | None = None
) -> list[AtomAttribution]:
    """Per-atom attributions of a trained molecule bundle for ``smiles`` (drawn to ``out_dir`` if given).

    Parameters
    ----------
    bundle
        A :class:`biodl.bundle.Bundle` trained on ``--data-type molecule``.
    target
        Output index or target name (e.g. ``"SR-p53"``).
    """
    modality = bundle.modality
    if getattr(modality, "name", "") != "molecule":
        raise ConfigError("explain_molecules needs a model trained on molecules")
    t = bundle.target_names.index(target) if isinstance(target, str) else int(target)
    canon = modality.parse_inputs(list(smiles))
    mols = mols_from_smiles(list(canon))
    X = modality.transform(canon)
    preds = bundle.predict_arrays(X)[:, t]
    if getattr(modality, "uses_image", False):
        from biodl.explain.molecule_image import image_attributions

        per = [(w, 0.0) for w in image_attributions(bundle.model, X, mols, modality.grid, t)]
    elif modality.uses_graph:
        per = mixed_graph_attributions(bundle.model, X, mols, modality.featurizers, t)
    else:
        per = vector_attributions(bundle.model, X, mols, modality.featurizers, t)
    out: list[AtomAttribution] = []
    for i, ((w, non_atom), mol) in enumerate(zip(per, mols)):
        img = None
        if out_dir is not None:
            img = draw_attributions(mol, w, Path(out_dir) / f"atoms_{i}.png")
        out.append(AtomAttribution(str(canon[i]), np.asarray(w, dtype=np.float64), float(non_atom), float(preds[i]), img))
    return out


def cmd_explain_molecules(args: Any) -> int:
    """``biodl explain`` for molecule models: per-atom attributions of the SMILES in ``--data-path``.

    Writes ``OUTPUT_DIR/atom_attributions.csv`` (``id, smiles, target, atom, element, score``) and
    per-atom drawings ``OUTPUT_DIR/figures/<row>_<target>.png`` for the first ``--plots`` molecules.
    ``--target`` is a task name or index (default: every output).
    """
    import pandas as pd

    from biodl.bundle import load
    from biodl.inference import load_data

    if getattr(args, "method", None) is not None:
        raise ConfigError(
            f"--method {args.method}: molecule models have one per-atom method (Grad-CAM for chemception, "
            "gradient x input otherwise); leave --method out"
        )
    bundle = load(args.model_path)
    data = load_data(bundle, list(args.data_path), {}, require_targets=False)
    n = max(1, int(getattr(args, "max_sequences", 100) or 100))
    smiles = [str(s) for s in data.X[:n]]
    ids = [str(i) for i in data.ids[:n]]
    names = list(bundle.target_names)
    if args.target is None:
        targets = list(range(int(bundle.model.num_outputs)))
    elif args.target in names:
        targets = [names.index(args.target)]
    elif str(args.target).isdigit() and int(args.target) < int(bundle.model.num_outputs):
        targets = [int(args.target)]
    else:
        raise ConfigError(f"--target {args.target!r}: not an output of the model ({names})")
    out = Path(args.output_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    mols = mols_from_smiles(smiles)
    rows: list[dict[str, Any]] = []
    n_fig = 0
    for t in targets:
        tname = names[t] if t < len(names) else str(t)
        res = explain_molecules(bundle, smiles, target=t)
        for i, (r, mol) in enumerate(zip(res, mols)):
            for a, w in enumerate(r.weights):
                rows.append({"id": ids[i], "smiles": r.smiles, "target": tname, "atom": a,
                             "element": mol.GetAtomWithIdx(a).GetSymbol(), "score": float(w)})  # fmt: skip
            if i < int(getattr(args, "plots", 10)):
                safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{ids[i]}_{tname}")
                draw_attributions(mol, r.weights, out / "figures" / f"{safe}.png")
                n_fig += 1
    pd.DataFrame(rows).to_csv(out / "atom_attributions.csv", index=False)
    print(f"per-atom attributions of {len(smiles)} molecule(s) for {len(targets)} output(s) written to "
          f"{out / 'atom_attributions.csv'}; {n_fig} drawing(s) in {out / 'figures'}")  # fmt: skip
    return 0
