"""Multiple-instance learning: an instance encoder, a masked pooling operator and a bag classifier."""

from biodl.models.mil.model import MIL, MILParams
from biodl.models.mil.pooling import POOLINGS, AttentionPool, NoisyAnd, masked_max, masked_mean, masked_softmax

__all__ = ["MIL", "POOLINGS", "AttentionPool", "MILParams", "NoisyAnd", "masked_max", "masked_mean", "masked_softmax"]
