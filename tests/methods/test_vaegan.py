"""f-VAEGAN-D2 (inductive) and TF-VAEGAN: official settings, losses, feedback loop, reproducibility."""

import numpy as np
import pytest
import torch

from unseen.core.errors import HyperparameterError
from unseen.data.synthetic import synthetic_dataset
from unseen.methods import GZSL
from unseen.methods.gzsl.f_vaegan import weighted_l1
from unseen.methods.gzsl.generative import Critic, VAEEncoder, stream
from unseen.methods.gzsl.generative.training import AdaptivePenaltyWeight
from unseen.protocols.gzsl import evaluate

CPU = torch.device("cpu")
TINY = {"epochs": 1, "hidden": 16, "cls_epochs": 1}

# The flags of akshitac8/tfvaegan scripts/run_{cub,sun,flo,awa}_tfvaegan.py, in our names
# (gammaD -> critic_weight, gammaG -> gan_weight, lambda1 -> gp_weight, nepoch -> epochs,
# classifier_lr -> cls_lr, syn_num -> syn_per_class, ngh/ndh -> hidden, a1/a2 ->
# feedback_train/feedback_eval, feed_lr -> feedback_lr, feedback_loop -> feedback_loops; dec_lr
# is config_images.py's default where a script omits it).
COMMON = {"hidden": 4096, "gp_weight": 10.0, "critic_iters": 5, "batch_size": 64, "adapt_gp": True}
OFFICIAL_TFVAEGAN = {
    "CUB": {  # run_cub_tfvaegan.py
        **COMMON,
        "critic_weight": 10,
        "gan_weight": 10,
        "encoded_noise": True,
        "epochs": 300,
        "lr": 1e-4,
        "cls_lr": 1e-3,
        "syn_per_class": 300,
        "recons_weight": 0.01,
        "feedback_train": 1,
        "feedback_eval": 1,
        "feedback_lr": 1e-5,
        "dec_lr": 1e-4,
        "feedback_loops": 2,
        "freeze_dec": False,
    },
    "SUN": {  # run_sun_tfvaegan.py
        **COMMON,
        "critic_weight": 1,
        "gan_weight": 1,
        "encoded_noise": True,
        "epochs": 400,
        "lr": 1e-3,
        "cls_lr": 5e-4,
        "syn_per_class": 400,
        "recons_weight": 0.01,
        "feedback_train": 0.1,
        "feedback_eval": 0.01,
        "feedback_lr": 1e-4,
        "dec_lr": 1e-4,
        "feedback_loops": 2,
        "freeze_dec": False,
    },
    "FLO": {  # run_flo_tfvaegan.py (no --encoded_noise)
        **COMMON,
        "critic_weight": 10,
        "gan_weight": 10,
        "encoded_noise": False,
        "epochs": 500,
        "lr": 1e-4,
        "cls_lr": 1e-3,
        "syn_per_class": 1200,
        "recons_weight": 0.01,
        "feedback_train": 0.5,
        "feedback_eval": 0.5,
        "feedback_lr": 1e-5,
        "dec_lr": 1e-4,
        "feedback_loops": 2,
        "freeze_dec": False,
    },
    "AWA2": {  # run_awa_tfvaegan.py (--dataset AWA2; AWA1 uses the same settings)
        **COMMON,
        "critic_weight": 10,
        "gan_weight": 10,
        "encoded_noise": True,
        "epochs": 120,
        "lr": 1e-5,
        "cls_lr": 1e-3,
        "syn_per_class": 1800,
        "recons_weight": 0.1,
        "feedback_train": 0.01,
        "feedback_eval": 0.01,
        "feedback_lr": 1e-4,
        "dec_lr": 1e-4,
        "feedback_loops": 2,
        "freeze_dec": True,
    },
}
OFFICIAL_TFVAEGAN["AWA1"] = OFFICIAL_TFVAEGAN["AWA2"]
FEEDBACK_ONLY = {"recons_weight", "feedback_train", "feedback_eval", "feedback_lr", "dec_lr"}
FEEDBACK_ONLY |= {"feedback_loops", "freeze_dec"}


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset("AWA2", seed=0, dim=32, difficulty=0.1, scale=0.03)


def fit(method, data, seed=0, **overrides):
    cls = GZSL[method]
    return cls(seed=seed, **{**cls.fast_hparams, **overrides}).fit(data.train_set())


