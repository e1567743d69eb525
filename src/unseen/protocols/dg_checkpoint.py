"""Trained DG models on disk: weights plus what is needed to rebuild and use them.

A model file is a ``torch.save`` dict of plain tensors and values (loadable with
``weights_only=True``, so opening a file never runs code): the algorithm name, its resolved
hyperparameters, input shape, class and domain names, held-out domains, trial seed, the data
hash it was trained on, and the state dict. Written atomically.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import torch

from unseen.core.errors import DataFileNotFound, DataFormatError
from unseen.core.io import atomic_write_bytes
from unseen.methods.dg.base import Algorithm
from unseen.methods.registry import DG

FORMAT = "unseen-dg-model-v1"


def save_model(path: str | Path, model: Algorithm, record: dict[str, Any], class_names, domain_names) -> Path:
    meta = {
        "format": FORMAT,
        "algorithm": record["method"],
        "hparams": dict(model.params),
        "input_shape": list(model.input_shape),
        "n_classes": model.n_classes,
        "n_train_domains": model.n_domains,
        "class_names": list(class_names),
        "domain_names": list(domain_names),
        "test_envs": record["test_envs"],
        "trial_seed": record["trial_seed"],
        "holdout_fraction": record["holdout_fraction"],
        "data_hash": record["data"]["hash"],
        "run_id": record["run_id"],
    }
    buf = io.BytesIO()
    torch.save({"meta": meta, "state_dict": {k: v.cpu() for k, v in model.state_dict().items()}}, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load_model(path: str | Path, device: str | None = None) -> tuple[Algorithm, dict[str, Any]]:
    """The model saved at ``path`` (in eval mode) and its metadata."""
    path = Path(path)
    if not path.is_file():
        raise DataFileNotFound(
            f"model file {path} does not exist; train one with `unseen dg ... --save-model {path}`."
        )
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
        meta, state = content["meta"], content["state_dict"]
    except pickle.UnpicklingError as exc:  # torch's message advises weights_only=False: never relay it
        unsafe = "Unsupported global" in str(exc)
        what = "holds Python objects other than tensors and plain data" if unsafe else "is not a torch file"
        raise DataFormatError(
            f"{path} {what}: not an unseen DG model file, so it is not opened; save one with "
            "`unseen dg ... --save-model FILE`."
        ) from None
    except Exception as exc:  # torch raises many kinds for damaged files
        raise DataFormatError(
            f"{path} is not an unseen DG model file ({type(exc).__name__}: {exc}); save one with "
            "`unseen dg ... --save-model FILE`."
        ) from None
    if meta.get("format") != FORMAT:
        raise DataFormatError(f"{path}: unknown model format {meta.get('format')!r}; expected {FORMAT}.")
    model = DG[meta["algorithm"]](
        tuple(meta["input_shape"]), meta["n_classes"], meta["n_train_domains"], meta["hparams"], device=device
    )
    model.load_state_dict(state)
    model.eval()
    return model, meta
