"""The few-shot protocols: fixed test parts, CoOp's shot draws, no test data in fit, hand-checked metrics."""

import numpy as np
import pytest

from unseen.core.errors import HyperparameterError, SplitError
from unseen.data.paired import PairedDataset, load_paired
from unseen.methods.vlm.base import FewShotSet, VLMMethod
from unseen.protocols.fewshot import BaseToNewProtocol, FewShotProtocol, draw_shots, split_test_part


class TextHead(VLMMethod):
    """Cosine similarity to the class text: the zero-shot head, as a test double."""

    name = "text-head"

    def _fit(self, support, val):
        self.text = support.class_text / np.linalg.norm(support.class_text, axis=1, keepdims=True)

    def _scores(self, X):
        return X @ self.text.T


class NearestMeanBlend(VLMMethod):
    """Class means of the shots blended with the text head; the blend weight is chosen on val."""

    name = "nearest-mean-blend"
    seen: list = []

    def _fit(self, support, val):
        type(self).seen.append((support, val))
        means = np.stack([support.features[support.labels == c].mean(0) for c in range(support.n_classes)])
        self.means = means - support.features.mean(0)
        self.text = support.class_text
        accuracy = {
            w: float((self._blend(val.features, w).argmax(1) == val.labels).mean()) for w in (0.0, 0.5, 1.0)
        }
        self.selected = {"weight": max(accuracy, key=accuracy.get)}

    def _blend(self, X, w):
        return (1 - w) * X @ self.text.T + w * X @ self.means.T

    def _scores(self, X):
        return self._blend(X, self.selected["weight"])


@pytest.fixture(scope="module")
def planted():
    return load_paired("synthetic-vl:default?classes=20&train=24&test=10")


def unlabelled_test(dataset):
    """The dataset with an official test part removed, so the protocol must draw one."""
    d = dataset
    return PairedDataset("no-split", d.features, d.labels, d.class_names, d.class_text)


def test_drawn_test_part_is_stratified_and_fixed_by_the_data_alone(planted):
    data = unlabelled_test(planted)
    pool, test = split_test_part(data, 0.5)
    assert np.intersect1d(pool, test).size == 0 and len(pool) + len(test) == len(data.labels)
    assert (np.bincount(data.labels[test]) == 17).all()
    again_pool, again_test = split_test_part(unlabelled_test(planted), 0.5)
    np.testing.assert_array_equal(test, again_test)
    np.testing.assert_array_equal(pool, again_pool)


def test_official_test_part_is_used_when_the_data_has_one(planted):
    pool, test = split_test_part(planted, 0.5)
    np.testing.assert_array_equal(test, np.flatnonzero(planted.test_mask))


def test_shots_and_validation_are_disjoint_per_class_and_depend_on_the_seed(planted):
    pool, test = split_test_part(planted, 0.5)
    classes = np.arange(planted.n_classes)
    for shots in (1, 2, 4, 8, 16):
        support, val = draw_shots(planted.labels, pool, classes, shots, seed=1, where="x")
        assert (np.bincount(planted.labels[support], minlength=20) == shots).all()
        assert (np.bincount(planted.labels[val], minlength=20) == min(shots, 4)).all()
        assert np.intersect1d(support, val).size == 0
        assert np.intersect1d(np.concatenate([support, val]), test).size == 0
    one, _ = draw_shots(planted.labels, pool, classes, 4, seed=1, where="x")
    two, _ = draw_shots(planted.labels, pool, classes, 4, seed=2, where="x")
    assert not np.array_equal(one, two)


def test_too_few_samples_for_the_shots_is_a_clear_error(planted):
    pool, _ = split_test_part(planted, 0.5)
    with pytest.raises(SplitError, match=r"class 0 has 24 training samples; 32-shot needs 36"):
        draw_shots(planted.labels, pool, np.arange(20), 32, seed=1, where="planted")


