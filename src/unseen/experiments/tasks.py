"""Task runners: how a run spec of each task kind becomes a run record.

A :class:`TaskRunner` knows, for one task kind, how to load the data a spec names, the identity
of a run (the dict whose hash is its run id, the same dict the task's protocol hashes into its
records) and how to execute it. Sweeps, executors and the store only talk to this interface, so
a new task kind is one registered class.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, ClassVar

from unseen.core.errors import SpecError
from unseen.core.registry import Registry
from unseen.experiments.spec import RunSpec


class TaskRunner:
    """One task kind: ``load`` its data, give a run's ``identity``, ``run`` it to a record."""

    task: ClassVar[str] = ""
    options: ClassVar[dict[str, Any]] = {}
    """Task options a sweep may set, with their defaults."""

    def load(self, data: str) -> Any:
        raise NotImplementedError

    def expand(self, spec: RunSpec) -> list[RunSpec]:
        """The runs one expanded sweep entry stands for (most tasks: itself)."""
        return [spec]

    def identity(self, spec: RunSpec, dataset: Any) -> dict[str, Any]:
        raise NotImplementedError

    def run(self, spec: RunSpec, dataset: Any) -> dict[str, Any]:
        raise NotImplementedError

    def methods(self) -> list[str]:
        raise NotImplementedError

    def declared_hparams(self, method: str, data: str, options: dict[str, Any]) -> tuple:
        """The hyperparameters runs of ``method`` on ``data`` with task ``options`` take (a sweep's
        search space)."""
        raise NotImplementedError


class GZSLTask(TaskRunner):
    """Generalized zero-shot runs under ``gzsl-ps-v1`` (options: ``calibrate``, ``search``, and
    ``protocol``: ``gzsl-transductive-v1`` for transductive methods)."""

    task = "gzsl"
    options = {"calibrate": False, "search": "grid", "protocol": "gzsl-ps-v1"}

    def load(self, data: str) -> Any:
        from unseen.data import load_dataset

        return load_dataset(data)

    def _protocol(self, spec: RunSpec):
        from unseen.protocols import PROTOCOLS

        opts = {**self.options, **spec.options}
        if opts["protocol"] not in PROTOCOLS:
            raise SpecError(
                f"gzsl option protocol = '{opts['protocol']}' is unknown; "
                f"use one of {', '.join(sorted(PROTOCOLS))}."
            )
        protocol = PROTOCOLS[opts["protocol"]]
        return protocol(calibrate=bool(opts["calibrate"]), search=str(opts["search"]), seed=spec.seed)

    def identity(self, spec: RunSpec, dataset: Any) -> dict[str, Any]:
        return self._protocol(spec).spec(dataset, spec.method, spec.hparams)

    def run(self, spec: RunSpec, dataset: Any) -> dict[str, Any]:
        return self._protocol(spec).run(dataset, spec.method, spec.hparams, device=spec.device)

    def methods(self) -> list[str]:
        from unseen.methods import GZSL

        return list(GZSL)

    def declared_hparams(self, method: str, data: str, options: dict[str, Any]) -> tuple:
        from unseen.methods import GZSL

        return GZSL[method].hparams


