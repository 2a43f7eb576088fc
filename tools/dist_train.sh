#!/usr/bin/env bash
# Usage: bash tools/dist_train.sh CONFIG NUM_PROCESSES [train.py options]
# One process per GPU; on a machine without GPUs the processes use gloo.
CONFIG=$1
NPROC=$2
PORT=${PORT:-29500}
PYTHONPATH="$(dirname "$0")/..:$PYTHONPATH" \
"${PYTHON:-python}" -m torch.distributed.run --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="$PORT" \
    --nproc_per_node="$NPROC" \
    "$(dirname "$0")/train.py" "$CONFIG" --launcher pytorch "${@:3}"