def test_fit_never_receives_a_test_sample_and_test_labels_cannot_change_what_is_chosen(planted):
    NearestMeanBlend.seen.clear()
    protocol = FewShotProtocol(shots=4, seed=3)
    record = protocol.run(planted, NearestMeanBlend)
    test_rows = {row.tobytes() for row in planted.features[planted.test_mask]}
    for part in NearestMeanBlend.seen[0]:
        assert isinstance(part, FewShotSet)
        assert not any(row.tobytes() in test_rows for row in part.features)

    labels = planted.labels.copy()
    test = np.flatnonzero(planted.test_mask)
    labels[test] = np.random.default_rng(0).permutation(labels[test])
    shuffled = PairedDataset(
        "shuffled", planted.features, labels, planted.class_names, planted.class_text, planted.test_mask
    )
    again = protocol.run(shuffled, NearestMeanBlend)
    assert again["selected_on_validation"] == record["selected_on_validation"]
    assert again["metrics"]["acc"] < record["metrics"]["acc"] - 20


def test_shots_carry_information_on_planted_data(planted):
    zero_shot = FewShotProtocol(shots=16, seed=1).run(planted, TextHead)["metrics"]["acc"]
    blended = FewShotProtocol(shots=16, seed=1).run(planted, NearestMeanBlend)
    assert blended["metrics"]["acc"] > zero_shot + 10
    assert blended["selected_on_validation"]["weight"] > 0


def test_records_are_reproducible_and_identified_by_their_spec(planted):
    a = FewShotProtocol(shots=2, seed=5).run(planted, NearestMeanBlend)
    b = FewShotProtocol(shots=2, seed=5).run(planted, NearestMeanBlend)
    c = FewShotProtocol(shots=2, seed=6).run(planted, NearestMeanBlend)
    assert a["metrics"] == b["metrics"] and a["run_id"] == b["run_id"]
    assert c["run_id"] != a["run_id"]
    assert a["sizes"] == {"support": 40, "val": 40, "test": 200}
    assert a["protocol"] == "fewshot-kshot-v1" and a["method"] == "nearest-mean-blend"


def test_base_to_new_scores_each_half_among_its_own_classes():
    # Four classes: 0 and 1 are base, 2 and 3 new. The features are the scores of TextHead.
    eye = np.eye(4, dtype=np.float32)
    train = np.repeat(eye, 6, axis=0)
    test = np.array(
        [
            [0.9, 0.1, 0.0, 0.0],  # class 0: right among base
            [0.1, 0.2, 0.9, 0.0],  # class 0: globally 2, among base 1 -> wrong
            [0.0, 0.3, 0.9, 0.0],  # class 1: among base 1 -> right
            [0.0, 0.0, 0.2, 0.1],  # class 2: right among new
            [0.9, 0.0, 0.1, 0.2],  # class 3: globally 0, among new 3 -> right
            [0.0, 0.0, 0.8, 0.1],  # class 3: wrong
        ],
        dtype=np.float32,
    )
    data = PairedDataset(
        "tiny",
        np.concatenate([train, test]),
        np.concatenate([np.repeat(np.arange(4), 6), [0, 0, 1, 2, 3, 3]]),
        ("a", "b", "c", "d"),
        class_text=eye,
        test_mask=np.r_[np.zeros(24, bool), np.ones(6, bool)],
    )
    record = BaseToNewProtocol(shots=1, seed=0).run(data, TextHead)
    base, new = 100 * 2 / 3, 100 * 2 / 3
    assert record["metrics"]["base_acc"] == pytest.approx(base)
    assert record["metrics"]["new_acc"] == pytest.approx(new)
    assert record["metrics"]["H"] == pytest.approx(2 * base * new / (base + new))
    assert record["sizes"]["support"] == 2  # shots come from base classes only


def test_methods_that_need_text_refuse_data_without_it(planted):
    p = planted
    no_text = PairedDataset("no-text", p.features, p.labels, p.class_names, None, p.test_mask)
    with pytest.raises(HyperparameterError, match="needs class text embeddings"):
        FewShotProtocol(shots=1).run(no_text, TextHead)