class DGTask(TaskRunner):
    """Domain generalization under ``dg-lodo-v1``.

    Options: ``test_env`` (a domain number; a list in a sweep gives one run per domain),
    ``steps``, ``checkpoint_freq``, ``holdout_fraction``, ``wrapper`` (``ema``, ``swa`` or
    ``swad``), ``update_rule`` (``sam``, ``fad``, ``gsam`` or ``sagm``) and
    ``lodo_validation`` (also run every pair (test domain, other domain) held out, which
    leave-one-domain-out selection needs) and ``crafted_shifts`` (also score the training
    domains' ``out`` parts under crafted shifts, which the ``crafted-shift`` selection needs;
    images only). The
    sweep's seed is the trial seed (the domains' in/out splits) and the algorithm's seed.
    """

    task = "dg"
    options = {
        "test_env": 0,
        "steps": 5000,
        "checkpoint_freq": 100,
        "holdout_fraction": 0.2,
        "lodo_validation": False,
        "wrapper": "",
        "update_rule": "",
        "crafted_shifts": False,
    }

    def load(self, data: str) -> Any:
        from unseen.data.domains import load_domains

        return load_domains(data)

    def expand(self, spec: RunSpec) -> list[RunSpec]:
        opts = {**self.options, **spec.options}
        if not opts["lodo_validation"]:
            return [spec]
        test = int(opts["test_env"])
        others = [k for k in range(load_cached(self.task, spec.data).n_domains) if k != test]
        return [spec] + [
            RunSpec(
                spec.task,
                spec.data,
                spec.method,
                spec.seed,
                spec.hparams,
                {**spec.options, "test_env": [test, v]},
            )
            for v in others
        ]

    def _protocol(self, spec: RunSpec):
        from unseen.protocols.dg import DGProtocol

        opts = {**self.options, **spec.options}
        envs = opts["test_env"] if isinstance(opts["test_env"], list) else [opts["test_env"]]
        return DGProtocol(
            tuple(int(e) for e in envs),
            int(opts["steps"]),
            int(opts["checkpoint_freq"]),
            float(opts["holdout_fraction"]),
            trial_seed=spec.seed,
            seed=spec.seed,
            wrapper=opts["wrapper"] or None,
            update_rule=opts["update_rule"] or None,
            crafted_shifts=bool(opts["crafted_shifts"]),
        )

    def identity(self, spec: RunSpec, dataset: Any) -> dict[str, Any]:
        protocol = self._protocol(spec)
        protocol.check(dataset)  # a run that cannot start fails the plan, before any run starts
        return protocol.spec(dataset, spec.method, spec.hparams)

    def run(self, spec: RunSpec, dataset: Any) -> dict[str, Any]:
        return self._protocol(spec).run(dataset, spec.method, spec.hparams, device=spec.device)

    def methods(self) -> list[str]:
        from unseen.methods import DG

        return list(DG)

    def declared_hparams(self, method: str, data: str, options: dict[str, Any]) -> tuple:
        """DomainBed's shared hyperparameters depend on the data (large images train the pretrained
        featurizer with their own learning rate and batch size), so the data is loaded to see; the
        update rule and averaging wrapper of ``options`` add theirs."""
        from unseen.methods import DG
        from unseen.protocols.dg import run_hparams

        opts = {**self.options, **options}
        extra = run_hparams(opts["update_rule"] or None, opts["wrapper"] or None)
        return DG[method].all_hparams(load_cached(self.task, data).input_shape) + extra


class DGProbeTask(DGTask):
    """The logistic-regression probe on feature vectors under ``dg-probe-v1``, the baseline row of
    DG on frozen features: its records join the ``dg`` tables, where ``--select`` picks ``C``
    (a sweep with ``sweep_hparams = "grid"`` runs every ``C``). Options: ``test_env`` (a list in a
    sweep gives one run per domain) and ``holdout_fraction``; the seed is the trial seed."""

    task = "dg-probe"
    options = {"test_env": 0, "holdout_fraction": 0.2}

    def expand(self, spec: RunSpec) -> list[RunSpec]:
        return [spec]

    def _protocol(self, spec: RunSpec):
        from unseen.protocols.dg_probe import DGProbeProtocol

        opts = {**self.options, **spec.options}
        return DGProbeProtocol((int(opts["test_env"]),), float(opts["holdout_fraction"]), spec.seed)

    def run(self, spec: RunSpec, dataset: Any) -> dict[str, Any]:
        return self._protocol(spec).run(dataset, spec.method, spec.hparams)

    def methods(self) -> list[str]:
        from unseen.protocols.dg_probe import PROBES

        return list(PROBES)

    def declared_hparams(self, method: str, data: str, options: dict[str, Any]) -> tuple:
        from unseen.protocols.dg_probe import PROBES

        return PROBES[method].hparams


