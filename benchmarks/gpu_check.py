"""The jobs of ``benchmarks/gpu_check.sh`` and the one table they make.

Each job writes one JSON file into the output folder; ``table`` gathers every file there into a
Markdown table (``gpu_check.md``) naming the device, torch and the budgets:

    python benchmarks/gpu_check.py gzsl METHOD --data SPEC --device DEV --out DIR [--epochs N]
    python benchmarks/gpu_check.py dg --data SPEC --device DEV --out DIR --steps N
    python benchmarks/gpu_check.py official NAME --out DIR -- COMMAND ...
    python benchmarks/gpu_check.py table DIR

``gzsl`` runs the whole ``gzsl-ps-v1`` protocol (validation fit with checkpoints, refit, test;
``gzsl-transductive-v1`` for a transductive method)
at the paper's settings for the data (``dataset_defaults``) unless ``--epochs`` caps the
generator epochs and ``--cls-epochs`` the classifier's, or ``--fast`` takes the method's small
smoke-run preset (the CLI's ``--fast``). ``dg`` trains ERM under ``dg-lodo-v1``
with the first domain held out and reports the training-domain-validation pick. ``official``
runs a side-by-side benchmark command and keeps its last Markdown table and summary lines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from unseen.data import load_dataset
from unseen.data.domains import load_domains
from unseen.methods import GZSL
from unseen.protocols.dg import DGProtocol
from unseen.protocols.dg_selection import SELECTIONS
from unseen.protocols.gzsl import GZSLProtocol
from unseen.protocols.gzsl_transductive import TransductiveGZSLProtocol


def device_name(device: str) -> str:
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads)"


def write_json(folder: Path, name: str, content: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(content, fh, indent=1)
    os.replace(tmp, folder / f"{name}.json")


def job_gzsl(args: argparse.Namespace) -> None:
    dataset = load_dataset(args.data)
    cls = GZSL[args.method]
    paper = {**{h.name: h.default for h in cls.hparams}, **cls.defaults_for(dataset.name)}
    caps = {"epochs": args.epochs, "cls_epochs": args.cls_epochs}
    fixed = {key: value for key, value in caps.items() if value is not None and key in paper}
    if args.fast:
        fixed = {**cls.fast_hparams, **fixed}
    budget = {key: fixed.get(key, paper.get(key)) for key in ("epochs", "cls_epochs") if key in paper}
    t = time.perf_counter()
    protocol = TransductiveGZSLProtocol if cls.transductive else GZSLProtocol
    record = protocol(seed=args.seed).run(dataset, args.method, fixed, device=args.device)
    write_json(
        args.out,
        f"gzsl-{args.method}",
        {
            "kind": "gzsl",
            "name": args.method,
            "protocol": record["protocol"],
            "data": f"{dataset.source} ({dataset.hash})",
            "device": device_name(args.device),
            "budget": budget,
            "paper_budget": not args.fast and all(fixed.get(k, paper.get(k)) == paper.get(k) for k in budget),
            "wall_s": time.perf_counter() - t,
            "metrics": {k: record["metrics"][k] for k in ("S", "U", "H")},
            "chosen": {k: record["hparams"].get(k) for k in budget},
        },
    )


def job_dg(args: argparse.Namespace) -> None:
    dataset = load_domains(args.data)
    protocol = DGProtocol((0,), args.steps, args.checkpoint_freq, seed=args.seed)
    t = time.perf_counter()
    record = protocol.run(dataset, "erm", {}, device=args.device)
    wall = time.perf_counter() - t
    pick = SELECTIONS["training-val"]([record])
    write_json(
        args.out,
        "dg-erm",
        {
            "kind": "dg",
            "name": "erm",
            "data": f"{dataset.name} ({dataset.hash}), test domain {dataset.domain_names[0]}",
            "device": device_name(args.device),
            "budget": {"steps": args.steps},
            "paper_budget": args.steps == DGProtocol.steps,
            "wall_s": wall,
            "steps_per_s": args.steps / wall,
            "metrics": {"test acc": 100 * pick["test_acc"]} if pick else {},
        },
    )


def job_official(args: argparse.Namespace) -> None:
    """Run a side-by-side benchmark; keep the lines of its output that are Markdown tables or
    summaries (``over seeds``, ``official``), and its exit status."""
    command = [c for c in args.command if c != "--"]
    t = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    kept = [
        line
        for line in done.stdout.splitlines()
        if line.startswith(("|", "over seeds", "##")) or "official" in line.lower()
    ]
    write_json(
        args.out,
        f"official-{args.name}",
        {
            "kind": "official",
            "name": args.name,
            "command": " ".join(command),
            "returncode": done.returncode,
            "wall_s": time.perf_counter() - t,
            "lines": kept,
            "stderr_tail": done.stderr[-2000:] if done.returncode else "",
        },
    )


def make_table(folder: Path) -> str:
    """The Markdown table of every job's JSON file in ``folder`` (gzsl, then dg, then official)."""
    results = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    order = {"gzsl": 0, "dg": 1, "official": 2}
    results.sort(key=lambda r: (order[r["kind"]], r["name"]))
    devices = sorted({r["device"] for r in results if "device" in r})
    lines = [
        f"Device: {', '.join(devices) or '-'}; torch {torch.__version__}; Python {platform.python_version()}",
        "",
        "| job | data | budget (paper's?) | chosen on validation | wall (s) | S | U | H / acc |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if r["kind"] == "official":
            continue
        m = r["metrics"]
        budget = ", ".join(f"{k} {v}" for k, v in r["budget"].items()) or "no epochs"
        chosen = ", ".join(f"{k} {v}" for k, v in r.get("chosen", {}).items()) or "-"
        score = f"{m['H']:.1f}" if "H" in m else f"{m.get('test acc', float('nan')):.1f}"
        s, u = (f"{m[k]:.1f}" if k in m else "-" for k in ("S", "U"))
        paper = "yes" if r["paper_budget"] else "no"
        protocol = r.get("protocol", "gzsl-ps-v1")
        data = r["data"] if protocol == "gzsl-ps-v1" else f"{r['data']}, {protocol}"
        lines.append(
            f"| {r['kind']} {r['name']} | {data} | {budget} ({paper}) | {chosen} | {r['wall_s']:.0f} | "
            f"{s} | {u} | {score} |"
        )
    for r in results:
        if r["kind"] != "official":
            continue
        status = "ok" if r["returncode"] == 0 else f"FAILED (exit {r['returncode']})"
        lines += ["", f"### official side by side: {r['name']} ({status}, {r['wall_s']:.0f} s)", ""]
        lines += [f"`{r['command']}`", "", *r["lines"]]
        if r["stderr_tail"]:
            lines += ["", "```", r["stderr_tail"], "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="job", required=True)
    gzsl = sub.add_parser("gzsl")
    gzsl.add_argument("method")
    gzsl.add_argument("--epochs", type=int, default=None)
    gzsl.add_argument("--cls-epochs", type=int, default=None)
    gzsl.add_argument("--fast", action="store_true", help="the method's small smoke-run preset")
    dg = sub.add_parser("dg")
    dg.add_argument("--steps", type=int, default=DGProtocol.steps)
    dg.add_argument("--checkpoint-freq", type=int, default=DGProtocol.checkpoint_freq)
    for p in (gzsl, dg):
        p.add_argument("--data", required=True)
        p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--out", type=Path, required=True)
    official = sub.add_parser("official")
    official.add_argument("name")
    official.add_argument("--out", type=Path, required=True)
    official.add_argument("command", nargs=argparse.REMAINDER)
    table = sub.add_parser("table")
    table.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    if args.job == "table":
        text = make_table(args.folder)
        (args.folder / "gpu_check.md").write_text(text)
        sys.stdout.write(text)
        return
    {"gzsl": job_gzsl, "dg": job_dg, "official": job_official}[args.job](args)


if __name__ == "__main__":
    main()
