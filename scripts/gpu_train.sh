#!/usr/bin/env bash
# Train the paper's `tiny` configuration on one GPU within a few minutes, and bring back shippable
# weights, model cards and logs. Prepared for a short GPU lease (about 10 minutes of wall clock).
#
# On any machine first (the lease cannot reach ../shared):
#     python -m data_prep.compact_photos            # .gpu_data/: lossless crops, about 18 MB
# Then, on the GPU machine, from the repository root (no install needed: PYTHONPATH=.):
#     OUT=/where/results/go scripts/gpu_train.sh
#
# x2 starts from the shipped tiny_x2 weights when they exist (else from scratch); x4 and x3 start
# from this run's x2 (only the ARM head and the REM up-sampler differ). Each scale is exported with
# `python -m cisr_lib.ship` into $OUT/weights/ (NAME.pt, NAME.md, SHA256SUMS), and the run logs go
# to $OUT/logs.tar.gz: 8 files in all for three scales. To ship them, copy $OUT/weights/*.pt and *.md
# (not its SHA256SUMS, which lists only these files) into cisr_lib/weights/, then run
#     python -c "from cisr_lib.pretrained import write_sums; write_sums()"
#
# Settings (environment variables; defaults are for one H100/H200):
#   MODEL=tiny  SCALES="2 4 3"  MINUTES="5 1.5 1.5" (training minutes per scale, validation not counted)
#   BATCH=32  PATCH=48  LR=5e-4  WORKERS=8  PRECISION=bf16  DEVICE=auto  VAL_EVERY=500
#   DATA=.gpu_data  RUNS=runs/gpu  PYTHON=python3  EXTRA="" (more `cisr train` options)
#   INIT_X2=cisr_lib/weights/$MODEL_x2.pt (where x2 starts; "none": from scratch)
# A CPU check with a micro model (tests/test_gpu_script.py):
#   MODEL=micro SCALES="2 4" MINUTES="0.05 0.05" BATCH=2 PATCH=16 WORKERS=0 PRECISION=fp32 DEVICE=cpu INIT_X2=none \
#   EXTRA="--set n_feats=8 n_groups=1 n_blocks=1 steps=1 --steps 2" OUT=/tmp/out scripts/gpu_train.sh
set -euo pipefail

: "${OUT:?set OUT to the folder that collects the results}"
MODEL=${MODEL:-tiny}
read -r -a SCALE_LIST <<< "${SCALES:-2 4 3}"
read -r -a MINUTE_LIST <<< "${MINUTES:-5 1.5 1.5}"
BATCH=${BATCH:-32}
PATCH=${PATCH:-48}
LR=${LR:-5e-4}
WORKERS=${WORKERS:-8}
PRECISION=${PRECISION:-bf16}
DEVICE=${DEVICE:-auto}
VAL_EVERY=${VAL_EVERY:-500}
DATA=${DATA:-.gpu_data}
RUNS=${RUNS:-runs/gpu}
PYTHON=${PYTHON:-python3}
if [ -n "${INIT_X2:-}" ] && [ "$INIT_X2" != none ] && [ ! -f "$INIT_X2" ]; then
    echo "gpu_train.sh: INIT_X2=$INIT_X2 does not exist" >&2; exit 2
fi
INIT_X2=${INIT_X2:-cisr_lib/weights/${MODEL}_x2.pt}
read -r -a EXTRA_ARGS <<< "${EXTRA:-}"

if [ "${#SCALE_LIST[@]}" != "${#MINUTE_LIST[@]}" ]; then
    echo "gpu_train.sh: SCALES and MINUTES must have as many entries" >&2; exit 2
fi
if [ "${SCALE_LIST[0]}" != 2 ]; then
    echo "gpu_train.sh: the first scale must be 2 (the others start from it)" >&2; exit 2
fi
for d in "$DATA/train" "$DATA/val"; do
    [ -d "$d" ] || { echo "gpu_train.sh: $d is missing (run python -m data_prep.compact_photos first)" >&2; exit 2; }
done

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$OUT/weights" "$RUNS"
HARDWARE=$("$PYTHON" -c "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'CPU')")
echo "gpu_train.sh: $MODEL on $HARDWARE, scales ${SCALE_LIST[*]}, minutes ${MINUTE_LIST[*]}"

X2_BEST="$RUNS/${MODEL}_x2/best.pt"
for i in "${!SCALE_LIST[@]}"; do
    s=${SCALE_LIST[$i]}
    minutes=${MINUTE_LIST[$i]}
    run="$RUNS/${MODEL}_x$s"
    init=()
    if [ "$s" = 2 ] && [ "$INIT_X2" != none ] && [ -f "$INIT_X2" ]; then
        init=(--init "$INIT_X2")
    elif [ "$s" != 2 ]; then
        init=(--init "$X2_BEST")
    fi
    cmd=("$PYTHON" -m cisr_lib.cli train --out "$run" --model "$MODEL" --scale "$s" --preset cpu
         --data "$DATA/train" --val-data "$DATA/val" --val-crop 192 --val-every "$VAL_EVERY"
         --batch-size "$BATCH" --patch "$PATCH" --lr "$LR" --warmup 100 --grad-clip 1.0
         --workers "$WORKERS" --precision "$PRECISION" --device "$DEVICE" --minutes "$minutes"
         ${init[@]+"${init[@]}"} --quiet ${EXTRA_ARGS[@]+"${EXTRA_ARGS[@]}"})
    echo "+ ${cmd[*]}"
    start=$(date +%s)
    "${cmd[@]}"
    echo "gpu_train.sh: x$s took $(( $(date +%s) - start )) s"
    "$PYTHON" -m cisr_lib.ship "$run" "${MODEL}_x$s" --dest "$OUT/weights" --overwrite --hardware "$HARDWARE" \
        --command "scripts/gpu_train.sh (x$s: ${cmd[*]:1})"
done
tar -czf "$OUT/logs.tar.gz" -C "$RUNS" $(cd "$RUNS" && ls -d "${MODEL}"_x*/log.jsonl "${MODEL}"_x*/config.json)
ls -l "$OUT/weights" "$OUT/logs.tar.gz"
