"""Run specs: what a sweep asks for, before the data is loaded and the run id is known."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RunSpec:
    """One run: task kind, data spec, method, fixed hyperparameters, seed and task options.

    The run id is not stored here: it is the hash of the task's identity dict, which includes
    the content hash of the loaded data (see :meth:`unseen.experiments.tasks.TaskRunner.identity`),
    so two data specs naming the same content share runs and changed data never reuses old ones.
    """

    task: str
    data: str
    method: str
    seed: int = 0
    hparams: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    device: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "data": self.data,
            "method": self.method,
            "seed": self.seed,
            "hparams": dict(self.hparams),
            "options": dict(self.options),
            "device": self.device,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        return cls(**d)

    def label(self) -> str:
        """A short human-readable name for progress bars and dry runs."""
        parts = [self.task, self.data, self.method, f"seed={self.seed}"]
        parts += [f"{k}={v}" for k, v in sorted(self.options.items())]
        if self.hparams:
            parts.append(json.dumps(self.hparams, sort_keys=True))
        return " ".join(parts)
