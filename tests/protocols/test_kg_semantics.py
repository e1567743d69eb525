"""``kg:`` puts graph-predicted classifier rows in a dataset's class table, trains the graph model
once per key and refuses what cannot give rows. The graph model itself (GCNZ, DGP) is tested in
tests/methods/kg; here its fit is replaced by a recorder."""

from __future__ import annotations

import numpy as np
import pytest

import unseen.protocols.kg_semantics as kg_semantics
from unseen.backbones.cache import FeatureCache
from unseen.core.errors import DataError, HyperparameterError, SpecError
from unseen.data.specs import load_dataset
from unseen.data.zsl_domains import load_zsl_domains

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@pytest.fixture
def class_map(tmp_path):
    # The digits given in reverse order, with made-up synset ids: the rows must follow the names.
    lines = [f'{name} = "n{900 + k:08d}"' for k, name in reversed(list(enumerate(DIGITS)))]
    path = tmp_path / "digits.toml"
    path.write_text("[classes]\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def fits(monkeypatch, tmp_path):
    """Each call of the graph model's fit, recorded; its row for synset n...9xx is 9xx repeated."""
    monkeypatch.setenv("UNSEEN_CACHE", str(tmp_path / "cache"))
    calls = []

    def fake_fit(class_map, method, hparams, seed):
        calls.append((method, dict(hparams), seed))
        return np.array([[float(int(w[1:]))] * 4 for w in class_map.values()], dtype=np.float32)

    monkeypatch.setattr(kg_semantics, "fit_rows", fake_fit)
    return calls


def test_each_class_gets_the_row_of_its_synset_on_multi_domain_data(class_map, fits):
    data = load_zsl_domains(f"kg:builtin:rotated-digits-zsl?classes={class_map}&method=gcnz&method.epochs=7")
    plain = load_zsl_domains("builtin:rotated-digits-zsl")
    assert data.classes.names == DIGITS
    np.testing.assert_array_equal(data.classes.semantics[:, 0], 900 + np.arange(10))
    assert data.classes.semantics.shape == (10, 4)
    assert data.classes.semantics_kind == "kg:gcnz"
    # Everything but the semantics is the inner data's.
    np.testing.assert_array_equal(data.samples.inputs, plain.samples.inputs)
    np.testing.assert_array_equal(data.classes.unseen_ids, plain.classes.unseen_ids)
    assert data.source.startswith("kg:builtin:rotated-digits-zsl")
    assert fits == [("gcnz", {**fits[0][1], "epochs": 7}, 0)]


def test_the_graph_model_trains_once_per_method_settings_and_seed(class_map, fits):
    spec = f"kg:builtin:rotated-digits-zsl?classes={class_map}&method=gcnz&method.epochs=7"
    load_zsl_domains(spec)
    load_zsl_domains(spec)
    assert len(fits) == 1
    load_zsl_domains(spec + "&kg_seed=1")
    load_zsl_domains(spec.replace("epochs=7", "epochs=8"))
    load_zsl_domains(spec.replace("gcnz", "dgp").replace("&method.epochs=7", ""))
    assert [(m, h["epochs"], s) for m, h, s in fits[1:]] == [("gcnz", 7, 1), ("gcnz", 8, 0), ("dgp", 3000, 0)]


def test_single_domain_data_too(class_map, fits):
    data = load_dataset(f"kg:builtin:mnist-zsl?classes={class_map}")
    order = [DIGITS.index(n) for n in data.classes.names]
    np.testing.assert_array_equal(data.classes.semantics[:, 0], 900 + np.array(order))
    assert fits[0][0] == "dgp"  # the default: the better graph model of docs/knowledge-graph.md


def test_a_class_without_a_synset_is_named_with_the_fix_before_any_training(tmp_path, fits):
    path = tmp_path / "partial.toml"
    path.write_text('[classes]\nzero = "n00000900"\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"no synset for the data's classes \['one'.*\[classes\]"):
        load_zsl_domains(f"kg:builtin:rotated-digits-zsl?classes={path}")
    assert fits == []  # found before the graph model trains


@pytest.mark.parametrize("method", ["conse", "loki", "oracle"])
def test_methods_without_predicted_rows_are_refused(class_map, fits, method):
    with pytest.raises(SpecError, match="predicts no classifier rows"):
        load_zsl_domains(f"kg:builtin:rotated-digits-zsl?classes={class_map}&method={method}")
    assert fits == []


def test_bad_settings_fail_before_any_training(class_map, fits):
    with pytest.raises(SpecError, match="needs the class map"):
        load_zsl_domains("kg:builtin:rotated-digits-zsl")
    with pytest.raises(HyperparameterError, match="unknown hyperparameter"):
        load_zsl_domains(f"kg:builtin:rotated-digits-zsl?classes={class_map}&method.nonsense=1")
    with pytest.raises(HyperparameterError, match="epochs"):
        load_zsl_domains(f"kg:builtin:rotated-digits-zsl?classes={class_map}&method.epochs=-3")
    assert fits == []


def test_cached_rows_are_returned_without_training(tmp_path):
    cache = FeatureCache(tmp_path / "c")
    rows = np.arange(8, dtype=np.float32).reshape(2, 4)
    classes = {"a": "n00000001", "b": "n00000002"}
    first = kg_semantics.predicted_rows(classes, "gcnz", {}, 0, cache=cache, fit=lambda *a: rows)

    def must_not_train(*args):
        raise AssertionError("trained although the rows were cached")

    again = kg_semantics.predicted_rows(classes, "gcnz", {}, 0, cache=cache, fit=must_not_train)
    np.testing.assert_array_equal(first, rows)
    np.testing.assert_array_equal(again, rows)
