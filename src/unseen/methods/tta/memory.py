"""Feature-memory methods that leave the network untouched: T3A and AdaNPC."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from unseen.core.device import as_tensor
from unseen.core.errors import HyperparameterError
from unseen.core.registry import HParam
from unseen.methods.registry import TTA
from unseen.methods.tta.base import TTAMethod, softmax_entropy


@TTA.register("t3a")
class T3A(TTAMethod):
    """Test-time template adjuster: class prototypes from pseudo-labelled test features.

    Iwasawa & Matsuo, *Test-Time Classifier Adjustment Module for Model-Agnostic Domain
    Generalization* (NeurIPS 2021). Supports start as the linear head's weight rows; each test
    feature joins the support set of its predicted class; per class only the ``filter_k``
    lowest-entropy supports are kept (``-1`` keeps all), which bounds memory by
    ``n_classes * filter_k``. Logits are cosine-normalised features times the mean of each class's
    L2-normalised supports.
    """

    paper = "Iwasawa & Matsuo, Test-Time Classifier Adjustment Module for Model-Agnostic DG (NeurIPS 2021)"
    hparams = (
        HParam("filter_k", 100, grid=(1, 5, 20, 50, 100, -1), help="supports kept per class (-1: all)"),
    )

    def _setup(self) -> None:
        weight = self.classifier.weight.detach()
        logits = self.classifier(weight).detach()
        self.supports = weight.clone()
        self.labels = F.one_hot(logits.argmax(dim=1), weight.shape[0]).float()
        self.entropy = softmax_entropy(logits)

    @torch.no_grad()
    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        z = self.featurizer(x)
        logits = self.classifier(z)
        self.supports = torch.cat([self.supports, z])
        self.labels = torch.cat([self.labels, F.one_hot(logits.argmax(dim=1), logits.shape[1]).float()])
        self.entropy = torch.cat([self.entropy, softmax_entropy(logits)])
        self._filter()
        prototypes = F.normalize(self.supports, dim=1).T @ self.labels
        return z @ F.normalize(prototypes, dim=0)

    def _filter(self) -> None:
        k = self.params["filter_k"]
        if k < 0:
            return
        cls = self.labels.argmax(dim=1)
        # Stable lexicographic order (class, entropy): the first k of each class block survive.
        order = np.lexsort((self.entropy.cpu().numpy(), cls.cpu().numpy()))
        cls_sorted = cls.cpu().numpy()[order]
        starts = np.searchsorted(cls_sorted, cls_sorted, side="left")
        keep = torch.as_tensor(order[np.arange(len(order)) - starts < k], device=self.supports.device)
        self.supports, self.labels, self.entropy = self.supports[keep], self.labels[keep], self.entropy[keep]

    @property
    def memory_size(self) -> int:
        return len(self.supports)


@TTA.register("adanpc")
class AdaNPC(TTAMethod):
    """k-nearest-neighbour classification over a memory of source and confident test features.

    Zhang et al., *AdaNPC: Exploring Non-Parametric Classifier for Test-Time Adaptation*
    (ICML 2023). The memory starts as the source (training-domain) features with their labels;
    a test feature is classified by its ``k`` most cosine-similar memory entries, each voting for
    its label with weight ``exp(similarity / temperature)``; test features predicted with
    confidence >= ``beta`` join the memory with their predicted label. Unlike the official code,
    whose memory grows without bound, test entries are kept first-in first-out up to
    ``max_test_memory`` so memory stays bounded on long streams.
    """

    paper = "Zhang et al., AdaNPC: Exploring Non-Parametric Classifier for Test-Time Adaptation (ICML 2023)"
    needs_source = True
    hparams = (
        HParam("k", 10, grid=(1, 5, 10, 20), help="neighbours that vote"),
        HParam("temperature", 0.1, grid=(0.01, 0.1, 1.0), help="softmax temperature of the similarities"),
        HParam("beta", 0.9, grid=(0.0, 0.5, 0.9), help="confidence a test feature needs to join the memory"),
        HParam("max_test_memory", 10000, help="test features kept (oldest dropped first)", low=0),
    )

    def __init__(self, featurizer, classifier, source_features, source_labels, seed=0, device=None, **hp):
        features = np.asarray(source_features, dtype=np.float32)
        labels = np.asarray(source_labels)
        if features.ndim != 2 or len(features) != len(labels) or len(features) == 0:
            raise HyperparameterError(
                "adanpc needs the source features (n, d) and their n labels to build its memory; got "
                f"features of shape {features.shape} and {len(labels)} labels."
            )
        self._source_memory = (features, labels.astype(np.int64))
        super().__init__(featurizer, classifier, seed=seed, device=device, **hp)

    def _setup(self) -> None:
        features, labels = self._source_memory
        self.n_classes = self.classifier.out_features
        self.source_keys = F.normalize(as_tensor(features, self.device), dim=1)
        self.source_values = torch.as_tensor(labels, device=self.device)
        self.test_keys = self.source_keys[:0]
        self.test_values = self.source_values[:0]

    @torch.no_grad()
    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        z = F.normalize(self.featurizer(x), dim=1)
        keys = torch.cat([self.source_keys, self.test_keys])
        values = torch.cat([self.source_values, self.test_values])
        sims, idx = (z @ keys.T).topk(min(self.params["k"], len(keys)), dim=1)
        weights = torch.exp((sims - sims[:, :1]) / self.params["temperature"])
        votes = torch.zeros(len(z), self.n_classes, device=z.device).scatter_add_(1, values[idx], weights)
        probs = votes / votes.sum(dim=1, keepdim=True)
        confidence, predicted = probs.max(dim=1)
        confident = confidence >= self.params["beta"]
        keys = torch.cat([self.test_keys, z[confident]])
        start = max(0, len(keys) - self.params["max_test_memory"])
        self.test_keys = keys[start:]
        self.test_values = torch.cat([self.test_values, predicted[confident]])[start:]
        return torch.log(probs.clamp_min(1e-12))

    @property
    def memory_size(self) -> int:
        return len(self.source_keys) + len(self.test_keys)
