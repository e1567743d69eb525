"""The ImageNet EfficientNet-Lite0 DG featurizer: selection by input shape, frozen BatchNorm,
feature dropout, the weights' normalisation, and the large-image hyperparameter defaults."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unseen.backbones.efficientnet_lite import EfficientNetLite0
from unseen.core.errors import HyperparameterError
from unseen.data.image_domains import decode
from unseen.data.images import load_images
from unseen.methods import DG
from unseen.methods.dg.base import COMMON_HPARAMS, MIXSTYLE_HPARAMS, VECTOR_HPARAMS
from unseen.nn import networks
from unseen.nn.domaindrop import DOMAINDROP_HPARAMS
from unseen.nn.efficientnet_dg import EfficientNetLite0Featurizer, _imagenet_encoder

IMAGE = (3, 64, 64)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _images(n: int, seed: int) -> torch.Tensor:
    """Smooth random images (pixel noise leaves almost every ImageNet feature at zero)."""
    coarse = torch.rand(n, 3, 5, 5, generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.interpolate(coarse, size=IMAGE[1:], mode="bilinear")


def _batchnorm_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {
        name: value.clone()
        for name, value in model.featurizer.state_dict().items()
        if name.rsplit(".", 1)[-1] in ("running_mean", "running_var", "num_batches_tracked")
    }


def test_featurizer_is_chosen_by_input_shape():
    assert networks.featurizer_kind((800,)).name == "mlp"
    assert networks.featurizer_kind((3, 32, 32)).name == "small-cnn"
    assert networks.featurizer_kind((3, 33, 224)).name == "efficientnet-lite0"
    for shape in ((1, 64, 64), (3, 20, 64), (3, 64)):
        with pytest.raises(HyperparameterError, match=r"RGB images \(n, 3, H, W\) with H, W > 32.*size=224"):
            networks.featurizer_kind(shape)


def test_features_are_1280_d_for_any_size_above_32_pixels():
    hparams = {"backbone_dropout": 0.0, "freeze_bn": True}
    model = networks.featurizer((3, 33, 47), hparams).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 33, 47))
    assert model.n_outputs == 1280 and out.shape == (2, 1280) and torch.isfinite(out).all()


def test_inputs_in_0_1_get_the_normalisation_the_imagenet_weights_expect():
    """Images decoded by the DG image loader, through the featurizer, give the encoder's features."""
    images = load_images("builtin:digits?per_class=1").subset(np.array([0, 5]))
    pixels = torch.from_numpy(decode(images, 224))
    assert pixels.min() >= 0.0 and pixels.max() <= 1.0 and pixels.max() > 0.5
    with torch.no_grad():
        ours = EfficientNetLite0Featurizer().eval()(pixels).numpy()
    reference = EfficientNetLite0(device="cpu").encode_images(images.images())
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("freeze_bn", [True, False])
def test_freeze_bn_keeps_running_statistics_while_weights_train(freeze_bn):
    model = DG["erm"](IMAGE, 2, 2, {"freeze_bn": freeze_bn, "lr": 1e-3}, seed=0, device="cpu")
    before_stats = _batchnorm_state(model)
    before_weights = {k: v.detach().clone() for k, v in model.named_parameters()}
    labels = torch.tensor([0, 1, 0, 1])
    model.train()
    model.update([(_images(4, 1), labels), (_images(4, 2), labels)])
    after_stats = _batchnorm_state(model)
    assert len(before_stats) == 3 * 49  # every BatchNorm layer of EfficientNet-Lite0
    stats_kept = [torch.equal(before_stats[k], after_stats[k]) for k in before_stats]
    assert all(stats_kept) if freeze_bn else not any(stats_kept)
    params = dict(model.named_parameters())
    bn_weight = "featurizer.backbone.network._bn0.weight"  # a BatchNorm affine parameter
    conv_weight = "featurizer.backbone.network._blocks.15._project_conv.weight"
    for name in (bn_weight, conv_weight, "classifier.weight"):
        assert not torch.equal(before_weights[name], params[name].detach()), name


