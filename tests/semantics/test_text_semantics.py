"""Prompt templates, CLIP-style prompt ensembling and text class semantics for GZSL."""

import hashlib
import json

import numpy as np
import pytest

from unseen.backbones.base import ENCODERS, TextEncoder
from unseen.backbones.cache import FeatureCache
from unseen.core.errors import (
    DataError,
    DataFileNotFound,
    DataFormatError,
    EncoderError,
    SpecError,
    UnknownNameError,
    UnseenError,
)
from unseen.data import load_dataset
from unseen.data.mnist_zsl import mnist_zsl_dataset
from unseen.protocols import GZSLProtocol
from unseen.semantics.templates import IMAGENET7, IMAGENET80, TEMPLATE_SETS, template_set
from unseen.semantics.text import class_prompts, class_text_embeddings, class_words, with_text_semantics


class HashEncoder(TextEncoder):
    """A deterministic stand-in: each text maps to a seeded random 8-d vector; calls are recorded."""

    id = "hash-encoder"
    dim = 8

    def __init__(self):
        self.calls = []

    def weights_hash(self):
        return "0" * 64

    def encode_texts(self, texts, batch_size=64):
        self.calls.append(list(texts))
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            rows.append(np.random.default_rng(seed).normal(size=self.dim) * (1 + len(text)))
        return np.array(rows, dtype=np.float32)


def _unit(a):
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def minilm():
    encoder = ENCODERS.create("minilm", device="cpu")
    encoder.encode_texts(["load the model once for the module"])
    return encoder


@pytest.fixture
def hash_encoder(monkeypatch):
    encoder = HashEncoder()
    monkeypatch.setitem(ENCODERS._entries, "hash-test", lambda weights=None, device=None: encoder)
    return encoder


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("UNSEEN_CACHE", str(tmp_path / "cache"))


# -- templates ----------------------------------------------------------------------------------
def test_template_sets_hold_the_published_prompts():
    assert len(IMAGENET80) == len(set(IMAGENET80)) == 80
    assert all(t.count("{}") == 1 for t in IMAGENET80)
    assert len(IMAGENET7) == 7 and set(IMAGENET7) <= set(IMAGENET80)
    assert template_set("photo").fill("zebra") == ["a photo of a zebra."]
    assert template_set("description").fill("zebra", "has stripes") == ["zebra, which has stripes."]
    assert {"imagenet80", "imagenet7", "photo", "description"} <= set(TEMPLATE_SETS)


def test_a_string_with_braces_is_a_template_of_its_own():
    assert template_set("a handwritten digit {}.").fill("seven") == ["a handwritten digit seven."]


def test_bad_template_names_and_patterns_are_clear_errors():
    with pytest.raises(UnknownNameError, match="unknown template set 'imagenet8'.*Did you mean"):
        template_set("imagenet8")
    with pytest.raises(SpecError, match="exactly once"):
        template_set("a {} and a {}")
    with pytest.raises(SpecError, match="takes a description"):
        class_prompts(["zebra"], templates="description")


def test_class_names_become_words():
    assert class_words("002.Laysan_Albatross") == "Laysan Albatross"
    assert class_words("grizzly+bear") == "grizzly bear"
    assert class_words("seven") == "seven"


def test_descriptions_join_the_class_prompts():
    prompts = class_prompts(["zebra", "horse"], "photo", descriptions={"zebra": ["has stripes", "is wild"]})
    assert prompts == [
        ["a photo of a zebra.", "zebra, which has stripes.", "zebra, which is wild."],
        ["a photo of a horse."],
    ]
    with pytest.raises(DataError, match="classes the dataset does not have.*'okapi'"):
        class_prompts(["zebra"], "photo", descriptions={"okapi": "has stripes"})


# -- prompt ensembling --------------------------------------------------------------------------
def test_ensemble_is_the_normalised_mean_of_normalised_prompt_embeddings(minilm):
    got = class_text_embeddings(minilm, ["dog", "hot_air_balloon"], templates="imagenet7")
    for row, words in zip(got, ("dog", "hot air balloon"), strict=True):
        prompts = minilm.encode_texts([t.format(words) for t in IMAGENET7])
        np.testing.assert_allclose(row, _unit(_unit(prompts).mean(axis=0)), atol=1e-5)
    assert got.shape == (2, 384) and got.dtype == np.float32


def test_all_prompts_are_encoded_in_one_batched_pass_with_descriptions():
    encoder = HashEncoder()
    got = class_text_embeddings(encoder, ["zebra", "horse"], "photo", descriptions={"zebra": "has stripes"})
    assert encoder.calls == [["a photo of a zebra.", "zebra, which has stripes.", "a photo of a horse."]]
    zebra = _unit(encoder.encode_texts(["a photo of a zebra.", "zebra, which has stripes."]).astype(float))
    np.testing.assert_allclose(got[0], _unit(zebra.mean(axis=0)), atol=1e-6)


