"""`text:` on zero-shot multi-domain data (the loader of single-domain data, registered for both
kinds), descriptors without a semantics file, and the Office-Caltech10 class split of
examples/office-caltech10-zsl.toml on the real photos."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from click.testing import CliRunner

from unseen.backbones.base import ENCODERS, TextEncoder
from unseen.cli import main
from unseen.core.errors import DataError
from unseen.data import load_dataset
from unseen.data.domains import load_domains
from unseen.data.specs import parse_spec
from unseen.data.zsl_domains import NO_SEMANTICS, load_zsl_domains
from unseen.protocols.gzsl_dg import GZSLDGProtocol

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "office-caltech10-zsl.toml"
OFFICE = REPO.parent / "shared" / "data" / "office-caltech10-images"
pytestmark = pytest.mark.usefixtures("one_torch_thread")


class HashEncoder(TextEncoder):
    """Each text maps to a seeded random 8-d vector."""

    id = "hash-encoder"
    dim = 8

    def weights_hash(self):
        return "0" * 64

    def encode_texts(self, texts, batch_size=64):
        seeds = [int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little") for t in texts]
        return np.array([np.random.default_rng(s).normal(size=self.dim) for s in seeds], dtype=np.float32)


@pytest.fixture(autouse=True)
def hash_encoder(tmp_path, monkeypatch):
    monkeypatch.setenv("UNSEEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(ENCODERS._entries, "hash-test", lambda weights=None, device=None: HashEncoder())


def _unit(a):
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


def test_text_on_multi_domain_data_changes_the_class_semantics_only():
    spec = "text:builtin:rotated-digits-zsl?encoder=hash-test&templates=photo"
    data, plain = load_zsl_domains(spec), load_zsl_domains("builtin:rotated-digits-zsl")
    assert data.samples.inputs is plain.samples.inputs and data.domain_names == plain.domain_names
    assert np.array_equal(data.samples.labels, plain.samples.labels)
    assert np.array_equal(data.classes.seen, plain.classes.seen)
    assert data.val_classes.tolist() == plain.val_classes.tolist() == [5, 9]
    # one template: each class's semantics is its one prompt's unit embedding
    prompts = [f"a photo of a {name}." for name in plain.classes.names]
    assert np.allclose(data.classes.semantics, _unit(HashEncoder().encode_texts(prompts)), atol=1e-6)
    # the single-domain path gives the same class the same semantics (both are ZERO..NINE)
    single = load_dataset("text:builtin:mnist-zsl?encoder=hash-test&templates=photo")
    assert single.classes.names == data.classes.names
    assert np.array_equal(single.classes.semantics, data.classes.semantics)
    assert data.classes.semantics_kind == "text:hash-encoder:photo" and data.source == spec
    assert data.summary()["source"] == spec
    concat = load_zsl_domains("text:builtin:rotated-digits-zsl?encoder=hash-test&templates=photo&mode=concat")
    assert concat.classes.semantics.shape == (10, 17 + 8)
    assert np.allclose(concat.classes.semantics[:, :17], _unit(plain.classes.semantics), atol=1e-6)
    assert concat.classes.semantics_kind == "attributes:mnist-zsl-v1+text:hash-encoder:photo"


NAMES = ("bike", "mug", "pen", "cup", "hat", "lamp", "sock", "fork")


def _planted(path: Path, seed: int) -> None:
    """Four domains whose features are the classes' 'a photo of a NAME.' embeddings (hash encoder)
    through a random linear map, shifted per domain, plus noise."""
    rng = np.random.default_rng(seed)
    semantics = _unit(HashEncoder().encode_texts([f"a photo of a {n}." for n in NAMES]))
    labels = np.tile(np.repeat(np.arange(len(NAMES)), 15), 4)
    domains = np.repeat(np.arange(4), len(NAMES) * 15)
    x = semantics[labels] @ rng.normal(size=(8, 16)) + rng.normal(0, 0.3, (4, 16))[domains]
    np.savez(
        path,
        features=(x + rng.normal(0, 0.2, x.shape)).astype(np.float32),
        labels=labels,
        domains=domains,
        class_names=np.array(NAMES),
        domain_names=np.array(["a", "b", "c", "d"]),
    )


def test_text_gives_a_descriptor_without_semantics_class_semantics_that_recognise_unseen_classes(
    tmp_path,
):
    _planted(tmp_path / "decoy.npz", seed=1)
    _planted(tmp_path / "features.npz", seed=0)
    (tmp_path / "d.toml").write_text(
        'data = "npz-domains:decoy.npz"\nunseen = ["cup", "sock"]\nvalidation = ["pen"]\n'
    )
    plain = load_zsl_domains(f"zsl-domains:{tmp_path / 'd.toml'}")
    assert plain.classes.semantics.shape == (8, 0) and plain.classes.semantics_kind == NO_SEMANTICS
    decoy = load_domains(f"npz-domains:{tmp_path / 'decoy.npz'}")
    assert np.array_equal(plain.samples.inputs, decoy.inputs)  # the file's data, read beside it
    assert plain.source == f"zsl-domains:{tmp_path / 'd.toml'}"  # records name the roles' file
    protocol = GZSLDGProtocol(test_env=0, search="default")
    with pytest.raises(DataError, match="the classes have no semantics .*--data 'text:zsl-domains:"):
        protocol.run(plain, "identity+eszsl")
    # ?data= replaces the file's data, through text: too (text: hands its options on)
    features = tmp_path / "features.npz"
    options = f"data=npz-domains:{features}&encoder=hash-test&templates=photo"
    spec = f"text:zsl-domains:{tmp_path / 'd.toml'}?{options}"
    data = load_zsl_domains(spec)
    assert data.samples.source == spec and data.classes.unseen_ids.tolist() == [3, 6]
    assert not np.array_equal(data.samples.inputs, plain.samples.inputs)
    record = protocol.run(data, "identity+eszsl")
    assert record["metrics"]["ZSL"] >= 90.0  # the planted text semantics place the unseen classes
    assert record["data"]["semantics_kind"] == "text:hash-encoder:photo"
    # the same through the CLI, with a trained MLP featurizer (erm) before ESZSL
    out = tmp_path / "run.json"
    result = CliRunner().invoke(
        main,
        ["gzsl-dg", "--data", spec, "--featurizer", "erm", "--method", "eszsl", "--test-env", "1"]
        + ["--steps", "4", "--checkpoint-freq", "2", "--search", "default", "--out", str(out)]
        + ["--featurizer-hparams", '{"mlp_width": 16, "batch_size": 8}'],
    )
    assert result.exit_code == 0, result.output
    run = json.loads(out.read_text())
    assert run["method"] == "erm+eszsl" and run["test_domain"] == "b" and run["featurizer_steps"] in (2, 4)
    assert run["data"]["spec"] == spec


def test_the_office_caltech10_split_on_the_real_photos_with_minilm_class_semantics():
    if not OFFICE.is_dir():
        pytest.skip(f"the Office-Caltech10 photos are not at {OFFICE}")
    descriptor = tomllib.loads(EXAMPLE.read_text())
    photos = parse_spec(descriptor["data"])
    assert photos.scheme == "folder" and (REPO / photos.target).resolve() == OFFICE.resolve()
    small = quote(f"folder:{OFFICE}?size=8&per_class=2", safe="")
    data = load_zsl_domains(f"text:zsl-domains:{EXAMPLE}?data={small}")  # minilm, imagenet80
    names = data.classes.names
    assert data.domain_names == ("amazon", "caltech10", "dslr", "webcam") and len(names) == 10
    assert [names[c] for c in data.classes.unseen_ids] == ["bike", "keyboard", "projector"]
    assert [names[c] for c in data.val_classes] == ["headphones", "mouse"]
    assert data.samples.input_shape == (3, 8, 8) and len(data.samples.labels) == 4 * 10 * 2
    assert data.classes.semantics_kind == "text:all-MiniLM-L6-v2:imagenet80"
    # what the docs say of the split: keyboard's closest seen class is laptop, projector's monitor;
    # bike is farther from every seen class than either of them is from its closest
    cos = data.classes.semantics @ data.classes.semantics.T
    seen = data.classes.seen_ids
    closest = {names[c]: (names[seen[np.argmax(cos[c, seen])]], cos[c, seen].max()) for c in range(10)}
    assert closest["keyboard"][0] == "laptop" and closest["projector"][0] == "monitor"
    assert closest["bike"][1] < 0.45 < min(closest["keyboard"][1], closest["projector"][1])
    # among the pseudo-seen classes (seen, not validation) mouse has a close relative, headphones none
    pseudo_seen = [c for c in seen if c not in data.val_classes]
    nearest = {names[c]: cos[c, pseudo_seen].max() for c in data.val_classes}
    assert nearest["headphones"] < 0.46 < 0.55 < nearest["mouse"]
