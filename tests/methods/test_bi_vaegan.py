"""Bi-VAEGAN: its VAE loss, the cluster prior estimate and the sphere-projected gradient penalty by
hand, the official scripts' settings, the transductive contract, and unseen accuracy beyond
ESZSL's on planted data under gzsl-transductive-v1's unlabelled features."""

import numpy as np
import pytest
import torch

from unseen.core.errors import SpecError
from unseen.data.synthetic import synthetic_dataset
from unseen.methods import GZSL
from unseen.methods.gzsl.bi_vaegan import class_prior_by_clustering, sphere, vae_loss
from unseen.methods.gzsl.generative import Critic, init_weights
from unseen.protocols.gzsl import evaluate
from unseen.protocols.gzsl_transductive import unlabelled_features


def test_vae_loss_by_hand():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    recon = torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    mu = torch.tensor([[1.0], [0.0]])
    logvar = torch.tensor([[0.0], [np.log(2.0)]])
    # MSE: mean of (1, 0, 0, 0) = 0.25, over n = 2 again: 0.125; KL per row: 0.5 * (mu^2 + s^2 - 1 - log s^2)
    # = 0.5 (row 1) and 0.5 * (2 - 1 - log 2) (row 2), summed and over n
    kl = (0.5 + 0.5 * (1 - np.log(2.0))) / 2
    assert vae_loss(recon, x, mu, logvar).item() == pytest.approx(0.125 + kl, rel=1e-6)


def test_sphere_by_hand():
    out = sphere(torch.tensor([[3.0, 4.0], [0.0, 0.0]]), radius=5.0)
    assert out.tolist() == [[3.0, 4.0], [0.0, 0.0]]
    assert sphere(torch.tensor([[0.0, 2.0]])).tolist() == [[0.0, 1.0]]


def test_cluster_prior_by_hand():
    U = torch.tensor([[0.0], [1.0], [2.0], [10.0]])
    # from 4, 9 and 100: (0, 1, 2) go to 4, 10 to 9; the means 1 and 10 keep them; 100 stays empty
    prior, assign = class_prior_by_clustering(U, torch.tensor([[4.0], [9.0], [100.0]]))
    assert assign.tolist() == [0, 0, 0, 1]
    assert prior.tolist() == pytest.approx([0.75, 0.25, 0.0])
    # from 0 and 3: (0, 1) and (2, 10); the means 0.5 and 6 pull 2 over: (0, 1, 2) and (10)
    prior, assign = class_prior_by_clustering(U, torch.tensor([[0.0], [3.0]]))
    assert assign.tolist() == [0, 0, 0, 1] and prior.tolist() == pytest.approx([0.75, 0.25])
    # no update allowed: the first assignment stands
    prior, _ = class_prior_by_clustering(U, torch.tensor([[0.0], [3.0]]), max_iters=0)
    assert prior.tolist() == pytest.approx([0.5, 0.5])


