"""DG model files: a saved model loads back equal; a file that is not one is refused with a clear
error that never advises opening it unsafely."""

from __future__ import annotations

import collections

import pytest
import torch

from unseen.core.errors import DataFormatError
from unseen.data.domains import load_domains
from unseen.protocols.dg import DGProtocol
from unseen.protocols.dg_checkpoint import load_model, save_model


class NotPlainData:
    pass


def test_a_saved_model_loads_back_with_equal_weights(tmp_path):
    data = load_domains("builtin:rotated-digits")
    model, record = DGProtocol((0,), steps=2, checkpoint_freq=2).train(data, "erm", {"batch_size": 8})
    save_model(tmp_path / "m.pt", model, record, data.class_names, data.domain_names)
    loaded, meta = load_model(tmp_path / "m.pt")
    assert meta["algorithm"] == "erm"
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True):
        torch.testing.assert_close(a.cpu(), b, rtol=0, atol=0)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"not a checkpoint", "is not a torch file"),
        ({"meta": collections.OrderedDict(x=NotPlainData()), "state_dict": {}}, "holds Python objects"),
    ],
)
def test_a_file_that_is_not_a_model_is_refused_without_unsafe_advice(tmp_path, content, message):
    path = tmp_path / "bad.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(DataFormatError, match=message) as caught:
        load_model(path)
    assert "weights_only" not in str(caught.value) and "trust" not in str(caught.value)
