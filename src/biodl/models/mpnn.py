"""Directed message-passing neural network (D-MPNN, Yang et al., J. Chem. Inf. Model. 2019) in plain PyTorch.

Messages live on directed bonds. With atom features ``x_v``, bond features ``e_vw`` and depth ``T``:

.. math::

    h^0_{vw} = \\tau(W_i [x_v \\| e_{vw}]), \\quad
    m^{t+1}_{vw} = \\sum_{k \\in N(v) \\setminus w} h^t_{kv}, \\quad
    h^{t+1}_{vw} = \\tau(h^0_{vw} + W_m m^{t+1}_{vw})

then atom states :math:`h_v = \\tau(W_a [x_v \\| \\sum_{k \\in N(v)} h^T_{kv}])` are pooled per molecule
(mean, sum or norm = sum / 100), optionally batch-normalised (``batch_norm``, chemprop v2's default;
off here: on ESOL's validation splits it made training unstable), concatenated with the molecule's
extra features (descriptors in the graph's slots), and a feed-forward network maps them to the outputs.

Inputs are the packed graphs of :mod:`biodl.data.molecule.graph`, ``(N, R, W)``; each batch is
unpacked into flat atom and directed-bond tensors, so padding costs no compute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from biodl.data.molecule.graph import (
    ATOM_FDIM,
    ATOM_FIELDS,
    BASE_WIDTH,
    BOND_COL,
    BOND_FDIM,
    BOND_FIELDS,
    N_ATOM_COLS,
    GraphLayout,
)
from biodl.models.base import MODELS, BiodlModel, ModelParams
from biodl.models.init import InitName, initialize
from biodl.models.layers import Activation, activation


class DMPNNParams(ModelParams):
    """Hyper-parameters of :class:`DMPNN` (chemprop's defaults where they exist)."""

    hidden_size: int = Field(default=300, ge=1, description="message and atom state size")
    depth: int = Field(default=3, ge=1, description="message-passing steps")
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    aggregation: Literal["mean", "sum", "norm"] = "mean"
    activation: Activation = "relu"
    bias: bool = False
    ffn_hidden_sizes: list[int] = Field(default_factory=lambda: [300])
    ffn_dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    batch_norm: bool = Field(
        default=False, description="batch-normalise the pooled molecule vector (chemprop v2's default; unstable on small sets)"
    )
    descriptor_batch_norm: bool = Field(default=False, description="batch-normalise the extra features before the FFN")
    init: InitName = "glorot_uniform"
    extra_features: list[str] | None = Field(
        default=None,
        description="featurisers whose extra features (descriptor slots) the network reads, e.g. [rdkit2d] when the "
        "graphs also carry a fingerprint for an averaged FFN; null: all",
    )


@dataclass
class GraphBatch:
    """A batch of graphs as flat tensors.

    Attributes
    ----------
    f_atoms
        ``(A, ATOM_FDIM)`` one-hot atom features of all atoms in the batch.
    f_bonds
        ``(E, BOND_FDIM)`` features of the ``E = 2 · bonds`` directed bonds (``2b``: begin → end, ``2b+1`` reverse).
    src, dst
        ``(E,)`` atom indices of each directed bond.
    mol_of_atom
        ``(A,)`` molecule index of each atom.
    n_atoms
        ``(N,)`` atoms per molecule.
    descriptors
        ``(N, D)`` extra features (``D`` may be 0).
    """

    f_atoms: torch.Tensor
    f_bonds: torch.Tensor
    src: torch.Tensor
    dst: torch.Tensor
    mol_of_atom: torch.Tensor
    n_atoms: torch.Tensor
    descriptors: torch.Tensor


def _one_hot_fields(codes: torch.Tensor, fields: tuple[tuple[str, int], ...]) -> torch.Tensor:
    """Integer code columns → concatenated one-hots (2-class fields as one 0/1 column, 1-class as a float)."""
    parts = []
    for j, (_, n) in enumerate(fields):
        col = codes[:, j]
        if n <= 2:
            parts.append(col.unsqueeze(1).float())
        else:
            parts.append(F.one_hot(col.long().clamp(0, n - 1), n).float())
    return torch.cat(parts, dim=1)


def unpack_batch(x: torch.Tensor, layout: GraphLayout) -> GraphBatch:
    """Packed graphs ``(N, R, W)`` → :class:`GraphBatch`."""
    n = x.shape[0]
    n_atoms = x[:, 0, 0].long()
    n_bonds = x[:, 0, 1].long()
    slots = torch.arange(layout.capacity, device=x.device)
    body = x[:, 1:, :]
    atom_mask = slots.unsqueeze(0) < n_atoms.unsqueeze(1)
    bond_mask = slots.unsqueeze(0) < n_bonds.unsqueeze(1)
    f_atoms = _one_hot_fields(body[atom_mask][:, :N_ATOM_COLS], ATOM_FIELDS)
    offsets = torch.cumsum(n_atoms, 0) - n_atoms
    bonds = body[bond_mask][:, BOND_COL:BASE_WIDTH]
    mol_of_bond = torch.arange(n, device=x.device).repeat_interleave(n_bonds)
    begin = bonds[:, 0].long() + offsets[mol_of_bond]
    end = bonds[:, 1].long() + offsets[mol_of_bond]
    fb = _one_hot_fields(bonds[:, 2:], BOND_FIELDS)
    src = torch.stack([begin, end], 1).reshape(-1)
    dst = torch.stack([end, begin], 1).reshape(-1)
    f_bonds = fb.repeat_interleave(2, dim=0)
    descriptors = x[:, :, BASE_WIDTH:].reshape(n, -1) if layout.slots else x.new_zeros((n, 0))
    mol_of_atom = torch.arange(n, device=x.device).repeat_interleave(n_atoms)
    return GraphBatch(f_atoms, f_bonds, src, dst, mol_of_atom, n_atoms, descriptors)


def _sum_rows(values: torch.Tensor, index: torch.Tensor, n_rows: int) -> torch.Tensor:
    """``out[i] = sum of values[j] with index[j] == i``, ``(n_rows, H)``.

    ``scatter_add`` rather than ``index_add_``: the ONNX exporter turns ``index_add_`` into a
    ScatterElements without reduction, which silently keeps one of several rows sent to the
    same atom; ``scatter_add`` becomes ScatterElements with ``reduction="add"`` (opset >= 16).
    """
    return values.new_zeros((n_rows, values.shape[1])).scatter_add(0, index.unsqueeze(1).expand_as(values), values)


def _reverse_pairs(h: torch.Tensor) -> torch.Tensor:
    """Rows ``(1, 0, 3, 2, ...)`` of ``h``: the state of every directed bond's reverse bond."""
    return h.reshape(-1, 2, h.shape[1]).flip(1).reshape(h.shape)


@MODELS.register("dmpnn")
class DMPNN(BiodlModel):
    """Directed message-passing network on packed molecular graphs; output ``(N, num_outputs)``."""

    Params: ClassVar[type[ModelParams]] = DMPNNParams
    data_types: ClassVar[tuple[str, ...]] = ("molecule",)
    #: The featurisers this model asks for when ``data.molecule.featurizer`` is not given.
    default_featurizer: ClassVar[tuple[str, ...]] = ("graph",)
    #: Lowest ONNX opset that expresses the scatter-add sums exactly (ScatterElements with reduction="add").
    min_onnx_opset: ClassVar[int] = 16
    min_onnx_opset_reason: ClassVar[str] = "it sums messages with scatter-add (ScatterElements with reduction 'add')"
    extra_mask: torch.Tensor

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, params: ModelParams) -> None:
        super().__init__(in_shape, num_outputs, params)
        assert isinstance(params, DMPNNParams)
        self.layout = GraphLayout.from_shape(self.in_shape)
        h = params.hidden_size
        self.w_i = nn.Linear(ATOM_FDIM + BOND_FDIM, h, bias=params.bias)
        self.w_h = nn.Linear(h, h, bias=params.bias)
        self.w_o = nn.Linear(ATOM_FDIM + h, h)
        self.act = activation(params.activation)
        self.dropout = nn.Dropout(params.dropout)
        n_desc = self.layout.n_descriptors
        self.mol_norm = nn.BatchNorm1d(h) if params.batch_norm else None
        self.desc_norm = nn.BatchNorm1d(n_desc) if n_desc and params.descriptor_batch_norm else None
        layers: list[nn.Module] = []
        n_in = h + n_desc
        for width in params.ffn_hidden_sizes:
            layers += [nn.Dropout(params.ffn_dropout), nn.Linear(n_in, width), activation(params.activation)]
            n_in = width
        layers += [nn.Dropout(params.ffn_dropout), nn.Linear(n_in, num_outputs)]
        self.ffn = nn.Sequential(*layers)
        initialize(self, params.init)
        # 1 for the descriptor slots read, 0 for the others: set from ``extra_features`` by the data type
        # (``configure_model``, also when a bundle is loaded), so not part of the saved weights
        self.register_buffer("extra_mask", torch.ones(n_desc), persistent=False)

    def set_extra_mask(self, mask: torch.Tensor) -> None:
        """Read only the descriptor slots where ``mask`` ``(rows · slots,)`` is 1 (the others count as 0)."""
        self.extra_mask.copy_(mask.to(self.extra_mask))

    # ------------------------------------------------------------------ parts
    def encode_atoms(self, batch: GraphBatch) -> torch.Tensor:
        """Atom states ``(A, hidden_size)`` after message passing."""
        p = self.params
        assert isinstance(p, DMPNNParams)
        n_atoms_total = batch.f_atoms.shape[0]
        h0 = self.w_i(torch.cat([batch.f_atoms[batch.src], batch.f_bonds], dim=1))
        h = self.act(h0)
        for _ in range(p.depth - 1):
            incoming = _sum_rows(h, batch.dst, n_atoms_total)
            m = incoming[batch.src] - _reverse_pairs(h)
            h = self.dropout(self.act(h0 + self.w_h(m)))
        incoming = _sum_rows(h, batch.dst, n_atoms_total)
        return self.dropout(self.act(self.w_o(torch.cat([batch.f_atoms, incoming], dim=1))))

    def readout(self, atom_h: torch.Tensor, batch: GraphBatch) -> torch.Tensor:
        """Molecule vectors ``(N, hidden_size)`` pooled from atom states."""
        p = self.params
        assert isinstance(p, DMPNNParams)
        n = batch.n_atoms.shape[0]
        pooled = _sum_rows(atom_h, batch.mol_of_atom, n)
        if p.aggregation == "mean":
            pooled = pooled / batch.n_atoms.clamp(min=1).unsqueeze(1).to(pooled.dtype)
        elif p.aggregation == "norm":
            pooled = pooled / 100.0
        return pooled

    def _norm(self, norm: nn.BatchNorm1d | None, d: torch.Tensor) -> torch.Tensor:
        # batch statistics need two rows; a single-row training batch uses the running ones
        if norm is None:
            return d
        if self.training and d.shape[0] < 2:
            return F.batch_norm(d, norm.running_mean, norm.running_var, norm.weight, norm.bias)
        return norm(d)

    def _molecule(self, atom_h: torch.Tensor, batch: GraphBatch) -> torch.Tensor:
        mol = self._norm(self.mol_norm, self.readout(atom_h, batch))
        if batch.descriptors.shape[1]:
            mol = torch.cat([mol, self._norm(self.desc_norm, batch.descriptors * self.extra_mask)], dim=1)
        return mol

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Learned molecule representation ``(N, hidden_size + D)`` fed to the FFN."""
        batch = unpack_batch(x, self.layout)
        return self._molecule(self.encode_atoms(batch), batch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``(N, num_outputs)`` for packed graphs ``(N, R, W)``."""
        return self.ffn(self.features(x))

    def forward_from_atoms(self, x: torch.Tensor, f_atoms: torch.Tensor) -> torch.Tensor:
        """Scores with the one-hot atom features replaced by ``f_atoms`` (for gradient attributions)."""
        batch = unpack_batch(x, self.layout)
        batch.f_atoms = f_atoms
        return self.ffn(self._molecule(self.encode_atoms(batch), batch))
