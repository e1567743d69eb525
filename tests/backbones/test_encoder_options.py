"""Encoder options as KEY=VALUE text: parsing, checking against the factory, typing, and cache identity."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from unseen.backbones.base import ENCODERS, ImageEncoder, encoder_identity
from unseen.backbones.cache import FeatureCache, feature_key
from unseen.backbones.extract import extract_features
from unseen.backbones.minilm import packaged_model_dir
from unseen.backbones.options import parse_encoder_options, split_options, typed_encoder_options
from unseen.core.errors import EncoderError, SpecError, UnknownNameError
from unseen.core.images import ImagePreprocessing
from unseen.data.images import ImageArrays, ImageDataset

FLAGS = {"weights": "--weights PATH", "device": "--device DEV"}


class ScaledColour(ImageEncoder):
    """Mean colour of each image times ``scale`` (3-d); counts the images it encodes."""

    dim = 3

    def __init__(self, model: str, scale: float) -> None:
        self.id = f"scaled-colour:{model}"
        self.scale = scale
        self.preprocessing = ImagePreprocessing(resize=4, crop=4, mean=(0, 0, 0), std=(1, 1, 1))
        self.encoded = 0

    def weights_hash(self) -> str:
        return "no-weights"

    def encode_images(self, images, batch_size=64, progress=None):
        self.encoded += len(images)
        return np.stack(
            [np.asarray(images[i], np.float32).mean(axis=(0, 1)) * self.scale for i in range(len(images))]
        )


def scaled_colour(
    weights: str | None = None,
    device: str | None = None,
    model: str = "base",
    scale: float = 1.0,
    channels_last: bool = False,
    threads: int | None = None,
    tag: str | None = None,
) -> ScaledColour:
    return ScaledColour(model, scale)


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(ENCODERS._entries, "scaled-colour", scaled_colour)
    return "scaled-colour"


def test_pairs_split_at_the_first_equals_sign_and_keep_the_value_verbatim():
    assert split_options(["model=ViT-B-32", "path=/a/b=c", " tag =", "x= 1"]) == {
        "model": "ViT-B-32",
        "path": "/a/b=c",
        "tag": "",
        "x": " 1",
    }
    assert split_options([]) == {}


@pytest.mark.parametrize(
    "pairs, message",
    [
        (["model"], r"'model' is not KEY=VALUE; write it like model=ViT-B-32"),
        (["=resnet50"], r"'=resnet50' is not KEY=VALUE"),
        (["model=a", "model=b"], r"'model' is given twice \(model=a and model=b\); keep one"),
    ],
)
def test_malformed_pairs_are_spec_errors_that_show_the_fix(pairs, message):
    with pytest.raises(SpecError, match=message):
        split_options(pairs)


def test_values_take_the_type_the_factory_annotates(registered):
    options = parse_encoder_options(
        registered, ["scale=2.5", "channels_last=Off", "threads=3", "model=007", "tag=true"], FLAGS
    )
    assert options == {"scale": 2.5, "channels_last": False, "threads": 3, "model": "007", "tag": "true"}
    assert type(options["threads"]) is int and type(options["scale"]) is float
    for text, value in [
        ("true", True),
        ("YES", True),
        ("on", True),
        ("1", True),
        ("no", False),
        ("0", False),
    ]:
        assert parse_encoder_options(registered, [f"channels_last={text}"], FLAGS) == {"channels_last": value}


def test_real_backends_type_their_options():
    assert parse_encoder_options("efficientnet-lite0", ["threads=2", "channels_last=false"], FLAGS) == {
        "threads": 2,
        "channels_last": False,
    }
    assert parse_encoder_options("hf-text", ["max_length=64"], FLAGS) == {"max_length": 64}
    for name in ("open-clip-image", "open-clip-text", "timm"):
        assert parse_encoder_options(name, ["model=ViT-B-32"], FLAGS) == {"model": "ViT-B-32"}


@pytest.mark.parametrize(
    "pair, message",
    [
        ("threads=two", r"option threads='two' must be an integer; write e.g. threads=4"),
        ("threads=2.0", r"option threads='2.0' must be an integer"),
        ("scale=nan", r"option scale='nan' must be a finite number; write e.g. scale=0.5"),
        ("scale=", r"option scale='' must be a finite number"),
        ("channels_last=maybe", r"option channels_last='maybe' must be true or false \(also yes/no"),
    ],
)
def test_a_value_of_the_wrong_type_names_option_encoder_and_an_example(registered, pair, message):
    with pytest.raises(SpecError, match=rf"encoder 'scaled-colour': {message}"):
        parse_encoder_options(registered, [pair], FLAGS)


def test_an_unknown_option_names_the_encoder_what_it_accepts_and_the_fix():
    with pytest.raises(UnknownNameError) as error:
        parse_encoder_options("timm", ["modle=resnet50"], FLAGS)
    message = str(error.value)
    assert "encoder 'timm' has no option 'modle'" in message
    assert "Did you mean model?" in message and "It accepts: model (besides weights and device)" in message
    assert "--encoder-option model=VALUE" in message
    with pytest.raises(UnknownNameError, match=r"It accepts: channels_last, threads \("):
        parse_encoder_options("efficientnet-lite0", ["batch=4"], FLAGS)


@pytest.mark.parametrize("name", ["hf-image", "minilm"])
def test_encoders_without_options_say_so(name):
    with pytest.raises(
        UnknownNameError, match=rf"'{name}' has no option 'model'; it takes no options besides"
    ):
        parse_encoder_options(name, ["model=x"], FLAGS)


def test_weights_and_device_point_to_their_own_flags():
    with pytest.raises(
        SpecError, match=r"'weights' is not given as an encoder option for 'timm'; use --weights"
    ):
        parse_encoder_options("timm", ["weights=/tmp/w.pth"], FLAGS)
    with pytest.raises(SpecError, match=r"use --device DEV"):
        parse_encoder_options("timm", ["device=cpu"], FLAGS)
    # a caller without a weights flag of its own may take it as an option
    assert typed_encoder_options("timm", {"weights": "/tmp/w.pth"}, reserved={}) == {"weights": "/tmp/w.pth"}


def test_an_unknown_encoder_is_named_before_its_options():
    with pytest.raises(UnknownNameError, match="unknown encoder 'tim'. Did you mean timm?"):
        parse_encoder_options("tim", ["model=resnet50"], FLAGS)


def test_create_rejects_an_unknown_keyword_with_the_same_error_as_the_cli(registered):
    with pytest.raises(UnknownNameError, match="has no option 'sclae'. Did you mean scale?"):
        ENCODERS.create(registered, sclae=2.0)


def test_create_records_the_non_default_options_sorted(registered):
    encoder = ENCODERS.create(registered, weights=None, device="cpu", scale=2.0, model="base", threads=4)
    assert dict(encoder.options) == {"scale": 2.0, "threads": 4}  # model=base is the default
    assert list(encoder.options) == ["scale", "threads"]
    assert ENCODERS.create(registered).options == {}
    with pytest.raises(TypeError):
        encoder.options["scale"] = 3.0  # read-only: the identity cannot drift after creation


def _tiny_images() -> ImageDataset:
    pixels = np.random.default_rng(0).integers(0, 256, size=(4, 5, 5, 3), dtype=np.uint8)
    return ImageDataset(
        name="tiny",
        source=ImageArrays(pixels),
        labels=np.array([0, 1, 0, 1]),
        domains=np.array([0, 0, 1, 1]),
        class_names=("cat", "dog"),
        domain_names=("photo", "sketch"),
    )


def test_cache_identity_differs_by_options_and_not_by_their_order(registered, tmp_path):
    def build(*pairs: str) -> ImageEncoder:
        return ENCODERS.create(registered, **parse_encoder_options(registered, list(pairs), FLAGS))

    images = _tiny_images().images_hash
    key_a = feature_key(build("model=a", "threads=2"), images)
    assert key_a == feature_key(build("threads=2", "model=a"), images)
    assert key_a["options"] == {"model": "a", "threads": 2}
    assert key_a != feature_key(build("model=b", "threads=2"), images)
    assert key_a != feature_key(build("model=a", "threads=3"), images)
    cache = FeatureCache(tmp_path)
    assert cache.path(key_a) == cache.path(feature_key(build("threads=2", "model=a"), images))
    assert cache.path(key_a) != cache.path(feature_key(build("model=a", "threads=3"), images))
    # an option at its default is no option: the key is the one written before options existed
    default = feature_key(build("channels_last=false", "scale=1"), images)
    assert "options" not in default and default == feature_key(build(), images)
    assert encoder_identity(build()) == {"encoder": "scaled-colour:base", "weights_sha256": "no-weights"}


def test_features_are_reused_only_under_the_same_options(registered, tmp_path):
    data = _tiny_images()

    def extract(*pairs: str) -> tuple[np.ndarray, ScaledColour]:
        encoder = ENCODERS.create(registered, **parse_encoder_options(registered, list(pairs), FLAGS))
        return extract_features(encoder, data, cache=FeatureCache(tmp_path))[0], encoder

    first, encoder = extract("scale=2", "tag=x")
    assert encoder.encoded == 4
    again, encoder = extract("tag=x", "scale=2.0")
    assert encoder.encoded == 0
    np.testing.assert_array_equal(again, first)
    other, encoder = extract("scale=3", "tag=x")
    assert encoder.encoded == 4
    np.testing.assert_allclose(other, first * 1.5, rtol=1e-6)


def test_hf_text_max_length_reaches_the_sentence_encoder():
    folder = str(packaged_model_dir())
    options = parse_encoder_options("hf-text", ["max_length=4"], FLAGS)
    short = ENCODERS.create("hf-text", weights=folder, device="cpu", **options)
    full = ENCODERS.create("hf-text", weights=folder, device="cpu")  # the model loads on first use only
    assert short.max_length == 4 and dict(short.options) == {"max_length": 4}
    assert full.max_length == 256 and full.options == {}
    assert encoder_identity(short) != encoder_identity(full)
    # 4 word pieces are [CLS] a photo [SEP]: everything after "a photo" is cut off
    cut, head = short.encode_texts(["a photo of a zebra on the grass", "a photo"])
    np.testing.assert_allclose(cut, head, atol=1e-6)


def test_hf_text_rejects_a_max_length_below_one():
    with pytest.raises(EncoderError, match="max_length must be at least 1, got 0"):
        ENCODERS.create("hf-text", weights=str(packaged_model_dir()), max_length=0)


@pytest.mark.parametrize("name, module", [("open-clip-image", "open_clip"), ("timm", "timm")])
def test_without_the_library_the_parsed_model_gets_past_the_architecture_check(name, module, tmp_path):
    if importlib.util.find_spec(module) is not None:
        pytest.skip(f"{module} is installed here, so its absence cannot be tested")
    checkpoint = tmp_path / "weights.pt"
    checkpoint.write_bytes(b"\0")
    options = parse_encoder_options(name, ["model=resnet18"], FLAGS)
    # without model= the error would be "needs model=ARCH"; with it, the missing library is next
    with pytest.raises(EncoderError, match=r"needs the package .*pip install 'unseen\["):
        ENCODERS.create(name, weights=str(checkpoint), **options)


def test_timm_built_from_option_text_keys_on_its_architecture(tmp_path):
    timm = pytest.importorskip("timm", reason="timm is not installed (pip install 'unseen[timm]')")
    import torch

    for arch in ("resnet18", "resnet34"):
        with torch.random.fork_rng():
            torch.manual_seed(0)
            torch.save(timm.create_model(arch, pretrained=False).state_dict(), tmp_path / f"{arch}.pth")
    images = _tiny_images().images_hash
    keys = []
    for arch in ("resnet18", "resnet34"):
        options = parse_encoder_options("timm", [f"model={arch}"], FLAGS)
        encoder = ENCODERS.create("timm", weights=str(tmp_path / f"{arch}.pth"), device="cpu", **options)
        assert encoder.id == f"timm:{arch}" and dict(encoder.options) == {"model": arch}
        keys.append(feature_key(encoder, images))
    assert keys[0] != keys[1]


def test_open_clip_built_from_option_text_records_its_architecture(tiny_open_clip):
    _, model, weights, _ = tiny_open_clip
    for name in ("open-clip-image", "open-clip-text"):
        options = parse_encoder_options(name, [f"model={model}"], FLAGS)
        encoder = ENCODERS.create(name, weights=str(weights), device="cpu", **options)
        assert encoder.id == f"open-clip:{model}"
        assert dict(encoder.options) == {"model": model} and encoder.dim == 16