def adam_steps(optimizer):
    """How many steps ``optimizer`` has taken (0 if none)."""
    states = list(optimizer.state.values())
    return int(states[0]["step"]) if states else 0


@pytest.mark.parametrize("dataset", sorted(OFFICIAL_TFVAEGAN))
def test_dataset_defaults_are_the_official_scripts(dataset):
    official = OFFICIAL_TFVAEGAN[dataset]
    tf = GZSL["tf-vaegan"]
    params = tf(**tf.defaults_for(dataset)).params
    assert {k: params[k] for k in official} == official
    f = GZSL["f-vaegan"]
    params = f(**f.defaults_for(dataset)).params
    assert {k: params[k] for k in official if k not in FEEDBACK_ONLY} == {
        k: v for k, v in official.items() if k not in FEEDBACK_ONLY
    }


def five_slope_critic() -> Critic:
    """``D(x, a) = 3 x1 + 4 x2 + const`` for ``x`` in [0, 1]: ``||grad|| = 5``, raw penalty 16."""
    critic = Critic(2, 1, 2)
    with torch.no_grad():
        critic.net[0].weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
        critic.net[0].bias.fill_(10.0)
        critic.net[2].weight.copy_(torch.tensor([[3.0, 4.0]]))
    return critic


def test_critic_objective_scales_the_penalty_by_gamma_d_too():
    real, fake, a = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.zeros(2, 2), torch.zeros(2, 1)
    # mean D(fake) - mean D(real) = 0 - 3.5; gammaD * (-3.5 + lambda * 16): the penalty's
    # effective weight is gammaD * lambda = 100
    objective, _ = five_slope_critic().backward_wgan_gp(real, fake, a, stream(0, "gp"), 10.0, 10.0)
    assert objective.item() == pytest.approx(10 * (-3.5 + 160))
    objective, _ = five_slope_critic().backward_wgan_gp(real, fake, a, stream(0, "gp"), 10.0, 1.0)
    assert objective.item() == pytest.approx(-3.5 + 160)


def test_penalty_weight_adapts_on_the_mean_raw_penalty_of_the_critic_steps():
    x, a = torch.rand(4, 2), torch.randn(4, 1)
    _, gp = five_slope_critic().backward_wgan_gp(x, x.flip(0), a, stream(0, "gp"), 10.0)
    weight = AdaptivePenaltyWeight(10.0, True, CPU)
    weight.update([gp])
    assert weight.value.item() == pytest.approx(11.0)  # 16 > 1.05: x1.1
    weight.update([torch.tensor(1.0), torch.tensor(1.04)])  # mean 1.02: kept
    assert weight.value.item() == pytest.approx(11.0)
    weight.update([torch.tensor(0.9), torch.tensor(1.1)])  # mean 1.0 < 1.001: /1.1
    assert weight.value.item() == pytest.approx(10.0)
    fixed = AdaptivePenaltyWeight(10.0, False, CPU)
    fixed.update([gp])
    assert fixed.value.item() == 10.0


@pytest.mark.parametrize("adapt", [True, False])
def test_fit_adapts_lambda_only_when_asked(adapt, data):
    m = fit("f-vaegan", data, adapt_gp=adapt, **TINY)
    assert (m._gp_weight.value.item() != pytest.approx(10.0)) == adapt


def test_weighted_l1_is_the_official_cycle_loss():
    pred = torch.tensor([[3.0, 4.0], [1.0, 1.0]], requires_grad=True)
    target = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    # row 1: d = (3, 4), weights d^2 / ||d|| = (9/5, 16/5) -> 27/5 + 64/5 = 18.2; row 2: 0
    loss = weighted_l1(pred, target)
    assert loss.item() == pytest.approx(9.1)
    loss.backward()  # d/dd (sum |d|^3 / ||d||) / 2 = (3 |d| d ||d|| - sum|d|^3 d / ||d||) / ||d||^2 / 2
    expected = (3 * torch.tensor([9.0, 16.0]) * 5 - 91 * torch.tensor([3.0, 4.0]) / 5) / 25 / 2
    torch.testing.assert_close(pred.grad[0], expected)
    assert torch.equal(pred.grad[1], torch.zeros(2))


