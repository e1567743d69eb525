"""``dg-lodo-v1``: leave-domains-out training with checkpoints for DomainBed's model selection.

Gulrajani & Lopez-Paz, *In Search of Lost Domain Generalization* (ICLR 2021). The rule, fixed
for this protocol version:

1. Each domain is divided into ``in`` and ``out`` parts (``holdout_fraction`` = 0.2 out) drawn
   from the trial seed only (:meth:`~unseen.data.domains.DomainDataset.in_out_split`).
2. The algorithm trains on the ``in`` parts of the training domains (every domain not in
   ``test_envs``), one minibatch per training domain per step, sampled with replacement from a
   generator seeded by the run's seed. With the ``data_augmentation`` hyperparameter (full-size
   images), each training minibatch is augmented as DomainBed does
   (:class:`~unseen.data.augmentation.ImageAugmentation`, draws from a second generator seeded by
   the run's seed); evaluation always sees the images as decoded. DomainBed instead augments
   every example of the training domains, so its training-domain ``out`` accuracies, used for
   model selection, are measured on augmented images.
3. Every ``checkpoint_freq`` steps and at the last step, the accuracy of every domain's ``in``
   and ``out`` parts is recorded. Test domains are only ever evaluated, never trained on, and
   nothing from them reaches the algorithm.
4. Model selection happens afterwards, over records, in :mod:`unseen.protocols.dg_selection`.

With ``crafted_shifts`` (images only), every checkpoint also records each training domain's
``out`` accuracy under the crafted distribution shifts of Efthymiadis et al. (WACV 2025;
:mod:`unseen.protocols.dg_crafted`), which the ``crafted-shift`` selection reads; the test
domains are never scored that way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from unseen.core.device import cpu_generator, fork_rng, resolve_device, stream
from unseen.core.errors import SpecError
from unseen.core.record import make_record
from unseen.core.registry import HParam
from unseen.data.augmentation import ImageAugmentation
from unseen.data.domains import DomainDataset
from unseen.methods.dg.averaging import WRAPPERS
from unseen.methods.dg.base import Algorithm
from unseen.methods.dg.optimizers import UPDATE_RULES
from unseen.methods.registry import DG
from unseen.nn.domaindrop import labelled
from unseen.protocols.dg_crafted import check_images, crafted_accuracies

Progress = Callable[[int, int, str], None]
EVAL_VALUES = 2**24
"""Input values evaluated per forward pass: 1,024 feature vectors or digits, 111 images of 224 px
(whose activations would otherwise take about 10 GB at 1,024 images)."""


def eval_chunk(inputs: torch.Tensor) -> int:
    """Samples per evaluation forward pass: at most 1,024, fewer for large inputs."""
    return max(1, min(1024, EVAL_VALUES // max(1, inputs[0].numel())))


def run_hparams(update_rule: str | None, wrapper: str | None) -> tuple[HParam, ...]:
    """The hyperparameters a run's update rule and averaging wrapper add to its algorithm's; the
    run's hyperparameters are split among the three by name."""
    rule = UPDATE_RULES[update_rule].hparams if update_rule else ()
    return rule + (WRAPPERS[wrapper].hparams if wrapper else ())


def _log_mean(values: list) -> float:
    """The mean of one logged quantity over the steps since the last checkpoint; device tensors
    reach the host in one transfer."""
    if all(torch.is_tensor(x) for x in values):
        values = torch.stack(values).double().cpu().tolist()
    return float(np.mean([float(x) for x in values]))


def record_data(dataset: DomainDataset, splits: list) -> dict[str, Any]:
    """The ``data`` block of a DG record: the dataset's identity and its in/out part sizes."""
    return {
        "spec": dataset.source,
        "name": dataset.name,
        "hash": dataset.hash,
        "domains": list(dataset.domain_names),
        "in_out_sizes": [[len(i), len(o)] for i, o in splits],
    }


