"""Interpreting models.

Sequence models (any ``torch.nn.Module`` taking one-hot ``(N, A, L)``, or a biodl bundle):

=====================================  =======================================================
:func:`saturation_mutagenesis`         effects of every single-letter substitution (ISM), with
                                       a fast mode exploiting convolution locality
:func:`region_mutagenesis`             ISM over a region longer than the model (tiled by its window)
:func:`variant_effects`                SNV/indel scores from a genome FASTA and a VCF/table
                                       (:func:`stream_variant_effects`: chunked, to a file)
:func:`filter_motifs`                  convolution filters → PFM/PWM; :func:`write_meme`;
                                       :func:`motif_matches` against JASPAR 2024 (Tomtom-like)
:class:`Saliency`, :class:`InputXGradient`, :class:`IntegratedGradients`, :class:`DeepLift`,
:class:`DeepLiftShap`                  Captum attributions (dinucleotide-shuffled references)
:mod:`biodl.explain.plots`             mutation maps (review Figure 2C), attribution and motif logos
=====================================  =======================================================

Image models live in :mod:`biodl.explain.image` and :mod:`biodl.explain.lime` (imported on
first use: ``biodl.explain.image.Saliency`` is the image method, ``biodl.explain.Saliency`` the
sequence one).
"""

from __future__ import annotations

import importlib
from typing import Any

from biodl.explain.attributions import (
    METHODS,
    DeepLift,
    DeepLiftShap,
    InputXGradient,
    IntegratedGradients,
    Saliency,
    SequenceAttribution,
    dinucleotide_shuffled,
)
from biodl.explain.filter_motifs import (
    FilterMotifs,
    conv_layers,
    filter_motifs,
    information_content,
    motif_matches,
    trim_motif,
    write_meme,
)
from biodl.explain.region_mutagenesis import RegionISM, region_mutagenesis
from biodl.explain.report import report_sections
from biodl.explain.saturation_mutagenesis import ConvPoolParts, ISMResult, conv_pool_parts, saturation_mutagenesis
from biodl.explain.tomtom import MotifDatabase, TomtomResult, jaspar_motifs, match_motifs, tomtom
from biodl.explain.variant_effects import (
    Genome,
    VariantScores,
    read_variants,
    stream_variant_effects,
    variant_effects,
    write_variant_effects,
)

__all__ = [
    "METHODS",
    "ConvPoolParts",
    "DeepLift",
    "DeepLiftShap",
    "FilterMotifs",
    "Genome",
    "ISMResult",
    "InputXGradient",
    "IntegratedGradients",
    "MotifDatabase",
    "RegionISM",
    "Saliency",
    "SequenceAttribution",
    "TomtomResult",
    "VariantScores",
    "conv_layers",
    "conv_pool_parts",
    "dinucleotide_shuffled",
    "filter_motifs",
    "information_content",
    "jaspar_motifs",
    "match_motifs",
    "motif_matches",
    "read_variants",
    "region_mutagenesis",
    "report_sections",
    "saturation_mutagenesis",
    "stream_variant_effects",
    "tomtom",
    "trim_motif",
    "variant_effects",
    "write_meme",
    "write_variant_effects",
]

#: Submodules imported on first attribute access (image explainers stay unimported until used).
_LAZY_MODULES = ("image", "lime", "visual", "plots")


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        return importlib.import_module(f"biodl.explain.{name}")
    raise AttributeError(f"module 'biodl.explain' has no attribute {name!r}")