def test_encoder_has_the_official_two_hidden_layers_and_separate_heads():
    enc = VAEEncoder(feat_dim=10, att_dim=3, hidden=8, latent=3)
    linears = [m for m in enc.hidden if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(13, 8), (8, 6)]
    assert (
        (enc.mu.in_features, enc.mu.out_features)
        == (enc.logvar.in_features, enc.logvar.out_features)
        == (6, 3)
    )
    mu, logvar = enc(torch.randn(5, 10), torch.randn(5, 3))
    assert mu.shape == logvar.shape == (5, 3)


def test_encoder_uses_default_adam_betas_and_the_rest_beta1_half(data):
    m = fit("tf-vaegan", data, **TINY)
    assert m._opt_e.param_groups[0]["betas"] == (0.9, 0.999)
    for opt in (m._opt_g, m._opt_d, m._opt_dec, m._opt_fb):
        assert opt.param_groups[0]["betas"] == (0.5, 0.999)
    assert {id(p) for g in m._opt_e.param_groups for p in g["params"]} == {id(p) for p in m._E.parameters()}


@pytest.mark.parametrize("loops", [1, 2, 3])
def test_feedback_loops_set_the_passes_and_only_the_second_trains_the_feedback(loops, data):
    m = fit("tf-vaegan", data, feedback_loops=loops, **TINY)
    steps = -(-len(data.train_set().labels) // m.params["batch_size"])
    assert adam_steps(m._opt_e) == adam_steps(m._opt_g) == loops * steps
    assert adam_steps(m._opt_d) == loops * steps * m.params["critic_iters"]
    assert adam_steps(m._opt_fb) == (steps if loops >= 2 else 0)
    # the decoder: once per critic step on real features, once per generator step on fakes
    assert adam_steps(m._opt_dec) == loops * steps * (m.params["critic_iters"] + 1)


def test_freeze_dec_keeps_only_the_decoder_updates_on_real_features(data):
    m = fit("tf-vaegan", data, freeze_dec=True, **TINY)
    steps = -(-len(data.train_set().labels) // m.params["batch_size"])
    assert adam_steps(m._opt_dec) == 2 * steps * m.params["critic_iters"]
    assert adam_steps(m._opt_fb) == steps


def test_feedback_loops_must_be_positive(data):
    with pytest.raises(HyperparameterError, match="feedback_loops"):
        fit("tf-vaegan", data, feedback_loops=0, **TINY)


@pytest.mark.parametrize("method", ["f-vaegan", "tf-vaegan"])
def test_gaussian_noise_in_the_adversarial_terms_trains_and_changes_the_model(method, data):
    X = data.split_features("test_unseen")
    encoded = fit(method, data, **TINY).scores(X)
    gaussian = fit(method, data, encoded_noise=False, **TINY).scores(X)
    assert np.isfinite(gaussian).all() and not np.array_equal(encoded, gaussian)


@pytest.mark.parametrize("method", ["f-vaegan", "tf-vaegan"])
def test_unseen_accuracy_beats_eszsl_without_calibration(method, data):
    eszsl = evaluate(GZSL["eszsl"]().fit(data.train_set()), data, None).metrics
    ours = evaluate(fit(method, data), data, None).metrics
    assert ours["U"] > eszsl["U"] + 10


@pytest.mark.parametrize("method", ["f-vaegan", "tf-vaegan"])
def test_same_seed_same_numbers(method, data):
    small = {"epochs": 2, "hidden": 32}
    X = data.split_features("test_unseen")
    a, b = fit(method, data, **small).scores(X), fit(method, data, **small).scores(X)
    assert a.shape == (len(X), data.classes.n_classes) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, fit(method, data, seed=1, **small).scores(X))


def test_tf_vaegan_classifies_decoder_concatenated_features(data):
    m = fit("tf-vaegan", data, **TINY)
    d, k = data.dim, data.classes.semantics.shape[1]
    assert m._clf.fc.in_features == d + k + 16
    assert fit("f-vaegan", data, **TINY)._clf.fc.in_features == d


def test_f_vaegan_is_tf_vaegan_without_feedback():
    f, tf = GZSL["f-vaegan"], GZSL["tf-vaegan"]
    extra = {h.name for h in tf.hparams} - {h.name for h in f.hparams}
    assert extra == FEEDBACK_ONLY
    assert issubclass(tf, f) and tf.feedback and not f.feedback
