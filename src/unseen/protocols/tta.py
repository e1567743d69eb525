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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from unseen.core.errors import SpecError
from unseen.core.record import make_record
from unseen.methods.registry import TTA
from unseen.methods.tta.base import TTAMethod

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

    def run(
        self,
        make_method: Callable[[str, dict[str, Any]], TTAMethod],
        method: str,
        domains: Sequence[TargetDomain],
        hparams: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Score ``method`` and the source model on the stream; return the run record.

        ``make_method(name, hparams)`` builds a TTA method around the trained model (the caller
        owns the model and what AdaNPC needs: source features and labels).
        """
        TTA[method]  # an unknown name fails here, before any work
        t0 = time.perf_counter()
        adapted = self.accuracies(make_method(method, dict(hparams or {})), domains)
        t1 = time.perf_counter()
        source = self.accuracies(make_method("source", {}), domains)
        spec = {
            "task": "tta",
            "protocol": self.name,
            "data": data or {},
            "method": method,
            "hparams": dict(hparams or {}),
            "mode": self.mode,
            "batch_size": self.batch_size,
            "seed": self.seed,
        }
        return make_record(
            "tta",
            self.name,
            spec,
            data=data or {},
            method=method,
            paper=TTA[method].paper,
            hparams=dict(hparams or {}),
            stream={
                "mode": self.mode,
                "batch_size": self.batch_size,
                "seed": self.seed,
                "domains": [d.name for d in domains],
            },
            metrics={
                "accuracy": adapted,
                "source_accuracy": source,
                "gain": {k: adapted[k] - source[k] for k in adapted},
                "mean_accuracy": float(np.mean(list(adapted.values()))),
                "mean_gain": float(np.mean([adapted[k] - source[k] for k in adapted])),
            },
            timing={"adapt_s": t1 - t0, "total_s": time.perf_counter() - t0},
        )
