"""Optional local-weights encoders: clear errors always, real loading where the library exists."""

import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image

from unseen.backbones.base import ENCODERS
from unseen.backbones.minilm import packaged_model_dir
from unseen.core.errors import EncoderError

ALL = ("open-clip-image", "open-clip-text", "timm", "hf-image", "hf-text")
ARCH = {"open-clip-image": "ViT-B-32", "open-clip-text": "ViT-B-32", "timm": "resnet18"}
EXTRA = {"open-clip-image": ("open_clip", "open_clip"), "timm": ("timm", "timm")}


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest.mark.parametrize("name", ALL)
def test_without_weights_the_error_says_weights_must_be_a_local_path(name):
    options = {"model": ARCH[name]} if name in ARCH else {}
    with pytest.raises(EncoderError, match="local path only.*weights=PATH.*never downloads"):
        ENCODERS.create(name, **options)


@pytest.mark.parametrize("name", ALL)
def test_missing_weights_path_is_named(name, tmp_path):
    missing = tmp_path / "missing.pt"
    with pytest.raises(EncoderError, match="missing.pt do not exist"):
        ENCODERS.create(name, weights=str(missing))


@pytest.mark.parametrize("name", ["open-clip-image", "open-clip-text", "timm"])
def test_a_checkpoint_file_needs_its_architecture(name, tmp_path):
    checkpoint = tmp_path / "weights.pt"
    checkpoint.write_bytes(b"\0")
    with pytest.raises(EncoderError, match="needs model=ARCH"):
        ENCODERS.create(name, weights=str(checkpoint))


@pytest.mark.parametrize("name", ["open-clip-image", "timm"])
def test_without_the_library_the_error_names_the_extra(name, tmp_path):
    module, extra = EXTRA[name]
    if _importable(module):
        pytest.skip(f"{module} is installed here, so its absence cannot be tested")
    checkpoint = tmp_path / "weights.pt"
    checkpoint.write_bytes(b"\0")
    with pytest.raises(EncoderError, match=rf"pip install 'unseen\[{extra}\]'"):
        ENCODERS.create(name, weights=str(checkpoint), model=ARCH[name])


def test_hf_folders_need_a_config(tmp_path):
    with pytest.raises(EncoderError, match="has no config.json"):
        ENCODERS.create("hf-image", weights=str(tmp_path))


def test_hf_text_on_a_sentence_encoder_folder_equals_minilm():
    folder = str(packaged_model_dir())
    texts = ["a photo of a zebra", "itap of a horse"]
    hf = ENCODERS.create("hf-text", weights=folder, device="cpu")
    minilm = ENCODERS.create("minilm", device="cpu")
    assert hf.id == "hf-text:model" and hf.dim == 384
    assert hf.weights_hash() == minilm.weights_hash()
    np.testing.assert_allclose(hf.encode_texts(texts), minilm.encode_texts(texts), atol=1e-6)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A small random CLIP saved as a Hugging Face folder (MiniLM's tokenizer stands in for CLIP's)."""
    from transformers import AutoTokenizer, CLIPConfig, CLIPImageProcessor, CLIPModel

    folder = tmp_path_factory.mktemp("tiny-clip")
    config = CLIPConfig(
        text_config=dict(
            vocab_size=30522,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=64,
            pad_token_id=0,
            bos_token_id=101,
            eos_token_id=102,
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=16,
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = CLIPModel(config).eval()
    model.save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 40}, crop_size={"height": 32, "width": 32}).save_pretrained(
        folder
    )
    AutoTokenizer.from_pretrained(packaged_model_dir(), local_files_only=True).save_pretrained(folder)
    return folder, model


def _pooled(out):
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def test_hf_image_gives_clip_image_features(tiny_clip):
    from transformers import AutoImageProcessor

    folder, model = tiny_clip
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (48, 60, 3), dtype=np.uint8)) for _ in range(3)]
    encoder = ENCODERS.create("hf-image", weights=str(folder), device="cpu")
    pixels = AutoImageProcessor.from_pretrained(folder)(images=images, return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        expected = _pooled(model.get_image_features(pixel_values=pixels)).numpy()
    np.testing.assert_allclose(encoder.encode_images(images, batch_size=2), expected, atol=1e-5)
    assert encoder.dim == 16
    assert (encoder.preprocessing.resize, encoder.preprocessing.crop) == (40, 32)
    assert encoder.preprocessing.interpolation == "bicubic"


def test_hf_text_gives_clip_text_features_in_the_same_space(tiny_clip):
    from transformers import AutoTokenizer

    folder, model = tiny_clip
    texts = ["a photo of a cat.", "a bad photo of the dog in a video game."]
    encoder = ENCODERS.create("hf-text", weights=str(folder), device="cpu")
    tokens = AutoTokenizer.from_pretrained(folder)(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        expected = _pooled(
            model.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
        ).numpy()
    np.testing.assert_allclose(encoder.encode_texts(texts, batch_size=1), expected, atol=1e-5)
    assert encoder.dim == ENCODERS.create("hf-image", weights=str(folder), device="cpu").dim


def test_timm_loads_a_local_checkpoint(tmp_path):
    timm = pytest.importorskip("timm", reason="timm is not installed (pip install 'unseen[timm]')")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        reference = timm.create_model("resnet18", pretrained=False).eval()
    torch.save(reference.state_dict(), tmp_path / "resnet18.pth")
    encoder = ENCODERS.create("timm", weights=str(tmp_path / "resnet18.pth"), model="resnet18", device="cpu")
    reference.reset_classifier(0)
    image = Image.new("RGB", (64, 48), (120, 30, 200))
    cfg = timm.data.resolve_model_data_config(reference)
    batch = timm.data.create_transform(**cfg, is_training=False)(image).unsqueeze(0)
    with torch.inference_mode():
        expected = reference(batch).numpy()
    assert encoder.dim == 512
    np.testing.assert_allclose(encoder.encode_images([image]), expected, atol=1e-4)


def test_open_clip_image_and_text_share_one_space(tiny_open_clip):
    open_clip, name, weights, reference = tiny_open_clip
    options = dict(weights=str(weights), model=name, device="cpu")
    image_encoder = ENCODERS.create("open-clip-image", **options)
    text_encoder = ENCODERS.create("open-clip-text", **options)
    tokens = open_clip.get_tokenizer(name)(["a photo of a cat."])
    with torch.inference_mode():
        expected = reference.encode_text(tokens).numpy()
    assert image_encoder.dim == text_encoder.dim == 16
    np.testing.assert_allclose(text_encoder.encode_texts(["a photo of a cat."]), expected, atol=1e-5)
    assert image_encoder.encode_images([Image.new("RGB", (40, 40))]).shape == (1, 16)
