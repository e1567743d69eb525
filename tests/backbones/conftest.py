"""A tiny open_clip checkpoint written on the fly (no CLIP weights can be downloaded here)."""

import json

import pytest
import torch


@pytest.fixture
def tiny_open_clip(tmp_path):
    """``(open_clip module, model name, weights path, reference model)`` of a 16-d CLIP with one
    transformer layer per tower, seeded; skips where open_clip is absent."""
    open_clip = pytest.importorskip(
        "open_clip", reason="open_clip is not installed (pip install 'unseen[open_clip]')"
    )
    name = "unseen-tiny-clip"
    config = {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "head_width": 32, "patch_size": 8},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    }
    (tmp_path / f"{name}.json").write_text(json.dumps(config))
    open_clip.add_model_config(tmp_path / f"{name}.json")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        reference = open_clip.create_model(name).eval()
    torch.save(reference.state_dict(), tmp_path / "tiny.pt")
    return open_clip, name, tmp_path / "tiny.pt", reference
