"""DASCN: the visual- and semantic-consistency losses by hand, each pulls what it measures towards
its target, the settings shared with f-CLSWGAN, and unseen accuracy beyond ESZSL's on planted data."""

import pytest
import torch

from unseen.core.errors import HyperparameterError
from unseen.data.synthetic import synthetic_dataset
from unseen.methods import GZSL
from unseen.methods.gzsl.dascn import centroid_distance, semantic_distance
from unseen.methods.gzsl.generative import gaussian
from unseen.protocols.gzsl import evaluate


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset("AWA2", seed=0, dim=32, difficulty=0.1, scale=0.03)


def fit(data, **overrides):
    cls = GZSL["dascn"]
    return cls(seed=0, **{**cls.fast_hparams, **overrides}).fit(data.train_set())


def test_centroid_distance_by_hand():
    centroids = torch.tensor([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]])
    features = torch.tensor([[3.0, 0.0], [3.0, 8.0], [1.0, 1.0]])
    # class 0: mean (3, 4), 5 from (0, 0); class 1: mean (1, 1), 0 away; class 2 absent
    assert centroid_distance(features, torch.tensor([0, 0, 1]), centroids).item() == pytest.approx(2.5)


def test_semantic_distance_by_hand():
    rebuilt = torch.tensor([[0.6, 0.8], [1.0, 0.0]])
    semantics = torch.tensor([[0.0, 0.8], [1.0, 0.0]])
    assert semantic_distance(rebuilt, semantics).item() == pytest.approx(0.3)


def test_each_consistency_loss_pulls_towards_its_target(data):
    def gaps(method):
        """Generated class centroids' distance to the real ones, and the dual generator's
        reconstructions' distance to the class semantics on the real features."""
        seen = torch.as_tensor(data.classes.seen_ids)
        local = torch.arange(len(seen)).repeat_interleave(50)
        z = gaussian((len(local), method.noise_dim), torch.Generator().manual_seed(1), method._device)
        with torch.no_grad():
            fake = method._G(z, method._S[seen[local]])
            visual = centroid_distance(fake, local, method._centroids).item()
            semantic = semantic_distance(method._reconstruct(method._X), method._S[method._y]).item()
        return visual, semantic

    small = {
        "epochs": 10,
        "hidden": 64,
        "dual_hidden": 64,
        "pretrain_epochs": 5,
        "cls_epochs": 1,
        "syn_per_class": 10,
    }
    vc0, sc0 = gaps(fit(data, **small, vc_weight=0.0, sc_weight=0.0))
    assert gaps(fit(data, **small, vc_weight=10.0, sc_weight=0.0))[0] < 0.8 * vc0
    assert gaps(fit(data, **small, vc_weight=0.0, sc_weight=10.0))[1] < 0.6 * sc0


def test_unseen_accuracy_beats_eszsl_without_calibration(data):
    eszsl = evaluate(GZSL["eszsl"]().fit(data.train_set()), data, None).metrics
    assert evaluate(fit(data), data, None).metrics["U"] > eszsl["U"] + 10


@pytest.mark.parametrize("dataset", ["CUB", "SUN", "FLO", "AWA2"])
def test_shared_settings_are_f_clswgans(dataset):
    """The paper gives no settings beyond f-CLSWGAN's, whose official per-dataset scripts apply."""
    shared = (
        *("hidden", "lr", "batch_size", "critic_iters", "gp_weight"),
        *("cls_weight", "pretrain_epochs", "epochs", "syn_per_class"),
    )
    dascn, clswgan = (GZSL[n](**GZSL[n].defaults_for(dataset)).params for n in ("dascn", "f-clswgan"))
    assert {k: dascn[k] for k in shared} == {k: clswgan[k] for k in shared}


def test_unnormalised_semantics_are_refused_naming_the_hyperparameter():
    with pytest.raises(HyperparameterError, match="'semantic_norm' must be one of"):
        GZSL["dascn"](semantic_norm="none")
