#!/usr/bin/env bash
# Sets up .venv/ with the OpenMMLab stack isda_mm is tested against, idempotently.
#
# mmcv 2.1.0 (the newest mmdet 3.3.0 accepts) has no wheel for torch 2.14, so it is built
# from the PyPI sdist once and the wheel is cached outside the repo, keyed by the mmcv,
# torch, Python and CUDA versions. Environment:
#   ISDA_MM_CACHE      cache folder (default ~/.cache/isda_mm)
#   ISDA_MM_MMCV_CUDA  1: build mmcv's CUDA ops, 0: CPU ops only; default: CUDA ops when
#                      torch sees a GPU and nvcc is on PATH
#   PYTHON             interpreter for the venv (default python3.11)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV="$ROOT/.venv"
CACHE="${ISDA_MM_CACHE:-$HOME/.cache/isda_mm}"
PY="${PYTHON:-python3.11}"
MMCV_VERSION=2.1.0
STAMP="$VENV/.isda_mm_ready"

step() { echo "[setup] $*"; }
fail() { echo "[setup] FAILED at step '$CURRENT': $*" >&2; exit 1; }
CURRENT=start
trap 'rc=$?; [ $rc -eq 0 ] || echo "[setup] FAILED at step: $CURRENT (exit $rc); the venv is not marked ready, rerun after fixing" >&2' EXIT

# The stamp records what the venv was built from; anything changed means a re-check.
want=$(cat "$ROOT/tools/setup_env.sh" "$ROOT/requirements/"*.txt "$ROOT/setup.py" | sha256sum | cut -c1-16)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/python" ]; then
  exit 0
fi
rm -f "$STAMP"

CURRENT="create venv"
if [ ! -x "$VENV/bin/python" ]; then
  step "creating $VENV with $PY"
  command -v "$PY" >/dev/null || fail "$PY not found; set PYTHON=/path/to/python3.11"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
# This machine's pip config lists local indexes that warn for every package.
pip_() { "${PIP[@]}" "$@" 2> >(grep -v 'is ignored: it is neither a file' >&2); }

CURRENT="torch"
step "installing build tools and torch (from requirements/torch.txt)"
pip_ install -q -r "$ROOT/requirements/build.txt" -r "$ROOT/requirements/torch.txt"

CURRENT="mmcv"
read -r TORCH_V PY_V TORCH_CUDA HAS_GPU < <("$VENV/bin/python" - <<'PYEOF'
import sys, torch
print(torch.__version__.split('+')[0], f'{sys.version_info[0]}{sys.version_info[1]}',
      torch.version.cuda or 'none', int(torch.cuda.is_available()))
PYEOF
)
[ -n "$TORCH_V" ] || fail "torch does not import in $VENV"
WITH_CUDA="${ISDA_MM_MMCV_CUDA:-}"
if [ -z "$WITH_CUDA" ]; then
  WITH_CUDA=0
  [ "$HAS_GPU" = 1 ] && [ "$TORCH_CUDA" != none ] && command -v nvcc >/dev/null && WITH_CUDA=1
fi
if [ "$WITH_CUDA" = 1 ]; then OPS="cu${TORCH_CUDA//./}"; else OPS=cpu; fi
KEY="mmcv${MMCV_VERSION}-torch${TORCH_V}-py${PY_V}-${OPS}"
WHEELDIR="$CACHE/wheels/$KEY"
if ! ls "$WHEELDIR"/mmcv-*.whl >/dev/null 2>&1; then
  step "no cached mmcv wheel for $KEY: building mmcv $MMCV_VERSION from source (11-26 min on 2 cores)"
  BUILD=$(mktemp -d)
  pip_ download -q --no-deps --no-binary :all: "mmcv==$MMCV_VERSION" -d "$BUILD" \
    || fail "could not download the mmcv $MMCV_VERSION sdist from PyPI"
  tar xzf "$BUILD"/mmcv-*.tar.gz -C "$BUILD"
  SRC=$(ls -d "$BUILD"/mmcv-*/)
  # torch >= 2.5's headers need C++20; mmcv 2.1.0 hard-codes C++17.
  sed -i 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"
  export MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}"
  if [ "$WITH_CUDA" = 1 ]; then
    export FORCE_CUDA=1
    export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-$("$VENV/bin/python" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())')}"
  else
    export FORCE_CUDA=0 CUDA_VISIBLE_DEVICES=""
  fi
  LOG="$BUILD/build.log"
  step "compiling (log: $LOG)"
  ( cd "$SRC" && "${PIP[@]}" wheel -v --no-build-isolation --no-deps -w "$BUILD/dist" . ) >"$LOG" 2>&1 &
  pid=$!; t0=$SECONDS
  while kill -0 $pid 2>/dev/null; do
    sleep 60
    kill -0 $pid 2>/dev/null && step "  still compiling mmcv ($(( (SECONDS - t0) / 60 )) min, $(wc -l <"$LOG") log lines)"
  done
  wait $pid || { tail -30 "$LOG" >&2; fail "mmcv build failed (full log: $LOG)"; }
  mkdir -p "$WHEELDIR"
  # Copy then rename, so an interrupted copy never looks like a cached wheel.
  whl=$(ls "$BUILD"/dist/mmcv-*.whl)
  cp "$whl" "$WHEELDIR/.tmp.whl" && mv "$WHEELDIR/.tmp.whl" "$WHEELDIR/$(basename "$whl")"
  step "cached $(basename "$whl") in $WHEELDIR"
  rm -rf "$BUILD"
else
  step "using cached mmcv wheel $KEY"
fi
pip_ install -q --no-deps "$WHEELDIR"/mmcv-*.whl

CURRENT="OpenMMLab toolkits"
step "installing mmengine, mmpretrain, mmsegmentation, mmdet, test and demo tools"
pip_ install -q -r "$ROOT/requirements/mm.txt" -r "$ROOT/requirements/tests.txt" \
  -r "$ROOT/requirements/demo.txt"

CURRENT="isda_mm"
step "installing isda_mm in editable mode"
pip_ install -q --no-deps --no-build-isolation -e "$ROOT"

CURRENT="import check"
step "checking imports (from outside the source tree)"
( cd / && "$VENV/bin/python" -c "
import mmcv, mmcv.ops, mmengine, mmpretrain, mmseg, mmdet, isda_mm
print('[setup] torch', __import__('torch').__version__, '| mmcv', mmcv.__version__, '| mmengine', mmengine.__version__,
      '| mmpretrain', mmpretrain.__version__, '| mmseg', mmseg.__version__, '| mmdet', mmdet.__version__)" ) \
  || fail "the installed stack does not import"

echo "$want" > "$STAMP"
step "ready: $VENV"