def test_gradient_penalty_at_interpolates_projected_on_the_sphere_matches_autograd():
    g = torch.Generator().manual_seed(0)
    critic = init_weights(Critic(4, 0, 8), g)
    for layer in critic.net:  # larger weights, so the penalty is far from zero
        if isinstance(layer, torch.nn.Linear):
            layer.weight.data.mul_(50)
    real = sphere(torch.randn(6, 4, generator=g), 2.0)
    fake = sphere(torch.randn(6, 4, generator=g), 2.0)
    none = real[:, :0]
    critic.backward_wgan_gp(real, fake, none, torch.Generator().manual_seed(1), 3.0, 2.0, radius=2.0)
    ours = [p.grad.clone() for p in critic.parameters()]
    critic.zero_grad()
    t = torch.rand((6, 1), generator=torch.Generator().manual_seed(1))
    x_hat = sphere(t * real + (1 - t) * fake, 2.0).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat, none).sum(), x_hat, create_graph=True)
    gp = ((grad.norm(dim=1) - 1) ** 2).mean()
    (2.0 * (critic(fake, none).mean() - critic(real, none).mean() + 3.0 * gp)).backward()
    for a, b in zip(ours, (p.grad for p in critic.parameters()), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


# The official scripts (Zhicai-Wang/Bi-VAEGAN, scripts/*.sh) in our names: nepoch -> epochs, syn_num
# -> syn_per_class, gammaD/gammaG -> critic_weight/gan_weight, gammaD_un/gammaG_un ->
# target_critic_weight/target_gan_weight, gammaD_att/gammaG_att -> att_critic_weight/att_gan_weight,
# beta -> regressor_weight, critic_iter -> critic_iters, ind_epoch -> inductive_epochs.
SHARED = dict(critic_iters=5, encoded_noise=True, radius=1.0, att_critic_weight=10.0)
OFFICIAL = {
    "CUB": dict(SHARED, epochs=300, syn_per_class=400, lr=2e-4, critic_weight=10.0, gan_weight=10.0,
                target_critic_weight=1000.0, target_gan_weight=10.0, att_gan_weight=0.1,
                regressor_weight=10.0),
    "SUN": dict(SHARED, epochs=600, syn_per_class=400, lr=2e-4, critic_weight=100.0, gan_weight=1.0,
                target_critic_weight=100.0, target_gan_weight=1.0, att_critic_weight=1.0, att_gan_weight=0.01,
                regressor_weight=10.0),
    "FLO": dict(SHARED, epochs=700, syn_per_class=1200, lr=1e-4, critic_weight=1000.0, gan_weight=10.0,
                target_critic_weight=1000.0, target_gan_weight=10.0, att_gan_weight=0.1, regressor_weight=1.0,
                critic_iters=1),
    "AWA2": dict(SHARED, epochs=300, syn_per_class=3000, lr=1e-4, critic_weight=1000.0, gan_weight=10.0,
                 target_critic_weight=1000.0, target_gan_weight=10.0, att_gan_weight=1.0,
                 regressor_weight=1.0, encoded_noise=False, radius=5.0),
    "AWA1": dict(SHARED, epochs=300, syn_per_class=3000, lr=1e-4, critic_weight=100.0, gan_weight=10.0,
                 target_critic_weight=100.0, target_gan_weight=10.0, att_gan_weight=1.0, regressor_weight=1.0,
                 encoded_noise=False, inductive_epochs=1),
}  # fmt: skip


@pytest.mark.parametrize("dataset", sorted(OFFICIAL))
def test_per_dataset_defaults_are_the_official_scripts(dataset):
    cls = GZSL["bi-vaegan"]
    params = cls(**cls.defaults_for(dataset)).params
    assert {k: params[k] for k in OFFICIAL[dataset]} == OFFICIAL[dataset]
    assert (params["hidden"], params["batch_size"], params["gp_weight"], params["cls_epochs"]) == (
        4096,
        64,
        10.0,
        20,
    )
    assert params["inductive_epochs"] == OFFICIAL[dataset].get("inductive_epochs", 3)


def test_it_is_transductive_and_needs_the_unlabelled_features():
    data = synthetic_dataset("AWA2", seed=0, dim=8, scale=0.03)
    cls = GZSL["bi-vaegan"]
    assert cls.transductive
    with pytest.raises(SpecError, match="gzsl-transductive-v1"):
        cls(**cls.fast_hparams).fit(data.train_set())


@pytest.fixture(scope="module")
def planted():
    return synthetic_dataset("AWA2", seed=0, dim=64, difficulty=0.1, scale=0.03)


def unseen_accuracy(data, **overrides) -> float:
    cls = GZSL["bi-vaegan"]
    method = cls(seed=0, **{**cls.fast_hparams, "epochs": 9, **overrides})
    method.fit(data.train_set(), unlabelled=unlabelled_features(data, 0))
    return evaluate(method, data, None).metrics["U"]


def test_unseen_accuracy_beats_eszsl_without_calibration(planted):
    eszsl = evaluate(GZSL["eszsl"]().fit(planted.train_set()), planted, None).metrics
    assert unseen_accuracy(planted) > eszsl["U"] + 10  # 87.0 against 59.0


def test_without_the_transductive_terms_the_unseen_classes_are_lost(planted):
    # the same fit with every epoch inductive (no unlabelled-feature critic, no attribute critic)
    assert unseen_accuracy(planted, inductive_epochs=9) < 20  # 6.8
