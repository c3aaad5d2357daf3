#!/usr/bin/env bash
# bench/transfer.py on a machine with a GPU and no MiniLM package: sources, then targets, one process per dataset.
#
# Reads a bundle of bench/gpu_bundle.py (raw files, relation texts, fusion.pth and the MiniLM vectors of
# every relation vocabulary, precomputed on a machine that has the encoder), builds the six fixed-mode
# source studies (search.launch, --trials each) in parallel, then measures every target in parallel
# (each process reads all sources), then merges the per-target documents: the JSON line, the table
# and the verdict on stdout; transfer.json, sources.db and logs.tar.gz in OUT.
#
#   python bench/gpu_bundle.py --out BUNDLE --no-reference --datasets FB15k237Inductive:v1 \
#       WN18RRInductive:v1 NELLInductive:v1 ILPC2022:small FBNELL Metafam        # here, with the encoder
#   bash bench/transfer_device.sh BUNDLE OUT python3 cuda 12 0,1,2 450          # there
#
# usage: bench/transfer_device.sh BUNDLE OUT PYTHON DEVICE TRIALS SEEDS BUDGET_S [DATASETS]
# BUDGET_S: wall seconds for the whole script; sources get 45% of it, targets what is left (minus 20 s);
# a process out of time is stopped and the merge reports the runs it finished.
set -u
B=$1; OUT=$2; PY=$3; DEV=$4; TRIALS=$5; SEEDS=$6; BUDGET=$7
DS=${8:-FB15k237Inductive:v1,WN18RRInductive:v1,NELLInductive:v1,ILPC2022:small,FBNELL,Metafam}
T0=$(date +%s)
W=$(mktemp -d /tmp/transfer-work.XXXXXX)
HERE=$(cd "$(dirname "$0")" && pwd)
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 NUMBA_NUM_THREADS=2 PYTHONUNBUFFERED=1
# the encoder of each dataset: the vectors file of its validation split's relation vocabulary
"$PY" -c 'import json, sys; m = json.load(open(sys.argv[1] + "/manifest.json"))
json.dump({d: e["vectors"]["valid"] for d, e in m["datasets"].items()}, open(sys.argv[1] + "/encoders.json", "w"))' "$B"
common=(--datasets "$DS" --trials "$TRIALS" --seeds "$SEEDS" --k 2 --device "$DEV" --encoder-map "$B/encoders.json"
        --data-root "$B/data" --text-root "$B/texts" --checkpoint-root "$B/checkpoints" --cache-dir "$W/cache"
        --offline --storage "sqlite:///$W/sources.db")
IFS=, read -ra names <<< "$DS"
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
echo "sources ($(left) s left)" >&2
for d in "${names[@]}"; do
  timeout $(( $(left) * 45 / 100 )) "$PY" "$HERE/transfer.py" "${common[@]}" --targets "$d" --build-sources \
    --only-build > "$W/build.${d//:/_}.log" 2>&1 &
  sleep 1  # the first process creates the storage's tables alone
done
wait
grep -h "^\[transfer\|rror" "$W"/build.*.log >&2
echo "targets ($(left) s left)" >&2
for d in "${names[@]}"; do
  timeout $(( $(left) - 20 )) "$PY" "$HERE/transfer.py" "${common[@]}" --targets "$d" --out "$W/t.${d//:/_}.json" \
    > "$W/run.${d//:/_}.log" 2>&1 &
done
wait
grep -h "^\[transfer\|rror" "$W"/run.*.log >&2
echo "merge ($(left) s left)" >&2
"$PY" "$HERE/transfer.py" --merge "$W"/t.*.json --out "$OUT/transfer.json"
cp "$W/sources.db" "$OUT/sources.db"
tar -C "$W" -czf "$OUT/logs.tar.gz" --exclude cache --exclude sources.db .
