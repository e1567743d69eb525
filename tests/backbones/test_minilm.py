"""all-MiniLM-L6-v2: offline loading, sentence-transformers' embeddings, clear errors."""

import hashlib
import shutil

import numpy as np
import pytest

from unseen.backbones.base import ENCODERS
from unseen.backbones.minilm import packaged_model_dir
from unseen.core.errors import EncoderError, UnknownNameError

SENTENCES = ["a photo of a dog", "a picture of a puppy", "a spreadsheet of tax figures"]


@pytest.fixture(scope="module")
def encoder():
    encoder = ENCODERS.create("minilm", device="cpu")
    encoder.encode_texts(["load the model once for the module"])
    return encoder


def test_embeddings_are_unit_norm_384_d_and_deterministic(encoder):
    a = encoder.encode_texts(SENTENCES)
    b = encoder.encode_texts(SENTENCES)
    assert encoder.dim == 384
    assert a.shape == (3, 384) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(a, b)


def test_related_sentences_are_closer_than_unrelated_ones(encoder):
    dog, puppy, taxes = encoder.encode_texts(SENTENCES)
    assert dog @ puppy > 0.6
    assert dog @ puppy > dog @ taxes + 0.5
    assert puppy @ dog > puppy @ taxes + 0.5


def test_padding_does_not_change_an_embedding(encoder):
    # Mean pooling must ignore padding: a short sentence batched with long ones embeds the same.
    texts = ["dog", "a very long sentence about a dog that runs across a wide green field in spring"]
    together = encoder.encode_texts(texts, batch_size=2)
    alone = encoder.encode_texts(texts, batch_size=1)
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_equals_sentence_transformers(encoder, monkeypatch):
    sentence_transformers = pytest.importorskip(
        "sentence_transformers", reason="sentence-transformers is not installed; nothing to compare with"
    )
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    reference = sentence_transformers.SentenceTransformer(
        str(encoder.folder), device="cpu", local_files_only=True
    )
    np.testing.assert_allclose(
        encoder.encode_texts(SENTENCES), reference.encode(SENTENCES, convert_to_numpy=True), atol=1e-5
    )


def test_weights_hash_is_the_sha256_of_the_weights_file(encoder):
    expected = hashlib.sha256((packaged_model_dir() / "model.safetensors").read_bytes()).hexdigest()
    assert encoder.weights_hash() == expected


def test_missing_folder_names_the_path_and_the_fix(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(EncoderError, match="no-such-model.*does not exist.*weights=FOLDER"):
        ENCODERS.create("minilm", weights=str(missing))


def test_folder_without_weights_is_reported(tmp_path):
    shutil.copy(packaged_model_dir() / "config.json", tmp_path / "config.json")
    encoder = ENCODERS.create("minilm", weights=str(tmp_path), device="cpu")
    with pytest.raises(EncoderError, match="holds no weights"):
        encoder.weights_hash()
    with pytest.raises(EncoderError, match="holds no weights"):
        encoder.encode_texts(["a"])


def test_unknown_encoder_suggests_the_close_name():
    with pytest.raises(UnknownNameError, match="Did you mean minilm"):
        ENCODERS.create("minilmm")