class FewShotTask(TaskRunner):
    """Few-shot adaptation on paired embeddings under ``fewshot-kshot-v1`` or ``fewshot-b2n-v1``.

    Options: ``shots`` (a list in a sweep gives one run per shot count), ``protocol`` (``kshot``
    or ``b2n``) and ``test_fraction`` (used only for data without an official test part).
    """

    task = "fewshot"
    options = {"shots": 16, "protocol": "kshot", "test_fraction": 0.5}

    def load(self, data: str) -> Any:
        from unseen.data.paired import load_paired

        return load_paired(data)

    def _protocol(self, spec: RunSpec):
        from unseen.protocols.fewshot import PROTOCOLS

        opts = {**self.options, **spec.options}
        return PROTOCOLS[opts["protocol"]](int(opts["shots"]), spec.seed, float(opts["test_fraction"]))

    def identity(self, spec: RunSpec, dataset: Any) -> dict[str, Any]:
        return self._protocol(spec).spec(dataset, spec.method, spec.hparams)

    def run(self, spec: RunSpec, dataset: Any) -> dict[str, Any]:
        return self._protocol(spec).run(dataset, spec.method, spec.hparams, device=spec.device)

    def methods(self) -> list[str]:
        from unseen.methods import VLM

        return list(VLM)

    def declared_hparams(self, method: str, data: str, options: dict[str, Any]) -> tuple:
        from unseen.methods import VLM

        return VLM[method].hparams


class TTATask(TaskRunner):
    """Test-time adaptation of a saved DG model under ``tta-stream-v1``.

    Options: ``model`` (required: a file written by ``unseen dg --save-model``), ``domains`` (the
    target domain numbers; by default the model's held-out domains on its own data, every domain
    of other data), ``stream`` (``single`` or ``continual``) and ``batch_size``. The sweep's seed
    is the stream's seed.
    """

    task = "tta"
    options = {"model": "", "domains": [], "stream": "single", "batch_size": 64}

    def load(self, data: str) -> Any:
        from unseen.data.domains import load_domains

        return load_domains(data)

    def _setup(self, spec: RunSpec, dataset: Any, device: str | None = None):
        from unseen.protocols.dg_checkpoint import load_model
        from unseen.protocols.tta import TTAStreamProtocol, default_targets, dg_source, domain_streams

        opts = {**self.options, **spec.options}
        if not opts["model"]:
            raise SpecError(
                "a tta run needs options.model: the file `unseen dg --save-model` wrote, e.g. "
                'options = { model = "erm.pt" }.'
            )
        model, meta = load_model(str(opts["model"]), device)
        source = dg_source(model, meta, dataset)
        domains = opts["domains"] if isinstance(opts["domains"], list) else [opts["domains"]]
        targets = [int(k) for k in domains] or default_targets(meta, dataset)
        unknown = [k for k in targets if not 0 <= k < dataset.n_domains]
        if unknown:
            raise SpecError(
                f"tta options.domains {unknown} are not domains of {spec.data}; it has "
                f"{dataset.n_domains}: " + ", ".join(f"{k} = {n}" for k, n in enumerate(dataset.domain_names))
            )
        protocol = TTAStreamProtocol(
            mode=str(opts["stream"]), batch_size=int(opts["batch_size"]), seed=spec.seed
        )
        return protocol, source, domain_streams(dataset, targets), {"spec": spec.data, "hash": dataset.hash}

    def identity(self, spec: RunSpec, dataset: Any) -> dict[str, Any]:
        protocol, source, streams, data = self._setup(spec, dataset)
        return protocol.spec({**data, **source.info}, spec.method, spec.hparams, [d.name for d in streams])

    def run(self, spec: RunSpec, dataset: Any) -> dict[str, Any]:
        protocol, source, streams, data = self._setup(spec, dataset, spec.device)
        return protocol.run(source, spec.method, streams, spec.hparams, data, device=spec.device)

    def methods(self) -> list[str]:
        from unseen.methods import TTA

        return list(TTA)

    def declared_hparams(self, method: str, data: str, options: dict[str, Any]) -> tuple:
        from unseen.methods import TTA

        return TTA[method].hparams