@dataclass(frozen=True)
class DGProtocol:
    """Train with ``test_envs`` held out; record per-domain in/out accuracy at every checkpoint."""

    test_envs: tuple[int, ...]
    steps: int = 5000
    checkpoint_freq: int = 100
    holdout_fraction: float = 0.2
    trial_seed: int = 0
    seed: int = 0
    wrapper: str | None = None
    update_rule: str | None = None
    crafted_shifts: bool = False

    name = "dg-lodo-v1"

    def check(self, dataset: DomainDataset) -> None:
        run_hparams(self.update_rule, self.wrapper)  # unknown names raise
        bad = [e for e in self.test_envs if not 0 <= e < dataset.n_domains]
        if bad or not self.test_envs:
            raise SpecError(
                f"test env(s) {list(self.test_envs) or '[]'} invalid for {dataset.name}: give one or more of "
                + ", ".join(f"{k} ({d})" for k, d in enumerate(dataset.domain_names))
                + "."
            )
        if len(set(self.test_envs)) >= dataset.n_domains:
            raise SpecError(f"{dataset.name}: at least one domain must remain for training.")
        if self.steps < 1 or self.checkpoint_freq < 1:
            raise SpecError("steps and checkpoint_freq must be >= 1.")
        if self.crafted_shifts:
            check_images(dataset.name, dataset.input_shape)

    def spec(self, dataset: DomainDataset, algorithm: str, hparams: Mapping[str, Any]) -> dict[str, Any]:
        """The identity of a run: what determines its numbers."""
        spec = {
            "task": "dg",
            "protocol": self.name,
            "data_hash": dataset.hash,
            "method": algorithm,
            "hparams": dict(hparams),
            "test_envs": sorted(self.test_envs),
            "steps": self.steps,
            "checkpoint_freq": self.checkpoint_freq,
            "holdout_fraction": self.holdout_fraction,
            "trial_seed": self.trial_seed,
            "seed": self.seed,
            "wrapper": self.wrapper,
        }
        if self.update_rule is not None:  # absent by default, so earlier run ids stay valid
            spec["update_rule"] = self.update_rule
        if self.crafted_shifts:  # likewise
            spec["crafted_shifts"] = True
        return spec

    def run(
        self,
        dataset: DomainDataset,
        algorithm: str,
        hparams: Mapping[str, Any] | None = None,
        device: str | None = None,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Train ``algorithm`` and return the run record with every checkpoint's accuracies."""
        return self.train(dataset, algorithm, hparams, device, progress)[1]

    def train(
        self,
        dataset: DomainDataset,
        algorithm: str,
        hparams: Mapping[str, Any] | None = None,
        device: str | None = None,
        progress: Progress | None = None,
    ) -> tuple[Algorithm, dict[str, Any]]:
        """Train ``algorithm``; return the trained model (last step) and the run record."""
        self.check(dataset)
        cls = DG[algorithm]
        hparams = dict(hparams or {})
        t0 = time.perf_counter()
        splits = dataset.in_out_split(self.trial_seed, self.holdout_fraction)
        train_envs = [k for k in range(dataset.n_domains) if k not in self.test_envs]
        model, checkpoints, resolved = self.train_on(
            dataset, algorithm, hparams, splits, train_envs, device, progress
        )
        spec = self.spec(dataset, algorithm, hparams)
        return model, make_record(
            "dg",
            self.name,
            spec,
            data=record_data(dataset, splits),
            method=algorithm,
            paper=cls.paper,
            hparams=resolved,
            hparams_fixed=hparams,
            test_envs=sorted(self.test_envs),
            train_envs=train_envs,
            wrapper=self.wrapper,
            update_rule=self.update_rule,
            steps=self.steps,
            checkpoint_freq=self.checkpoint_freq,
            holdout_fraction=self.holdout_fraction,
            trial_seed=self.trial_seed,
            seed=self.seed,
            checkpoints=checkpoints,
            **({"crafted_shifts": True} if self.crafted_shifts else {}),
            timing={
                "total_s": time.perf_counter() - t0,
                "steps_per_s": self.steps / (time.perf_counter() - t0),
            },
        )

    def train_on(
        self,
        dataset: DomainDataset,
        algorithm: str | type[Algorithm],
        hparams: Mapping[str, Any],
        splits: Sequence[tuple[np.ndarray, np.ndarray]],
        train_envs: Sequence[int],
        device: str | None = None,
        progress: Progress | None = None,
        on_checkpoint: Callable[[int, torch.nn.Module], None] | None = None,
    ) -> tuple[Algorithm, list[dict[str, Any]], dict[str, Any]]:
        """The training loop on given parts: ``splits[k]`` is domain ``k``'s ``(in, out)`` indices;
        minibatches come from the ``in`` parts of ``train_envs``; every checkpoint records every
        part's accuracy and then calls ``on_checkpoint(step, network)`` with the network it
        evaluated. Returns the model (last step), the checkpoints and the resolved hyperparameters.

        :meth:`train` calls it with the trial seed's division; a protocol built on this one that
        owns its split (``gzsl-dg-v1``) calls it with its own parts. ``algorithm`` is a name of the
        ``DG`` registry or an algorithm class (``gzsl-dg-v1``'s end-to-end methods, built for their
        training classes).
        """
        cls = DG[algorithm] if isinstance(algorithm, str) else algorithm
        hparams = dict(hparams)
        dev = resolve_device(device)
        rule_cls = UPDATE_RULES[self.update_rule] if self.update_rule else None
        wrapper_cls = WRAPPERS[self.wrapper] if self.wrapper else None

        def own(part) -> dict[str, Any]:
            return {h.name: hparams[h.name] for h in part.hparams if h.name in hparams}

        extra = {h.name for h in run_hparams(self.update_rule, self.wrapper)}
        model_hp = {k: v for k, v in hparams.items() if k not in extra}
        with fork_rng(dev):
            torch.manual_seed(self.seed)  # dropout and any other global draws inside updates
            model = cls(dataset.input_shape, dataset.n_classes, len(train_envs), model_hp, self.seed, dev)
            inputs = torch.from_numpy(dataset.inputs.copy()).to(dev)
            labels = torch.from_numpy(dataset.labels.copy()).to(dev)
            batches = cpu_generator(self.seed, dev)
            augment = ImageAugmentation() if model.params.get("data_augmentation") else None
            augment_draws = stream(self.seed, "augmentation", dev)
            train_idx = [torch.as_tensor(splits[k][0], device=dev) for k in train_envs]
            batch_size = model.params["batch_size"]
            averaging = wrapper_cls(own(wrapper_cls)) if wrapper_cls else None
            rule = rule_cls(model, own(rule_cls)) if rule_cls else None
            update = rule.update if rule else model.update
            checkpoints, losses = [], {}
            for step in range(1, self.steps + 1):
                minibatches = []
                for idx in train_idx:
                    rows = idx[torch.randint(len(idx), (batch_size,), generator=batches, device=dev)]
                    x = inputs[rows] if augment is None else augment(inputs[rows], augment_draws)
                    minibatches.append((x, labels[rows]))
                model.train()
                with labelled(model.featurizer, minibatches):  # DomainDrop needs each row's domain
                    logs = update(minibatches)
                for key, value in logs.items():
                    losses.setdefault(key, []).append(value)
                if averaging is not None:
                    averaging.on_step(model, step)
                if step % self.checkpoint_freq == 0 or step == self.steps:
                    if hasattr(averaging, "on_checkpoint"):  # SWAD: validation loss of the current weights
                        out_parts = [splits[k][1] for k in train_envs]
                        val_loss = self._validation_loss(model.network, inputs, labels, out_parts)
                        averaging.on_checkpoint(model, step, val_loss)
                    evaluated = averaging.final_network() if averaging is not None else model.network
                    checkpoints.append(
                        {
                            "step": step,
                            **{k: _log_mean(v) for k, v in losses.items()},
                            **self._accuracies(evaluated, inputs, labels, splits),
                        }
                    )
                    if self.crafted_shifts:
                        out_parts = {k: splits[k][1] for k in train_envs}
                        checkpoints[-1].update(
                            crafted_accuracies(
                                evaluated, inputs, labels, out_parts, self.trial_seed, eval_chunk(inputs)
                            )
                        )
                    losses = {}
                    if on_checkpoint is not None:
                        on_checkpoint(step, evaluated)
                    if progress:
                        progress(step, self.steps, f"{cls.name} step {step}/{self.steps}")
        if averaging is not None:  # the averaged weights are the trained model
            model.network.load_state_dict(averaging.final_network().state_dict())
        resolved = {
            **model.params,
            **(rule.params if rule else {}),
            **(averaging.params if averaging else {}),
        }
        return model, checkpoints, resolved

    @staticmethod
    @torch.no_grad()
    def _validation_loss(network, inputs, labels, parts) -> float:
        """Mean over the given (training-domain ``out``) parts of their mean cross-entropy."""
        network.eval()
        chunk = eval_chunk(inputs)
        losses = []
        for idx in parts:
            rows = torch.as_tensor(idx, device=inputs.device)
            total = sum(
                float(F.cross_entropy(network(inputs[r]), labels[r], reduction="sum"))
                for r in rows.split(chunk)
            )
            losses.append(total / max(len(idx), 1))
        return float(np.mean(losses))

    @staticmethod
    @torch.no_grad()
    def _accuracies(network, inputs, labels, splits) -> dict[str, float]:
        network.eval()
        chunk = eval_chunk(inputs)
        out = {}
        for k, (idx_in, idx_out) in enumerate(splits):
            for part, idx in (("in", idx_in), ("out", idx_out)):
                if len(idx) == 0:  # nothing to predict (a caller's split may leave a part empty)
                    out[f"env{k}_{part}_acc"] = 0.0
                    continue
                rows = torch.as_tensor(idx, device=inputs.device)
                correct = sum(
                    int((network(inputs[r]).argmax(1) == labels[r]).sum()) for r in rows.split(chunk)
                )
                out[f"env{k}_{part}_acc"] = correct / max(len(idx), 1)
        return out
