"""LsrGAN: semantic neighbours and the SR loss by hand, the SR loss holds generated class means to
their semantic similarities, the official scripts' settings, and unseen accuracy beyond ESZSL's
on planted data."""

import numpy as np
import pytest
import torch

from unseen.data.synthetic import synthetic_dataset
from unseen.methods import GZSL
from unseen.methods.gzsl.generative import gaussian
from unseen.methods.gzsl.lsrgan import class_means, relation_loss, semantic_neighbours
from unseen.protocols.gzsl import evaluate


@pytest.fixture(scope="module")
def data():
    # dim 64: the real seen-class means' cosine similarities follow their semantic ones (within
    # 0.1 for about three quarters of the neighbour pairs), the premise of the SR loss
    return synthetic_dataset("AWA2", seed=0, dim=64, difficulty=0.1, scale=0.03)


def fit(data, **overrides):
    cls = GZSL["lsrgan"]
    return cls(seed=0, **{**cls.fast_hparams, **overrides}).fit(data.train_set())


def test_semantic_neighbours_by_hand():
    S_to = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    order, sims = semantic_neighbours(np.array([[2.0, 0.0], [0.0, 3.0]]), S_to, k=2)
    assert order.tolist() == [[0, 2], [1, 2]]
    np.testing.assert_allclose(sims, [[1.0, 2**-0.5], [1.0, 2**-0.5]])


def test_class_means_and_relation_loss_by_hand():
    X = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    means, present = class_means(X, torch.tensor([0, 0, 2]), 3)
    assert means.tolist() == [[2.0, 0.0], [0.0, 0.0], [0.0, 2.0]] and present.tolist() == [True, False, True]
    # cosines to the neighbours: 1 and 0; semantic similarities 0.5 (band [0.4, 0.7]) and 0.05
    # (band [-0.05, 0.25]): violations 1 - 0.7 = 0.3 above the first band, none for the second
    neighbours = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    loss = relation_loss(means[:1], neighbours, torch.tensor([[0.5, 0.05]]), low=0.1, high=0.2)
    assert loss.item() == pytest.approx(0.3**2 / 2)


def test_the_sr_loss_holds_generated_means_to_the_semantic_similarities(data):
    def band_violation(method):
        seen = method._seen_ids
        z = gaussian((len(seen) * 50, method.noise_dim), torch.Generator().manual_seed(1), method._device)
        local = torch.arange(len(seen)).repeat_interleave(50)
        with torch.no_grad():
            fake = method._G(z, method._S[seen[local]])
            return method._sr_loss(fake, local, "seen")[0].item()

    small = {"epochs": 5, "hidden": 64, "pretrain_epochs": 5, "cls_epochs": 1}
    only_sr = {**small, "unseen_start": 5, "centroid_weight": 0.0}  # no unseen steps, no centroid term
    assert band_violation(fit(data, **only_sr)) < 0.5 * band_violation(fit(data, **only_sr, sr_weight=0.0))


def test_unseen_accuracy_beats_eszsl_without_calibration(data):
    eszsl = evaluate(GZSL["eszsl"]().fit(data.train_set()), data, None).metrics
    assert evaluate(fit(data), data, None).metrics["U"] > eszsl["U"] + 10


# The official scripts (Maunil/LsrGAN, Codes/Attribute_based_dataset/Shell_Scipts/GZSL_*.sh) in our
# names: nepoch -> epochs, correlation_penalty -> sr_weight, syn_num -> syn_per_class, ngh/ndh ->
# hidden; upper_epsilon applies on CUB only (elsewhere both margins are epsilon); on AWA the code
# halves cls_weight after epoch 15.
COMMON = {"hidden": 4096, "gp_weight": 10.0, "critic_iters": 5, "batch_size": 64, "neighbours": 20}
OFFICIAL = {
    "CUB": {**COMMON, "epochs": 40, "lr": 1e-4, "cls_weight": 0.01, "unseen_cls_weight": 0.03,
            "sr_weight": 20.0, "epsilon": 0.1, "upper_epsilon": 0.1, "syn_per_class": 300},
    "SUN": {**COMMON, "epochs": 20, "lr": 2e-4, "cls_weight": 0.03, "unseen_cls_weight": 0.01,
            "sr_weight": 10.0, "epsilon": 0.1, "upper_epsilon": 0.1, "syn_per_class": 400},
    "AWA1": {**COMMON, "epochs": 18, "lr": 1e-5, "cls_weight": 0.001, "unseen_cls_weight": 0.1,
             "sr_weight": 20.0, "epsilon": 0.15, "upper_epsilon": 0.15, "syn_per_class": 1800,
             "halve_cls_weight_after": 15},
}  # fmt: skip
OFFICIAL["AWA2"] = OFFICIAL["AWA1"]


@pytest.mark.parametrize("dataset", sorted(OFFICIAL))
def test_dataset_defaults_are_the_official_scripts(dataset):
    cls = GZSL["lsrgan"]
    params = cls(**cls.defaults_for(dataset)).params
    assert {k: params[k] for k in OFFICIAL[dataset]} == OFFICIAL[dataset]
