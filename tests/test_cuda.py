"""Every torch method on a CUDA device: it runs there, keeps its tensors there, and the same seed
gives the same numbers twice. Skipped on machines without CUDA (``benchmarks/gpu_check.sh`` is
the end-to-end check on a GPU)."""

from __future__ import annotations

import functools
import inspect

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from unseen.core.device import stream
from unseen.data import load_dataset
from unseen.data.domains import load_domains
from unseen.methods import DG, GZSL, TTA
from unseen.methods.registry import VLM
from unseen.protocols.dg import DGProtocol
from unseen.protocols.gzsl_transductive import unlabelled_features

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@functools.cache
def zsl_data():
    return load_dataset("synthetic:AWA2?scale=0.05&dim=64")


def test_streams_draw_on_the_device_and_repeat():
    first, second = (torch.randn(5, generator=stream(3, "noise", "cuda"), device="cuda") for _ in range(2))
    assert first.device.type == "cuda"
    torch.testing.assert_close(first, second, rtol=0, atol=0)


@pytest.mark.parametrize("name", list(GZSL))
def test_gzsl_method_fits_on_cuda_and_repeats_its_scores(name):
    data = zsl_data()
    cls = GZSL[name]
    hparams = {**cls.fast_hparams, **({"epochs": 2} if any(h.name == "epochs" for h in cls.hparams) else {})}
    scores = []
    for _ in range(2):
        unlabelled = {"unlabelled": unlabelled_features(data, 0)} if cls.transductive else {}
        method = cls(seed=0, device="cuda", **hparams).fit(data.train_set(), **unlabelled)
        scores.append(method.scores(data.features[:200]))
    assert np.isfinite(scores[0]).all()
    np.testing.assert_allclose(scores[0], scores[1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("algorithm", list(DG))
def test_dg_algorithm_trains_on_cuda_and_repeats_its_record(algorithm):
    data = load_domains("builtin:rotated-digits")
    protocol = DGProtocol((0,), steps=6, checkpoint_freq=3)
    records = [protocol.run(data, algorithm, {}, device="cuda") for _ in range(2)]
    for a, b in zip(records[0]["checkpoints"], records[1]["checkpoints"], strict=True):
        assert a.keys() == b.keys()
        np.testing.assert_allclose([a[k] for k in sorted(a)], [b[k] for k in sorted(b)], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", list(VLM))
def test_vlm_adapter_fits_on_cuda_like_on_cpu(name):
    from methods.vlm.planted import planted_pairs

    data = planted_pairs()
    support, val = data.shots(4)
    on_cpu = VLM[name](seed=0, device="cpu").fit(support, val).scores(data.test_features)
    on_cuda = VLM[name](seed=0, device="cuda").fit(support, val).scores(data.test_features)
    assert np.mean(on_cpu.argmax(1) == on_cuda.argmax(1)) > 0.95


@pytest.mark.parametrize("name", [n for n in TTA if n not in ("itta", "style-shift")])  # image models: below
def test_tta_method_adapts_on_cuda_and_repeats(name):
    g = torch.Generator().manual_seed(0)
    featurizer = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU()).eval()
    head = nn.Linear(16, 4)
    x = torch.randn(64, 8, generator=g)
    extra = {}
    if "source_features" in inspect.signature(TTA[name]).parameters:
        with torch.no_grad():
            extra = {"source_features": featurizer(x).numpy(), "source_labels": np.arange(64) % 4}
    outputs = []
    for _ in range(2):
        method = TTA[name](featurizer, head, seed=0, device="cuda", **extra)
        logits = [method.predict(batch) for batch in x.split(16)]
        assert all(out.device.type == "cuda" for out in logits)
        outputs.append(torch.cat(logits).cpu())
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-5, atol=1e-5)


def test_extraction_on_cuda_matches_cpu():
    from unseen.backbones.base import ENCODERS

    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)) for _ in range(4)]
    on_cpu = ENCODERS.create("efficientnet-lite0", device="cpu").encode_images(images)
    on_cuda = ENCODERS.create("efficientnet-lite0", device="cuda").encode_images(images)
    np.testing.assert_allclose(on_cuda, on_cpu, rtol=1e-3, atol=1e-3)


def test_image_augmentation_draws_on_cuda_and_repeats():
    from unseen.data.augmentation import ImageAugmentation

    images = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0)).cuda()
    first, second = (ImageAugmentation()(images, stream(0, "augmentation", "cuda")) for _ in range(2))
    assert first.device.type == "cuda" and first.shape == images.shape
    torch.testing.assert_close(first, second, rtol=0, atol=0)
