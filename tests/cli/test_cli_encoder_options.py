"""`--encoder-option KEY=VALUE` on `unseen extract` and `unseen tta`: options reach the encoder, key the
cache and are recorded; mistakes are one-line errors before any data is read."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from torch import nn

from unseen.backbones.base import ENCODERS, ImageEncoder
from unseen.cli import main
from unseen.core.images import ImagePreprocessing

DATA = "builtin:colored-digits?per_class=1"  # 3 domains x 2 classes x 1 image
MISSING_DATA = "folder:/nonexistent/unseen-images"  # any error about it means the options passed


class MeanColour(ImageEncoder):
    """Each image's mean colour at 8 x 8 px, times ``gain`` (3-d), through a BatchNorm network."""

    dim = 3

    def __init__(self, model: str, gain: float) -> None:
        self.id = f"mean-colour:{model}"
        self.gain = gain
        self.preprocessing = ImagePreprocessing(resize=8, crop=8, mean=(0, 0, 0), std=(1, 1, 1))

    def weights_hash(self) -> str:
        return "none"

    def torch_featurizer(self) -> nn.Module:
        return nn.Sequential(nn.BatchNorm2d(3, affine=False), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()

    def preprocess(self, images) -> torch.Tensor:
        pixels = [
            np.asarray(image.convert("RGB").resize((8, 8), Image.BILINEAR), np.float32) for image in images
        ]
        return torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2) * (self.gain / 255.0)

    def encode_images(self, images, batch_size=64, progress=None):
        with torch.no_grad():
            x = self.preprocess([images[i] for i in range(len(images))])
            return self.torch_featurizer()(x).numpy()


@pytest.fixture
def received(monkeypatch) -> list[dict]:
    """Registers ``mean-colour``; returns the keyword arguments of each call to its factory."""
    calls: list[dict] = []

    def mean_colour(
        weights: str | None = None,
        device: str | None = None,
        model: str = "base",
        gain: float = 1.0,
        channels_last: bool = True,
    ) -> MeanColour:
        calls.append(
            dict(weights=weights, device=device, model=model, gain=gain, channels_last=channels_last)
        )
        return MeanColour(model, gain)

    monkeypatch.setitem(ENCODERS._entries, "mean-colour", mean_colour)
    return calls


def _extract(tmp_path, out: str, *options: str, encoder: str = "mean-colour", data: str = DATA):
    args = ["extract", "--encoder", encoder, "--data", data, "--out", str(tmp_path / out)]
    args += ["--cache-dir", str(tmp_path / "cache")]
    for option in options:
        args += ["--encoder-option", option]
    return CliRunner().invoke(main, args)


def _features(path) -> tuple[np.ndarray, dict]:
    with np.load(path) as z:
        return z["features"], json.loads(str(z["meta"]))


def test_options_reach_the_constructor_typed_and_key_the_cache(tmp_path, received):
    first = _extract(tmp_path, "a.npz", "model=small", "gain=2.5", "channels_last=no")
    assert first.exit_code == 0, first.output
    assert "cache miss" in first.output
    assert received == [dict(weights=None, device=None, model="small", gain=2.5, channels_last=False)]
    features, meta = _features(tmp_path / "a.npz")
    assert meta["encoder"] == "mean-colour:small" and features.shape == (6, 3)

    reordered = _extract(tmp_path, "b.npz", "channels_last=0", "gain=2.50", "model=small")
    assert reordered.exit_code == 0 and "cache hit" in reordered.output
    np.testing.assert_array_equal(_features(tmp_path / "b.npz")[0], features)

    other_gain = _extract(tmp_path, "c.npz", "model=small", "gain=5", "channels_last=no")
    assert other_gain.exit_code == 0 and "cache miss" in other_gain.output
    np.testing.assert_allclose(_features(tmp_path / "c.npz")[0], 2 * features, rtol=1e-5)
    assert received[-1]["gain"] == 5.0


def test_without_options_the_constructor_gets_its_defaults(tmp_path, received):
    result = _extract(tmp_path, "a.npz")
    assert result.exit_code == 0, result.output
    assert received == [dict(weights=None, device=None, model="base", gain=1.0, channels_last=True)]


@pytest.mark.parametrize(
    "option, message",
    [
        ("gain", "encoder option 'gain' is not KEY=VALUE; write it like model=ViT-B-32"),
        (
            "gian=2",
            "encoder 'mean-colour' has no option 'gian'. Did you mean gain? It accepts: "
            "channels_last, gain, model (besides weights and device)",
        ),
        ("gain=loud", "option gain='loud' must be a finite number; write e.g. gain=0.5"),
        ("channels_last=maybe", "option channels_last='maybe' must be true or false"),
        (
            "weights=w.pth",
            "'weights' is not given as an encoder option for 'mean-colour'; use --weights PATH",
        ),
        ("device=cpu", "use --device DEV"),
    ],
)
def test_option_mistakes_are_one_line_errors_before_the_data_is_read(tmp_path, received, option, message):
    result = _extract(tmp_path, "x.npz", option, data=MISSING_DATA)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output and "nonexistent" not in result.output
    assert received == [] and not (tmp_path / "x.npz").exists()


def test_a_repeated_option_is_an_error(tmp_path, received):
    result = _extract(tmp_path, "x.npz", "gain=1", "gain=2")
    assert result.exit_code == 2 and "'gain' is given twice (gain=1 and gain=2); keep one" in result.output


def test_real_backends_name_what_they_accept(tmp_path):
    timm = _extract(tmp_path, "x.npz", "modle=resnet50", encoder="timm", data=MISSING_DATA)
    assert timm.exit_code == 2
    assert "It accepts: model" in timm.output and "--encoder-option model=VALUE" in timm.output
    hf = _extract(tmp_path, "x.npz", "model=clip", encoder="hf-image", data=MISSING_DATA)
    assert hf.exit_code == 2 and "takes no options besides weights and device" in hf.output
    lite = _extract(tmp_path, "x.npz", "threads=two", encoder="efficientnet-lite0", data=MISSING_DATA)
    assert lite.exit_code == 2 and "option threads='two' must be an integer" in lite.output


def test_extract_help_documents_the_option():
    result = CliRunner().invoke(main, ["extract", "--help"])
    text = " ".join(result.output.split())
    assert "--encoder-option KEY=VALUE" in text and "model=ARCH for open-clip-image and timm" in text
    assert "--encoder-option model=ViT-B-32" in text


def _tta(tmp_path, *extra: str):
    args = ["tta", "--data", "builtin:colored-digits?per_class=4", "--domains", "2", "--method", "t3a"]
    args += ["--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "tta.json"), *extra]
    return CliRunner().invoke(main, args)


def test_tta_builds_its_encoder_with_the_options_and_records_them(tmp_path, received):
    result = _tta(tmp_path, "--encoder", "mean-colour", "--encoder-option", "gain=3", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert received == [dict(weights=None, device="cpu", model="base", gain=3.0, channels_last=True)]
    record = json.loads((tmp_path / "tta.json").read_text())
    assert record["data"]["encoder"] == "mean-colour:base"
    assert record["data"]["options"] == {"gain": 3.0}


def test_tta_option_mistakes_and_misuse(tmp_path, received):
    typo = _tta(tmp_path, "--encoder", "mean-colour", "--encoder-option", "gian=3")
    assert typo.exit_code == 2 and "Did you mean gain?" in typo.output and received == []
    with_model = _tta(tmp_path, "--model", str(tmp_path / "m.pt"), "--encoder-option", "gain=3")
    assert with_model.exit_code == 2 and "belong to --encoder, not --model" in with_model.output
