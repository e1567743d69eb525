"""The feature cache: reuse without calling the encoder, a new key for anything that changes, rebuild of
damaged files; and the extraction output that DG and few-shot loaders read."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from unseen.backbones.base import ImageEncoder
from unseen.backbones.cache import CorruptCacheWarning, FeatureCache, default_cache_root, feature_key
from unseen.backbones.extract import extract_features, save_features
from unseen.core.images import ImagePreprocessing
from unseen.data.domains import load_domains
from unseen.data.images import ImageArrays, ImageDataset
from unseen.data.paired import load_features
from unseen.data.specs import parse_spec


class CountingEncoder(ImageEncoder):
    """Mean colour of each image (3-d); counts the images it encodes."""

    id = "counting"
    dim = 3

    def __init__(self, weights: str = "w1", crop: int = 8) -> None:
        self.weights = weights
        self.preprocessing = ImagePreprocessing(resize=crop, crop=crop, mean=(0, 0, 0), std=(1, 1, 1))
        self.encoded = 0

    def weights_hash(self) -> str:
        return self.weights

    def encode_images(self, images, batch_size=64, progress=None):
        self.encoded += len(images)
        means = [np.asarray(images[i], dtype=np.float32).mean(axis=(0, 1)) for i in range(len(images))]
        return np.stack(means)


def _dataset(pixels: np.ndarray | None = None) -> ImageDataset:
    if pixels is None:
        pixels = np.random.default_rng(0).integers(0, 256, size=(6, 5, 5, 3), dtype=np.uint8)
    return ImageDataset(
        name="tiny",
        source=ImageArrays(pixels),
        labels=np.array([0, 1, 0, 1, 0, 1]),
        domains=np.array([0, 0, 0, 1, 1, 1]),
        class_names=("cat", "dog"),
        domain_names=("photo", "sketch"),
    )


def test_second_extraction_reads_the_cache_without_calling_the_encoder(tmp_path):
    encoder, data = CountingEncoder(), _dataset()
    first, meta = extract_features(encoder, data, cache=FeatureCache(tmp_path))
    assert encoder.encoded == 6
    np.testing.assert_allclose(first[0], data.source.pixels[0].reshape(-1, 3).mean(0), rtol=1e-6)
    cache = FeatureCache(tmp_path)
    again, meta_again = extract_features(encoder, data, cache=cache)
    assert encoder.encoded == 6 and (cache.hits, cache.misses) == (1, 0)
    np.testing.assert_array_equal(again, first)
    assert meta_again == meta and meta["weights_sha256"] == "w1" and meta["dataset"]["images"] == 6


def _one_pixel_changed(pixels: np.ndarray) -> np.ndarray:
    pixels = pixels.copy()
    pixels[3, 0, 0, 0] ^= 1
    return pixels


CHANGES = {
    "weights": lambda data: (CountingEncoder(weights="w2"), data),
    "preprocessing": lambda data: (CountingEncoder(crop=16), data),
    "one pixel": lambda data: (CountingEncoder(), _dataset(_one_pixel_changed(data.source.pixels))),
}


@pytest.mark.parametrize("change", CHANGES)
def test_anything_the_features_depend_on_changes_the_key(tmp_path, change):
    data = _dataset()
    extract_features(CountingEncoder(), data, cache=FeatureCache(tmp_path))
    encoder, changed = CHANGES[change](data)
    cache = FeatureCache(tmp_path)
    extract_features(encoder, changed, cache=cache)
    assert encoder.encoded == 6 and cache.misses == 1
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_relabelling_the_images_keeps_their_cached_features(tmp_path):
    data = _dataset()
    extract_features(CountingEncoder(), data, cache=FeatureCache(tmp_path))
    relabelled = replace(data, labels=1 - data.labels, class_names=("dog", "cat"))
    encoder = CountingEncoder()
    extract_features(encoder, relabelled, cache=FeatureCache(tmp_path))
    assert encoder.encoded == 0


def test_a_truncated_cache_file_is_rebuilt_with_a_warning(tmp_path):
    data = _dataset()
    expected, _ = extract_features(CountingEncoder(), data, cache=FeatureCache(tmp_path))
    (path,) = tmp_path.glob("*.npz")
    path.write_bytes(path.read_bytes()[:100])
    encoder = CountingEncoder()
    with pytest.warns(CorruptCacheWarning, match="cannot be trusted.*unreadable"):
        rebuilt, _ = extract_features(encoder, data, cache=FeatureCache(tmp_path))
    assert encoder.encoded == 6
    np.testing.assert_array_equal(rebuilt, expected)
    cache = FeatureCache(tmp_path)
    np.testing.assert_array_equal(cache.get(feature_key(encoder, data.images_hash)), expected)


def test_features_altered_behind_the_checksum_are_not_trusted(tmp_path):
    data, encoder = _dataset(), CountingEncoder()
    extract_features(encoder, data, cache=FeatureCache(tmp_path))
    (path,) = tmp_path.glob("*.npz")
    with np.load(path) as z:
        content = {k: z[k] for k in z.files}
    content["features"] = content["features"] + 1.0
    np.savez(path, **content)
    key = feature_key(encoder, data.images_hash)
    with pytest.warns(CorruptCacheWarning, match="checksum mismatch"):
        assert FeatureCache(tmp_path).get(key) is None
    assert not path.exists()


def test_cache_root_follows_the_argument_then_unseen_cache_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("UNSEEN_CACHE", raising=False)
    assert default_cache_root() == tmp_path / "home" / ".cache" / "unseen" / "features"
    monkeypatch.setenv("UNSEEN_CACHE", str(tmp_path / "elsewhere"))
    assert FeatureCache().root == tmp_path / "elsewhere" / "features"
    assert FeatureCache(tmp_path / "mine").root == tmp_path / "mine"


def test_saved_features_load_as_multi_domain_and_as_paired_data(tmp_path):
    data = _dataset()
    features, meta = extract_features(CountingEncoder(), data)
    out = save_features(tmp_path / "tiny.npz", features, data, meta)
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.npz"]  # no temporary file left behind
    domains = load_domains(f"npz-domains:{out}")
    np.testing.assert_array_equal(domains.inputs, features)
    np.testing.assert_array_equal(domains.labels, data.labels)
    np.testing.assert_array_equal(domains.domains, data.domains)
    assert domains.class_names == ("cat", "dog") and domains.domain_names == ("photo", "sketch")
    paired = load_features(parse_spec(f"features:{out}?domains=sketch"))
    assert paired.features.shape == (3, 3)
    with np.load(out) as z:
        assert json.loads(str(z["meta"]))["encoder"] == "counting"
