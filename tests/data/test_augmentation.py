"""DomainBed's large-image training augmentation on tensors: each step on hand-computed cases,
the random crop's sampling rule, determinism, and its place in ``dg-lodo-v1`` (training
minibatches only)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from unseen.data.augmentation import (
    ImageAugmentation,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    crop_boxes,
    greyscale,
    hsv_to_rgb,
    resized_crops,
    rgb_to_hsv,
)
from unseen.data.domains import DomainDataset
from unseen.methods import DG
from unseen.protocols.dg import DGProtocol

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _solid(*rgb: tuple[float, float, float], size: int = 4) -> torch.Tensor:
    """One ``size x size`` image per colour."""
    return torch.tensor(rgb, dtype=torch.float32).view(-1, 3, 1, 1).expand(-1, 3, size, size).clone()


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_greyscale_weights_and_hsv_of_primary_colours():
    primaries = _solid((1, 0, 0), (0, 1, 0), (0, 0, 1))
    np.testing.assert_allclose(greyscale(primaries)[:, 0, 0, 0], [0.299, 0.587, 0.114])
    hsv = rgb_to_hsv(_solid((1, 0, 0), (0, 1, 0), (0, 0, 1), (0.5, 0.5, 0.5), (0, 0, 0)))[:, :, 0, 0]
    expected = [[0, 1, 1], [1 / 3, 1, 1], [2 / 3, 1, 1], [0, 0, 0.5], [0, 0, 0]]
    np.testing.assert_allclose(hsv, expected, atol=1e-6)


def test_hsv_round_trip():
    images = torch.rand(5, 3, 6, 7, generator=_gen())
    np.testing.assert_allclose(hsv_to_rgb(rgb_to_hsv(images)), images, atol=1e-6)


def test_hue_shift_turns_red_into_green_and_cyan_and_keeps_greys():
    red = _solid((1, 0, 0), (1, 0, 0), (0.3, 0.3, 0.3))
    out = adjust_hue(red, torch.tensor([1 / 3, 0.5, 0.25]))[:, :, 0, 0]
    np.testing.assert_allclose(out, [[0, 1, 0], [0, 1, 1], [0.3, 0.3, 0.3]], atol=1e-6)
    # a negative shift wraps around the colour circle: red - 1/3 is blue
    np.testing.assert_allclose(adjust_hue(red[:1], torch.tensor([-1 / 3]))[0, :, 0, 0], [0, 0, 1], atol=1e-6)


def test_brightness_contrast_and_saturation_blend_as_torchvision_defines_them():
    image = torch.tensor([[0.2, 0.8], [0.4, 0.6]]).expand(1, 3, 2, 2).clone()
    image[:, 0] *= 0.5  # a tinted image, so saturation has something to remove
    np.testing.assert_allclose(adjust_brightness(image, torch.tensor([2.0])), (2 * image).clamp(0, 1))
    mean = float(greyscale(image).mean())
    flat = adjust_contrast(image, torch.tensor([0.0]))
    np.testing.assert_allclose(flat, torch.full_like(image, mean), atol=1e-6)
    halved = adjust_contrast(image, torch.tensor([0.5]))
    np.testing.assert_allclose(halved, 0.5 * image + 0.5 * mean, atol=1e-6)
    grey = greyscale(image).expand_as(image)
    np.testing.assert_allclose(adjust_saturation(image, torch.tensor([0.0])), grey, atol=1e-6)
    np.testing.assert_allclose(adjust_saturation(image, torch.tensor([1.0])), image, atol=1e-6)


def test_whole_image_box_is_the_identity_and_flip_mirrors():
    images = torch.rand(2, 3, 5, 7, generator=_gen())
    whole = torch.tensor([[0, 0, 5, 7], [0, 0, 5, 7]])
    np.testing.assert_allclose(resized_crops(images, whole, torch.tensor([False, False])), images, atol=1e-6)
    flipped = resized_crops(images, whole, torch.tensor([True, False]))
    np.testing.assert_allclose(flipped[0], images[0].flip(-1), atol=1e-6)
    np.testing.assert_allclose(flipped[1], images[1], atol=1e-6)


def test_a_crop_samples_pixel_centres_as_resizing_does():
    """On a ramp image (value = column index) bilinear sampling returns the source coordinate:
    output column k of a box at ``left`` of width ``w`` reads ``left + (k + 0.5) w / W - 0.5``."""
    width = 20
    ramp = torch.arange(width, dtype=torch.float32).expand(1, 3, 10, width).clone()
    out = resized_crops(ramp, torch.tensor([[2, 6, 6, 10]]), torch.tensor([False]))
    expected = 6 + (np.arange(width) + 0.5) * 10 / width - 0.5
    np.testing.assert_allclose(out[0, 0, 4], expected, atol=1e-5)


def test_crop_boxes_follow_random_resized_crop_sampling():
    boxes = crop_boxes(2000, 60, 80, (0.7, 1.0), (3 / 4, 4 / 3), _gen())
    top, left, h, w = boxes.unbind(1)
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 60).all() and (left + w <= 80).all()
    assert (h * w >= 0.7 * 4800 - 80 - 60).all()  # area U(0.7, 1) of the image, up to rounding
    ratio = w / h
    assert ratio.min() >= 3 / 4 - 0.05 and ratio.max() <= 4 / 3 + 0.05
    assert len(set(map(tuple, boxes.tolist()))) > 500  # boxes differ between images
    # no candidate can fit: the fallback is the centre crop of the whole image, ratio clamped
    wide = crop_boxes(3, 30, 90, (2.0, 3.0), (3 / 4, 4 / 3), _gen())
    assert wide.tolist() == [[0, 25, 30, 40]] * 3


def test_augmentation_is_seeded_in_range_and_leaves_its_input_alone():
    images = torch.rand(8, 3, 40, 40, generator=_gen(1))
    before = images.clone()
    augment = ImageAugmentation()
    a, b = augment(images, _gen(3)), augment(images, _gen(3))
    assert torch.equal(a, b) and torch.equal(images, before)
    assert not torch.equal(a, augment(images, _gen(4)))
    assert a.shape == images.shape and a.min() >= 0 and a.max() <= 1
    assert not any(torch.allclose(a[i], images[i], atol=1e-3) for i in range(8))


def test_greyscale_probability_and_jitter_ranges():
    augment = ImageAugmentation(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.0, greyscale_p=0.5)
    images = _solid(*[(0.9, 0.2, 0.1)] * 400)
    out = augment(images, _gen())
    grey = (out[:, 0] == out[:, 1]).all((1, 2)) & (out[:, 1] == out[:, 2]).all((1, 2))
    assert 150 < int(grey.sum()) < 250
    factors = augment.colour_factors(10000, _gen())
    assert factors[:, :3].min() >= 0.7 and factors[:, :3].max() <= 1.3
    assert factors[:, 3].min() >= -0.3 and factors[:, 3].max() <= 0.3
    assert math.isclose(float(factors[:, 3].mean()), 0.0, abs_tol=0.01)


def _image_domains() -> DomainDataset:
    rng = np.random.default_rng(0)
    coarse = torch.from_numpy(rng.random((24, 3, 4, 4), dtype=np.float32))
    inputs = torch.nn.functional.interpolate(coarse, size=(40, 40), mode="bilinear").numpy()
    return DomainDataset(
        name="toy-images",
        inputs=inputs,
        labels=np.tile([0, 1], 12),
        domains=np.repeat([0, 1, 2], 8),
        class_names=("a", "b"),
        domain_names=("d0", "d1", "d2"),
        source="toy",
    )


def test_protocol_augments_training_minibatches_only(monkeypatch):
    data = _image_domains()
    seen = []
    erm = DG["erm"]
    original = erm.update

    def spy(self, minibatches):
        seen.append([x.clone() for x, _ in minibatches])
        return original(self, minibatches)

    monkeypatch.setattr(erm, "update", spy)
    protocol = DGProtocol(test_envs=(0,), steps=1, checkpoint_freq=1)
    fixed = {"batch_size": 4, "lr": 0.0}
    on = protocol.run(data, "erm", {**fixed, "data_augmentation": True}, device="cpu")
    off = protocol.run(data, "erm", {**fixed, "data_augmentation": False}, device="cpu")
    raw = {tuple(np.round(x, 5).ravel()[:50]) for x in data.inputs}
    assert all(tuple(np.round(x.numpy(), 5).ravel()[:50]) not in raw for x in seen[0][0])
    assert all(tuple(np.round(x.numpy(), 5).ravel()[:50]) in raw for x in seen[1][0])
    # lr 0: the weights never change, so equal accuracies mean evaluation saw unaugmented images
    assert on["checkpoints"][0] | {"loss": 0} == off["checkpoints"][0] | {"loss": 0}
    assert on["hparams"]["data_augmentation"] is True and off["hparams"]["data_augmentation"] is False
