"""``tta-stream-v1``: online test-time adaptation over a stream of unlabeled target batches.

The rule, fixed for this protocol version:

1. The stream visits target domains in the given order. Within a domain, samples arrive in
   batches of ``batch_size`` in an order drawn from ``seed`` and the domain's name (the same for
   every method and every position in the stream, so methods see the same batches).
2. ``single``: the method is reset to the source model before each domain (each domain is its
   own stream). ``continual``: it is never reset, adapting across domain boundaries.
3. The method sees each batch once, without labels, and its prediction for a batch is final
   (online). Accuracy is the fraction of correct predictions per domain; labels are read only
   to score predictions already made.
4. Every run also scores the unadapted ``source`` model on the same stream; the record reports
   each domain's gain over it.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from unseen.backbones.base import ImageEncoder, ProgressFn, encoder_identity
from unseen.backbones.cache import FeatureCache
from unseen.backbones.extract import extract_features
from unseen.core.errors import DataFormatError, HyperparameterError, SpecError
from unseen.core.record import make_record
from unseen.data.domains import DomainDataset
from unseen.data.images import ImageDataset
from unseen.methods.registry import TTA
from unseen.methods.tta.base import SourceModel, TTAMethod
from unseen.methods.tta.pretrained import probe_source

STREAM_MODES = ("single", "continual")


@dataclass(frozen=True)
class TargetDomain:
    """One target domain of a stream: its name, inputs and labels (labels only for scoring)."""

    name: str
    inputs: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class TTAStreamProtocol:
    """Online adaptation over target domains; see the module docstring for the rule."""

    mode: str = "single"
    batch_size: int = 64
    seed: int = 0

    name = "tta-stream-v1"

    def __post_init__(self) -> None:
        if self.mode not in STREAM_MODES:
            raise SpecError(f"unknown stream mode '{self.mode}'; use one of {', '.join(STREAM_MODES)}.")
        if self.batch_size < 1:
            raise SpecError(f"stream batch size must be >= 1, got {self.batch_size}.")

    def accuracies(self, method: TTAMethod, domains: Sequence[TargetDomain]) -> dict[str, float]:
        """Online accuracy (%) of ``method`` on each domain of the stream."""
        out = {}
        for index, domain in enumerate(domains):
            if self.mode == "single" or index == 0:
                method.reset()
            order = np.random.default_rng([self.seed, zlib.crc32(domain.name.encode())]).permutation(
                len(domain.labels)
            )
            predictions = np.empty(len(order), dtype=np.int64)
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                batch = torch.as_tensor(np.ascontiguousarray(domain.inputs[rows]), dtype=torch.float32)
                predictions[start : start + len(rows)] = method.predict(batch).argmax(dim=1).cpu().numpy()
            out[domain.name] = float(100.0 * np.mean(predictions == domain.labels[order]))
        return out

    def spec(
        self,
        data: dict[str, Any],
        method: str,
        hparams: dict[str, Any] | None,
        domains: Sequence[str],
    ) -> dict[str, Any]:
        """The identity of a run (its id is this dict's hash): data and source model, method,
        hyperparameters, the stream's rule and its target domains."""
        return {
            "task": "tta",
            "protocol": self.name,
            "data": data,
            "method": method,
            "hparams": dict(hparams or {}),
            "mode": self.mode,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "domains": list(domains),
        }

    def run(
        self,
        source: SourceModel,
        method: str,
        domains: Sequence[TargetDomain],
        hparams: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        device: str | None = None,
    ) -> dict[str, Any]:
        """Score ``method`` around ``source``, and ``source`` unadapted, on the stream; return the
        run record. ``data`` names the target data; the source's provenance joins it."""
        cls = TTA[method]  # an unknown name fails here, before any work
        hparams = dict(hparams or {})
        data = {**(data or {}), **source.info}
        t0 = time.perf_counter()
        adapted = self.accuracies(cls.around(source, seed=self.seed, device=device, **hparams), domains)
        t1 = time.perf_counter()
        unadapted = self.accuracies(TTA["source"].around(source, seed=self.seed, device=device), domains)
        return make_record(
            "tta",
            self.name,
            self.spec(data, method, hparams, [d.name for d in domains]),
            data=data,
            method=method,
            paper=cls.paper,
            hparams=hparams,
            stream={
                "mode": self.mode,
                "batch_size": self.batch_size,
                "seed": self.seed,
                "domains": [d.name for d in domains],
            },
            metrics={
                "accuracy": adapted,
                "source_accuracy": unadapted,
                "gain": {k: adapted[k] - unadapted[k] for k in adapted},
                "mean_accuracy": float(np.mean(list(adapted.values()))),
                "mean_gain": float(np.mean([adapted[k] - unadapted[k] for k in adapted])),
            },
            timing={"adapt_s": t1 - t0, "total_s": time.perf_counter() - t0},
        )


def domain_streams(dataset: DomainDataset, targets: Sequence[int]) -> list[TargetDomain]:
    """The target domains ``targets`` of ``dataset``, in that order."""
    return [
        TargetDomain(
            dataset.domain_names[k],
            dataset.inputs[dataset.domain_indices(k)],
            dataset.labels[dataset.domain_indices(k)],
        )
        for k in targets
    ]


def check_model_data(meta: dict[str, Any], dataset: DomainDataset) -> None:
    """Refuse data a saved DG model cannot read: other input shapes, classes, or class order."""
    if dataset.input_shape != tuple(meta["input_shape"]) or dataset.n_classes != meta["n_classes"]:
        raise DataFormatError(
            f"{dataset.source} has inputs {dataset.input_shape} and {dataset.n_classes} classes; the model "
            f"expects {tuple(meta['input_shape'])} and {meta['n_classes']}."
        )
    if list(dataset.class_names) != list(meta["class_names"]):
        differ = [(a, b) for a, b in zip(dataset.class_names, meta["class_names"], strict=True) if a != b]
        raise DataFormatError(
            f"{dataset.source} names its classes differently from the model's training data (first "
            f"difference: {differ[0][0]!r} where the model has {differ[0][1]!r}); the model's class k "
            "would be read as another class. Use data with the model's classes, in its order."
        )


def default_targets(meta: dict[str, Any], dataset: DomainDataset) -> list[int]:
    """The model's held-out domains on its own data; every domain of other data."""
    return list(meta["test_envs"]) if dataset.hash == meta["data_hash"] else list(range(dataset.n_domains))


def dg_source(model, meta: dict[str, Any], dataset: DomainDataset) -> SourceModel:
    """A saved DG model (:func:`~unseen.protocols.dg_checkpoint.load_model`) as the source of a
    stream over ``dataset``. Its memory is its featurizer's output on its own training data (the
    training domains' ``in`` parts), and its domain inputs those parts' inputs, one array per
    training domain, so both exist only when ``dataset`` is that data. Modules the algorithm
    trained for test time (its ``test_time_parts``, e.g. ITTA's learned loss) come as ``parts``."""
    check_model_data(meta, dataset)

    def training_rows() -> list[np.ndarray]:
        if dataset.hash != meta["data_hash"]:
            raise HyperparameterError(
                "this method needs the source data the model was trained on; pass the same data as "
                "`unseen dg` did."
            )
        splits = dataset.in_out_split(meta["trial_seed"], meta["holdout_fraction"])
        return [splits[k][0] for k in range(dataset.n_domains) if k not in meta["test_envs"]]

    def memory() -> tuple[np.ndarray, np.ndarray]:
        rows = np.concatenate(training_rows())
        with torch.no_grad():
            x = torch.from_numpy(dataset.inputs[rows].copy()).to(model.device)
            features = torch.cat([model.featurizer(chunk) for chunk in x.split(1024)]).cpu().numpy()
        return features, dataset.labels[rows]

    def domain_inputs() -> list[np.ndarray]:
        return [dataset.inputs[rows] for rows in training_rows()]

    return SourceModel(
        model.featurizer,
        model.classifier,
        memory,
        {"model": meta["run_id"]},
        parts=dict(getattr(model, "test_time_parts", {})),
        domain_inputs=domain_inputs,
    )


def encoder_source(
    encoder: ImageEncoder,
    dataset: ImageDataset,
    targets: Sequence[int],
    cache: FeatureCache | None = None,
    progress: ProgressFn | None = None,
) -> tuple[SourceModel, list[TargetDomain]]:
    """A pretrained image encoder with a linear probe fitted on the non-target domains
    (:func:`~unseen.methods.tta.pretrained.probe_source`), and the target streams of its input
    tensors (the images preprocessed as the encoder does)."""
    if not hasattr(encoder, "torch_featurizer"):
        raise HyperparameterError(f"encoder '{encoder.id}' exposes no torch network to adapt.")
    features, _ = extract_features(encoder, dataset, cache, progress=progress)
    as_domains = DomainDataset(
        dataset.name, features, dataset.labels, dataset.domains, dataset.class_names, dataset.domain_names
    )
    probed = probe_source(encoder.torch_featurizer(), as_domains, targets)
    source = replace(probed, info={**encoder_identity(encoder), "probe": probed.info})
    streams = []
    for k in targets:
        rows = np.flatnonzero(dataset.domains == k)
        pixels = encoder.preprocess([dataset.load(int(i)) for i in rows]).cpu().numpy()
        streams.append(
            TargetDomain(dataset.domain_names[k], np.ascontiguousarray(pixels), dataset.labels[rows])
        )
    return source, streams