def test_cache_reuses_embeddings_per_encoder_and_prompts(tmp_path):
    encoder, cache = HashEncoder(), FeatureCache(tmp_path)
    first = class_text_embeddings(encoder, ["zebra", "horse"], "imagenet7", cache=cache)
    again = class_text_embeddings(encoder, ["zebra", "horse"], "imagenet7", cache=cache)
    class_text_embeddings(encoder, ["zebra", "horse"], "photo", cache=cache)
    np.testing.assert_array_equal(first, again)
    assert len(encoder.calls) == 2  # imagenet7 once, then photo: another key
    assert (cache.hits, cache.misses) == (1, 2)


def test_an_image_encoder_is_refused():
    image_encoder = ENCODERS.create("efficientnet-lite0", device="cpu")
    with pytest.raises(EncoderError, match="does not encode text"):
        class_text_embeddings(image_encoder, ["zebra", "horse"])


# -- class semantics of a dataset ---------------------------------------------------------------
def test_replace_and_concat_change_only_the_class_semantics():
    data, encoder = mnist_zsl_dataset(), HashEncoder()
    replaced = with_text_semantics(data, encoder, "photo")
    assert replaced.classes.semantics.shape == (10, 8)
    assert replaced.classes.semantics_kind == "text:hash-encoder:photo"
    assert [s.hash for s in replaced.splits.values()] == [s.hash for s in data.splits.values()]
    concat = with_text_semantics(data, encoder, "photo", mode="concat")
    assert concat.classes.semantics_kind == "attributes:mnist-zsl-v1+text:hash-encoder:photo"
    attributes, text = concat.classes.semantics[:, :17], concat.classes.semantics[:, 17:]
    np.testing.assert_allclose(attributes, _unit(data.classes.semantics), atol=1e-6)
    np.testing.assert_array_equal(text, replaced.classes.semantics)
    with pytest.raises(UnknownNameError, match="unknown semantics mode 'append'"):
        with_text_semantics(data, encoder, "photo", mode="append")


def test_text_spec_runs_through_eszsl_with_finite_metrics(minilm, monkeypatch):
    monkeypatch.setitem(ENCODERS._entries, "minilm", lambda weights=None, device=None: minilm)
    data = load_dataset("text:builtin:mnist-zsl?templates=photo")
    assert data.classes.semantics_kind == "text:all-MiniLM-L6-v2:photo"
    assert data.source == "text:builtin:mnist-zsl?templates=photo"
    record = GZSLProtocol(search="default").run(data, "eszsl")
    metrics = [record["metrics"][k] for k in ("S", "U", "H", "ZSL", "AUSUC")]
    assert np.all(np.isfinite(metrics))


def test_text_spec_hands_other_options_to_the_inner_spec(hash_encoder):
    data = load_dataset("text:synthetic:AWA2?seed=3&dim=16&encoder=hash-test&templates=photo&mode=concat")
    plain = load_dataset("synthetic:AWA2?seed=3&dim=16")
    np.testing.assert_array_equal(data.features, plain.features)
    assert data.classes.semantics.shape == (50, plain.classes.semantics.shape[1] + 8)


def test_text_spec_reads_descriptions_from_json(hash_encoder, tmp_path):
    path = tmp_path / "digits.json"
    path.write_text(json.dumps({"zero": "has one closed loop", "eight": ["has two loops"]}))
    data = load_dataset(f"text:builtin:mnist-zsl?encoder=hash-test&templates=photo&descriptions={path}")
    assert data.classes.semantics_kind == "text:hash-encoder:photo+descriptions"
    assert "zero, which has one closed loop." in hash_encoder.calls[0]
    path.write_text(json.dumps({"zero": 3}))
    with pytest.raises(DataFormatError, match="string or a list of strings"):
        load_dataset(f"text:builtin:mnist-zsl?encoder=hash-test&descriptions={path}")
    with pytest.raises(DataFileNotFound, match="nope.json does not exist"):
        load_dataset(f"text:builtin:mnist-zsl?encoder=hash-test&descriptions={tmp_path / 'nope.json'}")


def test_text_spec_errors_name_the_bad_part(hash_encoder):
    with pytest.raises(UnknownNameError, match="unknown encoder 'minlm'.*Did you mean minilm"):
        load_dataset("text:builtin:mnist-zsl?encoder=minlm")
    with pytest.raises(UnknownNameError, match="unknown template set 'fotos'"):
        load_dataset("text:builtin:mnist-zsl?encoder=hash-test&templates=fotos")
    with pytest.raises(EncoderError, match="does not encode text"):
        load_dataset("text:builtin:mnist-zsl?encoder=efficientnet-lite0")
    with pytest.raises(UnknownNameError, match="unknown scheme 'builtn'"):
        load_dataset("text:builtn:mnist-zsl?encoder=hash-test")


def test_text_spec_passes_encoder_dot_options_to_the_encoder_typed(monkeypatch):
    built = []

    def factory(weights=None, device=None, scale: int = 1):
        built.append(scale)
        return HashEncoder()

    monkeypatch.setitem(ENCODERS._entries, "hash-scaled", factory)
    data = load_dataset("text:builtin:mnist-zsl?encoder=hash-scaled&templates=photo&encoder.scale=3")
    assert built == [3] and data.classes.semantics.shape == (10, 8)
    with pytest.raises(UnseenError, match="has no option 'scal'.*Did you mean scale"):
        load_dataset("text:builtin:mnist-zsl?encoder=hash-scaled&encoder.scal=3")