def test_same_seed_same_model_whether_or_not_the_weights_were_loaded_before():
    _imagenet_encoder.cache_clear()  # the first build in a process reads the weights file
    first = DG["erm"](IMAGE, 2, 2, seed=3, device="cpu").state_dict()
    again = DG["erm"](IMAGE, 2, 2, seed=3, device="cpu").state_dict()
    assert first.keys() == again.keys() and all(torch.equal(first[k], again[k]) for k in first)
    other_seed = DG["erm"](IMAGE, 2, 2, seed=4, device="cpu").state_dict()
    assert not torch.equal(first["classifier.weight"], other_seed["classifier.weight"])


def test_backbone_dropout_drops_features_in_training_only():
    model = networks.featurizer(IMAGE, {"backbone_dropout": 0.5, "freeze_bn": True})
    x = _images(2, 3)
    with torch.no_grad():
        trained = model.train()(x)
        evaluated = model.eval()(x)
    active = evaluated > 0
    dropped = active & (trained == 0)
    assert active.sum() > 500 and 0.4 < dropped.sum() / active.sum() < 0.6
    torch.testing.assert_close(trained[~dropped], 2 * evaluated[~dropped])


def test_large_images_get_domainbeds_large_image_hyperparameters():
    declared = {h.name: h for h in DG["erm"].all_hparams(IMAGE)}
    defaults = {name: h.default for name, h in declared.items()}
    assert defaults["lr"] == 5e-5 and defaults["batch_size"] == 32 and defaults["weight_decay"] == 0.0
    assert defaults["backbone_dropout"] == 0.0 and defaults["freeze_bn"] is True
    draws = [{name: declared[name].sample(seed) for name in declared} for seed in range(200)]
    lrs = np.log10([d["lr"] for d in draws])
    assert -5 <= lrs.min() < -4.8 and -3.7 < lrs.max() <= -3.5
    assert {d["batch_size"] for d in draws} <= set(range(8, 46)) and max(d["batch_size"] for d in draws) > 40
    assert {d["backbone_dropout"] for d in draws} == {0.0, 0.1, 0.5}
    assert {d["freeze_bn"] for d in draws} == {True}
    model = DG["coral"](IMAGE, 2, 2, {"batch_size": 8}, device="cpu")
    assert model.params["lr"] == 5e-5 and model.params["batch_size"] == 8 and "mmd_gamma" in model.params


@pytest.mark.parametrize("shape", [(800,), (1, 28, 28), (2, 14, 14)])
def test_features_and_small_images_keep_the_shared_hyperparameters(shape):
    # small images add the MixStyle and DomainDrop options only, feature vectors the featurizer choice
    options = MIXSTYLE_HPARAMS + DOMAINDROP_HPARAMS if len(shape) == 3 else VECTOR_HPARAMS
    assert DG["coral"].all_hparams(shape) == COMMON_HPARAMS + options + DG["coral"].hparams
    with pytest.raises(HyperparameterError, match="unknown hyperparameter.*freeze_bn"):
        DG["erm"](shape, 2, 2, {"freeze_bn": False})


def test_xded_unistyle_normalises_the_stride_4_and_stride_8_stages_of_the_efficientnet():
    model = DG["xded"](IMAGE, 2, 2, {"xded_unistyle": True}, seed=0, device="cpu")
    blocks = model.featurizer.backbone.network._blocks
    assert [i for i, block in enumerate(blocks) if block._forward_hooks] == [2, 4]
    seen = []
    blocks[4].register_forward_hook(lambda module, inputs, output: seen.append(output))
    model.predict(_images(2, 3))
    per_map = seen[0].flatten(2)  # (sample, channel, position) after UniStyle
    assert torch.allclose(per_map.mean(-1), torch.zeros(per_map.shape[:2]), atol=1e-4)
    assert torch.allclose(per_map.var(-1), torch.ones(per_map.shape[:2]), atol=1e-3)
