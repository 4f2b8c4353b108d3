"""Model registry; importing this package registers every architecture."""

from biodl.models import autoencoder as _autoencoder  # noqa: F401  (registers the auto-encoders)
from biodl.models import basset as _basset  # noqa: F401  (registers "basset")
from biodl.models import chemception as _chemception  # noqa: F401  (registers "chemception")
from biodl.models import cnn_birnn as _cnn_birnn  # noqa: F401  (registers "cnn-birnn")
from biodl.models import danq as _danq  # noqa: F401  (registers "danq")
from biodl.models import deepbind as _deepbind  # noqa: F401  (registers "deepbind")
from biodl.models import deepcpg as _deepcpg  # noqa: F401  (registers "deepcpg", the multi-input network)
from biodl.models import deepsea as _deepsea  # noqa: F401  (registers "deepsea")
from biodl.models import dilated_cnn as _dilated_cnn  # noqa: F401  (registers "dilated-cnn")
from biodl.models import ensemble as _ensemble  # noqa: F401  (registers "ensemble")
from biodl.models import ffn as _ffn  # noqa: F401  (registers "ffn")
from biodl.models import kmer_mlp as _kmer_mlp  # noqa: F401  (registers "kmer-mlp")
from biodl.models import mil as _mil  # noqa: F401  (registers "mil")
from biodl.models import mlp as _mlp  # noqa: F401  (registers "mlp")
from biodl.models import mpnn as _mpnn  # noqa: F401  (registers "dmpnn")
from biodl.models import recurrent as _recurrent  # noqa: F401  (registers "lstm", "gru")
from biodl.models import transformer as _transformer  # noqa: F401  (registers "transformer")
from biodl.models import twostep as _twostep  # noqa: F401  (registers "dnae")
from biodl.models import vision as _vision  # noqa: F401  (registers cnn, vgg, resnet, unet, vgg_autoencoder)
from biodl.models.base import (
    MODELS,
    BiodlModel,
    ModelParams,
    build_model,
    count_parameters,
    default_model_name,
)

__all__ = ["MODELS", "BiodlModel", "ModelParams", "build_model", "count_parameters", "default_model_name"]
