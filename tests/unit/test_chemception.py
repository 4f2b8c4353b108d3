"""Chemception: molecule images against RDKit's coordinates and properties, oversized molecules,
rotation augmentation, network shapes, Grad-CAM mapped to atoms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("rdkit")

from rdkit import Chem
from rdkit.Chem import rdDepictor, rdPartialCharges

from biodl.config import DataConfig
from biodl.data.molecule.image import CHANNELS, GridSpec, RandomRotation, draw, layout
from biodl.data.molecule.modality import MoleculeModality
from biodl.errors import DataError
from biodl.explain.molecule_image import atom_scores, image_attributions, pixel_owners
from biodl.models import build_model

GRID = GridSpec(80, 0.5)
ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"


def _rdkit_xy(mol: Chem.Mol) -> np.ndarray:
    m = Chem.Mol(mol)
    rdDepictor.Compute2DCoords(m, canonOrient=True)
    xy = m.GetConformer().GetPositions()[:, :2]
    return xy - (xy.min(0) + xy.max(0)) / 2


def test_atoms_sit_at_their_coordinates_with_their_properties() -> None:
    mol = Chem.MolFromSmiles(ASPIRIN)
    img, scale, px = draw(mol, GRID)
    assert img.shape == (len(CHANNELS), 80, 80) and scale == 1.0
    xy = _rdkit_xy(mol)
    np.testing.assert_allclose(layout(mol), xy, atol=1e-9)
    expected = np.rint(xy / 0.5).astype(int) + 40  # (x, y) → column, row
    np.testing.assert_array_equal(px[:, 1], expected[:, 0])
    np.testing.assert_array_equal(px[:, 0], expected[:, 1])
    ref = Chem.Mol(mol)
    rdPartialCharges.ComputeGasteigerCharges(ref)
    for a in ref.GetAtoms():
        r, c = px[a.GetIdx()]
        assert img[1, r, c] == a.GetAtomicNum()
        assert img[2, r, c] == pytest.approx(a.GetDoubleProp("_GasteigerCharge"), abs=1e-6)
        assert img[3, r, c] == {"SP": 1, "SP2": 2, "SP3": 3}[str(a.GetHybridization())]
    # atom channels are empty away from atoms
    atom_mask = np.zeros((80, 80), bool)
    atom_mask[px[:, 0], px[:, 1]] = True
    assert not img[1:, ~atom_mask].any()
    assert (img[1] > 0).sum() == mol.GetNumAtoms()


def test_bond_pixels_carry_bond_order() -> None:
    mol = Chem.MolFromSmiles("C=CC#N")  # double, single, triple
    img, _, px = draw(mol, GRID)
    for b in mol.GetBonds():
        p, q = px[b.GetBeginAtomIdx()], px[b.GetEndAtomIdx()]
        mid = np.rint((p + q) / 2).astype(int)
        assert img[0, mid[0], mid[1]] == b.GetBondTypeAsDouble()
    benzene = Chem.MolFromSmiles("c1ccccc1")
    img_b, _, px_b = draw(benzene, GRID)
    values = set(np.unique(img_b[0][img_b[0] > 0]).tolist())
    assert values == {1.5}  # aromatic
    # bonds are drawn as lines: at least the pixels between the two atoms, none far away
    assert (img_b[0] > 0).sum() >= 6 * 2
    assert img_b[0].any(axis=0).sum() <= np.ptp(px_b[:, 1]) + 1


def test_same_smiles_same_image_and_modality_transform() -> None:
    mod = MoleculeModality(DataConfig(type="molecule", molecule={"featurizer": ["chemception"]}))
    X = mod.transform(mod.parse_inputs([ASPIRIN, "CCO"]))
    assert X.shape == (2, 4, 80, 80)
    again = mod.transform(mod.parse_inputs([ASPIRIN]))
    np.testing.assert_array_equal(X[0], again[0])
    np.testing.assert_allclose(X[0].astype(np.float32), draw(Chem.MolFromSmiles(ASPIRIN), GRID)[0], atol=2e-3)
    meta, _ = mod.state()
    assert meta["image_grid"] == {"size": 80, "resolution": 0.5}


def test_oversized_molecules_are_scaled_and_reported_or_refused(tmp_path) -> None:
    long_chain = "C" * 40  # ~50 Å in 2-D: wider than the 40 Å grid
    img, scale, px = draw(Chem.MolFromSmiles(long_chain), GRID)
    assert 0 < scale < 1 and px.min() >= 0 and px.max() < 80 and (img[1] == 6).sum() >= 35
    path = tmp_path / "m.csv"
    path.write_text(f"smiles,y\nCCO,1.0\n{long_chain},2.0\nc1ccccc1,3.0\n")
    mod = MoleculeModality(DataConfig(type="molecule", task="regression", target_columns=["y"],
                                      molecule={"featurizer": ["chemception"]}))  # fmt: skip
    data = mod.load([str(path)])
    changed = data.summary["changed_rows"]
    assert len(changed) == 1 and changed[0]["row"] == 2 and "40 Å" in changed[0]["reason"]
    assert data.summary["image_grid"]["oversized"] == 1
    strict = MoleculeModality(DataConfig(type="molecule", task="regression", target_columns=["y"],
                                         molecule={"featurizer": ["chemception"], "grid_oversize": "error"}))  # fmt: skip
    with pytest.raises(DataError, match=r"1 molecule\(s\) wider than the 40 Å image grid \(rows .*m\.csv row 2\)"):
        strict.load([str(path)])


def test_rotation_keeps_pixel_values_and_moves_atoms() -> None:
    X = torch.from_numpy(draw(Chem.MolFromSmiles(ASPIRIN), GRID)[0][None].repeat(4, 0)).half()
    out = RandomRotation()(X, generator=torch.Generator().manual_seed(0))
    assert out.shape == X.shape and out.dtype == torch.float32
    assert set(torch.unique(out[:, 1]).tolist()) <= set(torch.unique(X[:, 1].float()).tolist())
    assert sum(not torch.equal(out[i], X[i].float()) for i in range(4)) >= 3  # seed 0: one angle is about 1°
    assert (out[:, 1] == 8).sum(dim=(1, 2)).min() >= 3  # oxygens survive (nearest-pixel sampling)


@pytest.mark.parametrize("stride", [2, 4])
@pytest.mark.parametrize("blocks", [[1, 1, 1], [2, 0, 1]])
def test_network_shapes(stride: int, blocks: list[int]) -> None:
    net = build_model("chemception", (4, 80, 80), 12, {"stem_stride": stride, "blocks": blocks, "filters": 8})
    x = torch.rand(3, 4, 80, 80).half()
    assert net(x).shape == (3, 12)
    assert net.feature_maps(x).shape == (3, net.out_channels, 80 // (4 * stride), 80 // (4 * stride))
    assert net.embed(x).shape == (3, net.out_channels)


def test_rot90_tta_averages_the_four_rotations_and_is_invariant_to_them() -> None:
    torch.manual_seed(0)
    net = build_model("chemception", (4, 40, 40), 2, {"filters": 8, "tta": "rot90"}).eval()
    x = torch.rand(3, 4, 40, 40)
    with torch.no_grad():
        views = [net.classify(net.feature_maps(torch.rot90(x, k, dims=(-2, -1)))) for k in range(4)]
        out = net(x)
        torch.testing.assert_close(out, torch.stack(views).mean(0), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(net(torch.rot90(x, 1, dims=(-2, -1))), out, rtol=1e-5, atol=1e-6)
        assert not torch.allclose(views[0], out, atol=1e-4)  # the upright image alone differs
        net.params.tta = "none"
        torch.testing.assert_close(net(x), views[0])
    net.params.tta = "rot90"
    net.train()
    assert net(x).shape == (3, 2)  # training: one view (the augmentation rotates)


def test_rot90_tta_exports_to_onnx_with_parity() -> None:
    from biodl.engine import TorchEngine
    from biodl.export.graph import InferenceNet, onnx_runner, to_onnx
    from biodl.export.parity import Sample, check_parity

    torch.manual_seed(0)
    net = InferenceNet(build_model("chemception", (4, 40, 40), 2, {"filters": 8, "tta": "rot90"}), "binary").eval()
    X = np.random.default_rng(0).random((4, 4, 40, 40), dtype=np.float32)
    report = check_parity(
        TorchEngine(net).predict, onnx_runner(to_onnx(net, model_name="chemception")), Sample(X, None, "x", real=False)
    )
    assert report.passed, report.summary()


def test_gradcam_scores_every_atom_and_sums_its_pixels() -> None:
    mol = Chem.MolFromSmiles(ASPIRIN)
    img, _, px = draw(mol, GRID)
    _pts, owner = pixel_owners(img, px)
    assert set(owner.tolist()) == set(range(mol.GetNumAtoms()))
    cam = np.zeros((80, 80))
    cam[px[3, 0], px[3, 1]] = 5.0  # only atom 3's own pixel lights up
    w = atom_scores(cam, img, px)
    assert w[3] == 5.0 and np.abs(np.delete(w, 3)).sum() == 0
    net = build_model("chemception", (4, 80, 80), 2, {"filters": 8})
    scores = image_attributions(net, img[None], [mol], GRID, target=1)
    assert scores[0].shape == (mol.GetNumAtoms(),) and np.isfinite(scores[0]).all() and np.abs(scores[0]).sum() > 0


def test_gradcam_of_a_rot90_network_turns_with_the_image() -> None:
    """With ``tta: rot90`` the score is the rotations' mean, so its map is each rotation's map turned back:
    the map of a turned image is the turned map (the upright view's map alone would not be)."""
    from biodl.explain.molecule_image import gradcam_maps

    torch.manual_seed(0)
    net = build_model("chemception", (4, 40, 40), 2, {"filters": 8, "tta": "rot90"}).eval()
    X = np.random.default_rng(1).random((2, 4, 40, 40), dtype=np.float32)
    cam = gradcam_maps(net, X, target=1)
    for k in (1, 2, 3):
        turned = gradcam_maps(net, np.rot90(X, k, axes=(-2, -1)).copy(), target=1)
        np.testing.assert_allclose(turned, np.rot90(cam, k, axes=(-2, -1)), rtol=1e-4, atol=1e-6)
    net.params.tta = "none"  # the upright view's map: not the same map
    assert not np.allclose(gradcam_maps(net, X, target=1), cam, atol=1e-6)
