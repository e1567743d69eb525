"""The oracle: the trained head's true rows for the held-out classes too."""

from __future__ import annotations

import numpy as np

from unseen.core.errors import DataError
from unseen.methods.kg.base import KGTask, RowPredictor
from unseen.methods.registry import KG


@KG.register("oracle")
class Oracle(RowPredictor):
    """Not a zero-shot method: the upper bound. The classifier rows of every candidate class are
    the trained head's own (given with :meth:`reveal` before ``fit``, as the held-out rows are
    never part of a task), so its scores are the original classifier's logits restricted to the
    candidates. Reference point of the knowledge-graph papers' "what a trained classifier would
    reach" (Wang, Ye, Gupta, CVPR 2018; Kampffmeyer et al., CVPR 2019)."""

    paper = "No paper: the upper bound that the true classifier rows of the held-out classes give."

    def reveal(self, rows: np.ndarray) -> Oracle:
        """The true rows ``[w, b]`` of the task's candidate classes, in their order."""
        self._true_rows = np.asarray(rows, dtype=np.float64)
        return self

    def _fit(self, task: KGTask) -> None:
        rows = getattr(self, "_true_rows", None)
        if rows is None or rows.shape != (len(task.candidates), task.seen_rows.shape[1]):
            raise DataError(
                "the oracle needs the true rows of every candidate class: call reveal(rows) with one "
                f"row of {task.seen_rows.shape[1]} values per candidate before fit."
            )
        if not np.isfinite(rows).all():
            raise DataError("the oracle's rows must be finite: some candidate class has no trained row.")
        self.rows = rows