class GZSLDGTask(TaskRunner):
    """Unseen classes in an unseen domain under ``gzsl-dg-v1``; methods are ``FEATURIZER+METHOD``
    (a DG algorithm or ``identity``, then a GZSL method), ``hparams`` are the GZSL method's.

    Options: ``test_env`` (the held-out domain; a list in a sweep gives one run per domain),
    ``steps``, ``checkpoint_freq``, ``calibrate``, ``search``, ``featurizer_hparams`` (the DG
    algorithm's fixed hyperparameters, a table) and ``featurizer_search`` (``default`` or
    ``random:N``: the protocol draws N featurizer settings and selects among them on validation).
    The sweep's seed seeds the split, the validation classes and domain, the featurizer, its
    draws and the method.
    """

    task = "gzsl-dg"
    options = {
        "test_env": 0,
        "steps": 1000,
        "checkpoint_freq": 100,
        "calibrate": False,
        "search": "grid",
        "featurizer_hparams": {},
        "featurizer_search": "default",
    }

    def load(self, data: str) -> Any:
        from unseen.data.zsl_domains import load_zsl_domains

        return load_zsl_domains(data)

    def _protocol(self, spec: RunSpec):
        from unseen.protocols.gzsl_dg import IDENTITY, GZSLDGProtocol, parse_method

        opts = {**self.options, **spec.options}
        if not isinstance(opts["featurizer_hparams"], dict):
            raise SpecError(
                "gzsl-dg options.featurizer_hparams must be a table, e.g. "
                "options = { featurizer_hparams = { batch_size = 32 } }."
            )
        trained = parse_method(spec.method)[0] != IDENTITY
        protocol = GZSLDGProtocol(
            int(opts["test_env"]),
            steps=int(opts["steps"]),
            checkpoint_freq=int(opts["checkpoint_freq"]),
            calibrate=bool(opts["calibrate"]),
            search=str(opts["search"]),
            seed=spec.seed,
            # One sweep entry may mix trained featurizers with `identity`, which trains nothing.
            featurizer_search=str(opts["featurizer_search"]) if trained else "default",
        )
        return protocol, dict(opts["featurizer_hparams"]) if trained else {}

    def identity(self, spec: RunSpec, dataset: Any) -> dict[str, Any]:
        protocol, featurizer_hparams = self._protocol(spec)
        protocol.check(dataset)  # a run that cannot start fails the plan, before any run starts
        return protocol.spec(dataset, spec.method, spec.hparams, featurizer_hparams)

    def run(self, spec: RunSpec, dataset: Any) -> dict[str, Any]:
        protocol, featurizer_hparams = self._protocol(spec)
        return protocol.run(dataset, spec.method, spec.hparams, featurizer_hparams, device=spec.device)

    def methods(self) -> list[str]:
        from unseen.methods import DG, GZSL, JOINT
        from unseen.protocols.gzsl_dg import IDENTITY

        return [f"{f}+{m}" for f in (IDENTITY, *DG) for m in GZSL] + list(JOINT)

    def declared_hparams(self, method: str, data: str, options: dict[str, Any]) -> tuple:
        from unseen.methods import GZSL
        from unseen.protocols.gzsl_dg import parse_method

        gzsl_method = parse_method(method)[1]
        return () if gzsl_method is None else GZSL[gzsl_method].hparams


TASKS: Registry[TaskRunner] = Registry.of(
    "task",
    {
        runner.task: runner
        for runner in (GZSLTask(), DGTask(), DGProbeTask(), FewShotTask(), TTATask(), GZSLDGTask())
    },
)


def task_runner(task: str) -> TaskRunner:
    return TASKS[task]


@lru_cache(maxsize=8)
def load_cached(task: str, data: str) -> Any:
    """The dataset of ``data`` for ``task``, loaded once per process."""
    return task_runner(task).load(data)
