"""A method base that rejects string hyperparameters outside their allowed choices at construction."""

from __future__ import annotations

from typing import Any, ClassVar

from unseen.errors import HyperparameterError
from unseen.methods.base import GZSLMethod
from unseen.methods.gzsl.preprocessing import FEATURE_NORMS, SEMANTIC_NORMS


class ValidatedMethod(GZSLMethod):
    """``GZSLMethod`` plus ``choices``: for each categorical hyperparameter, its allowed values.

    The shared normalisation hyperparameters (``feature_norm``, ``semantic_norm``) are checked
    whenever a method declares them; subclasses add their own categorical ones.
    """

    choices: ClassVar[dict[str, tuple[Any, ...]]] = {}

    def __init__(self, seed: int = 0, device: str | None = None, **hparams: Any) -> None:
        super().__init__(seed=seed, device=device, **hparams)
        allowed = {"feature_norm": FEATURE_NORMS, "semantic_norm": SEMANTIC_NORMS, **self.choices}
        for name, options in allowed.items():
            if name in self.params and self.params[name] not in options:
                raise HyperparameterError(
                    f"method '{self.name}': hyperparameter '{name}' must be one of "
                    f"{list(options)}, got {self.params[name]!r}."
                )
