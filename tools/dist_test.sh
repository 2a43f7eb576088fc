#!/usr/bin/env bash
# Usage: bash tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCESSES [test.py options]
# One process per GPU; on a machine without GPUs the processes use gloo.
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
PORT=${PORT:-29500}
PYTHONPATH="$(dirname "$0")/..:$PYTHONPATH" \
"${PYTHON:-python}" -m torch.distributed.run --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="$PORT" \
    --nproc_per_node="$NPROC" \
    "$(dirname "$0")/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
