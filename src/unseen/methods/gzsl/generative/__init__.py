"""Shared machinery of the feature-generating GZSL methods (f-CLSWGAN, f-VAEGAN-D2, TF-VAEGAN, ...).

* :mod:`.modules` -- conditional generator, critic, encoder, semantic decoder and feedback MLPs
  with seeded initialisation;
* :mod:`.training` -- seeded on-device minibatch sampling, frozen modules, the adaptive
  gradient-penalty weight, batched synthesis of features and the family's normalisation
  conventions;
* :mod:`.classifier` -- the final log-softmax classifier on real seen + synthetic unseen features;
* :mod:`.base` -- :class:`GenerativeGZSL`, the fit loop with validation checkpoints.
"""

from unseen.core.device import stream
from unseen.methods.gzsl.generative.base import GenerativeGZSL
from unseen.methods.gzsl.generative.classifier import SoftmaxClassifier, train_softmax
from unseen.methods.gzsl.generative.modules import (
    ConditionalGenerator,
    Critic,
    Feedback,
    SemanticDecoder,
    VAEEncoder,
    init_weights,
)
from unseen.methods.gzsl.generative.training import (
    FEATURE_SCALINGS,
    BatchSampler,
    MinMaxScaler,
    frozen,
    gaussian,
    synthesize,
)

__all__ = [
    "FEATURE_SCALINGS",
    "BatchSampler",
    "ConditionalGenerator",
    "Critic",
    "Feedback",
    "GenerativeGZSL",
    "MinMaxScaler",
    "SemanticDecoder",
    "SoftmaxClassifier",
    "VAEEncoder",
    "frozen",
    "gaussian",
    "init_weights",
    "stream",
    "synthesize",
    "train_softmax",
]
