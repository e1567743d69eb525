"""EfficientNet-Lite0 on a handful of real images: shape, determinism, batch invariance, ImageNet weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from unseen.backbones.base import ENCODERS
from unseen.backbones.efficientnet_lite import EfficientNetLite0
from unseen.core.errors import EncoderError
from unseen.core.images import EFFICIENTNET_LITE, crop_and_resize
from unseen.data.images import load_images

OFFICE = Path(__file__).resolve().parents[3] / "shared" / "data" / "office-caltech10-images"
needs_office = pytest.mark.skipif(
    not OFFICE.is_dir(), reason=f"Office-Caltech10 images not found at {OFFICE} (see its SOURCE.md)"
)


@pytest.fixture(scope="module")
def encoder() -> EfficientNetLite0:
    return ENCODERS.create("efficientnet-lite0", device="cpu")


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    """Four real images: Office-Caltech10 when present, else built-in MNIST digits."""
    if OFFICE.is_dir():
        data = load_images(f"folder:{OFFICE}?domains=amazon,webcam&per_class=1")
        return [data.load(i) for i in (0, 7, 12, 18)]
    data = load_images("builtin:mnist?per_class=1")
    return [data.load(i) for i in range(4)]


@pytest.fixture(scope="module")
def features(encoder, images) -> np.ndarray:
    return encoder.encode_images(images, batch_size=4)


def test_features_are_1280_d_and_deterministic(encoder, images, features):
    assert features.shape == (4, 1280) and features.dtype == np.float32
    assert np.isfinite(features).all() and (features >= 0).all()  # means of ReLU6 outputs
    np.testing.assert_array_equal(encoder.encode_images(images, batch_size=4), features)


def test_features_do_not_depend_on_the_batch(encoder, images, features):
    in_threes = encoder.encode_images(images, batch_size=3)  # batches [0, 1, 2] and [3]
    np.testing.assert_allclose(in_threes, features, rtol=1e-4, atol=1e-5)
    alone = encoder.encode_images([images[2]], batch_size=1)
    np.testing.assert_allclose(alone[0], features[2], rtol=1e-4, atol=1e-5)


@needs_office
def test_packaged_weights_are_imagenet_pretrained(encoder):
    """The model's own ImageNet head names what the Office photos show."""
    amazon = load_images(f"folder:{OFFICE}?domains=amazon&per_class=1")
    backpack, mouse = (amazon.class_names.index(c) for c in ("backpack", "mouse"))
    logits = encoder.imagenet_classifier()(
        torch.from_numpy(encoder.encode_images([amazon.load(backpack), amazon.load(mouse)]))
    )
    assert logits.argmax(1).tolist() == [414, 673]  # ImageNet 'backpack', 'mouse, computer mouse'


def test_weights_hash_is_the_sha256_of_the_packaged_file(encoder):
    # The file name carries the first 8 hex digits of its SHA-256 (torch hub's convention).
    assert encoder.weights_path.name == "efficientnet-lite0-57934424.pth"
    assert encoder.weights_hash().startswith("57934424") and len(encoder.weights_hash()) == 64


def test_preprocessing_is_the_lite_normalisation_of_the_centre_crop(encoder):
    grey = Image.new("RGB", (300, 200), (127, 127, 127))
    white = Image.new("RGB", (50, 80), (255, 255, 255))
    x = encoder.preprocess([grey, white])
    assert x.shape == (2, 3, 224, 224) and x.dtype == torch.float32
    np.testing.assert_allclose(x[0].numpy(), 0.0, atol=1e-6)  # (127 - 127) / 128
    np.testing.assert_allclose(x[1].numpy(), 1.0, atol=1e-6)  # (255 - 127) / 128


def test_the_crop_keeps_the_central_square_of_the_shorter_side():
    # 300 x 200: "resize to 256, crop 224" keeps the central 175 x 175 of the original, x in 62.5..237.5.
    image = np.zeros((200, 300, 3), dtype=np.uint8)
    image[:, :50] = (255, 0, 0)
    image[:, 50:250] = (0, 255, 0)
    image[:, 250:] = (0, 0, 255)
    crop = crop_and_resize(Image.fromarray(image), EFFICIENTNET_LITE)
    assert crop.shape == (224, 224, 3)
    assert (crop == (0, 255, 0)).all()


def test_featurizer_is_a_copy_with_batchnorm_that_reproduces_the_features(encoder, images, features):
    featurizer = encoder.torch_featurizer()
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in featurizer.modules())
    x = encoder.preprocess(images[:2])
    with torch.no_grad():
        np.testing.assert_allclose(featurizer(x).numpy(), features[:2], rtol=1e-4, atol=1e-5)
        featurizer.train()  # BN-level test-time adaptation: batch statistics, no dropout or drop-connect
        np.testing.assert_array_equal(featurizer(x).numpy(), featurizer(x).numpy())
    # Updating the copy's running statistics leaves the encoder alone.
    np.testing.assert_array_equal(encoder.encode_images(images[:2], batch_size=2), features[:2])


def test_missing_or_damaged_weights_are_encoder_errors(tmp_path):
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(EncoderError, match="nowhere.pth does not exist.*omit --weights"):
        ENCODERS.create("efficientnet-lite0", weights=str(missing))
    damaged = tmp_path / "damaged.pth"
    damaged.write_bytes(b"not a state dict")
    encoder = ENCODERS.create("efficientnet-lite0", weights=str(damaged))
    with pytest.raises(EncoderError, match="damaged.pth could not be loaded"):
        encoder.encode_images([Image.new("RGB", (8, 8))])
