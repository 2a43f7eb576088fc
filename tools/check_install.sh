#!/usr/bin/env bash
# What a user who never clones this repository gets: `pip install isda-mm[all]`.
#
# Builds the wheel, installs it with its declared dependencies into a NEW venv
# (offline, from a wheelhouse cached outside the repo, so nothing undeclared
# can slip in from the index), then, from outside the source tree:
#   1. `isda-config` writes the ISDA twin of a zoo config named by scope;
#   2. mmpretrain's own tools/train.py trains a tiny child of that twin
#      (a generated image folder, 2 iterations) with `custom_imports`;
#   3. the checkpoint holds the statistics of the classes it saw.
# Environment: ISDA_MM_CACHE (default ~/.cache/isda_mm), PYTHON (python3.11).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE="${ISDA_MM_CACHE:-$HOME/.cache/isda_mm}"
PY="${PYTHON:-python3.11}"
DEV="$ROOT/.venv/bin/python"  # only builds the wheel and fills the wheelhouse
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
step() { echo "[install-check] $*"; }
pip_() { "$@" 2> >(grep -v 'is ignored: it is neither a file' >&2); }

step "building the isda_mm wheel"
pip_ "$DEV" -m pip wheel -q --no-deps --no-build-isolation -w "$WORK/dist" "$ROOT"
WHEEL=$(ls "$WORK"/dist/isda_mm-*.whl)

# The same pins as the development venv; mmcv from setup_env.sh's cache (its
# PyPI sdist does not build for torch 2.14 unpatched).
MMCV_DIR=$(dirname "$(ls "$CACHE"/wheels/mmcv2.1.0-*-cpu/mmcv-*.whl | head -1)")
PINS=("$ROOT/requirements/torch.txt" "$ROOT/requirements/mm.txt")
# Keyed by the pins and the wheel's declared requirements, nothing else.
REQUIRES=$("$DEV" -c "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); print(
    *sorted(l for n in z.namelist() if n.endswith('METADATA')
            for l in z.read(n).decode().splitlines()
            if l.startswith('Requires-Dist')), sep='\n')" "$WHEEL")
KEY=$( (cat "${PINS[@]}"; echo "$REQUIRES") | sha256sum | cut -c1-16)
HOUSE="$CACHE/wheelhouse/$KEY"
if [ ! -f "$HOUSE/.complete" ]; then
  step "filling the wheelhouse $HOUSE (once per set of pins; older sets removed)"
  rm -rf "$CACHE/wheelhouse"
  pip_ "$DEV" -m pip download -q -d "$HOUSE" "$WHEEL[all]" \
    -c "${PINS[0]}" -c "${PINS[1]}" --find-links "$MMCV_DIR"
  touch "$HOUSE/.complete"
fi

step "installing isda_mm[all] into a fresh venv (offline)"
"$PY" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
pip_ "$VPY" -m pip install -q --disable-pip-version-check --no-index \
  --find-links "$HOUSE" --find-links "$WORK/dist" "isda_mm[all]"

cd "$WORK"  # away from the source tree: only the installed package counts
export PYTHONWARNINGS="ignore:pkg_resources is deprecated"  # mmengine's
"$VPY" - <<'EOF'
import os
import cv2
import numpy as np
rng = np.random.default_rng(0)
for c in range(3):
    os.makedirs(f'data/train/class{c}')
    for i in range(4):
        image = rng.normal(60 + 60 * c, 30, (32, 32, 3)).clip(0, 255)
        cv2.imwrite(f'data/train/class{c}/{i}.png', image.astype(np.uint8))
EOF

step "isda-config: the twin of mmpretrain::resnet/resnet18_8xb32_in1k.py"
"$WORK/venv/bin/isda-config" mmpretrain::resnet/resnet18_8xb32_in1k.py \
  --out twin.py
cat > tiny.py <<'EOF'
_base_ = './twin.py'
model = dict(head=dict(num_classes=3))
pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=6, num_workers=0, persistent_workers=False,
    dataset=dict(type='CustomDataset', data_root='data', data_prefix='train',
                 pipeline=pipeline, _delete_=True))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, _delete_=True)
param_scheduler = []
val_dataloader = val_evaluator = val_cfg = None
test_dataloader = test_evaluator = test_cfg = None
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=2),
                     logger=dict(interval=1))
EOF

step "mmpretrain's own tools/train.py trains the twin"
TRAIN=$("$VPY" -c "import mmpretrain, os; print(os.path.join(
    os.path.dirname(mmpretrain.__file__), '.mim', 'tools', 'train.py'))")
"$VPY" "$TRAIN" tiny.py --work-dir work >train.log 2>&1 \
  || { tail -40 train.log >&2; exit 1; }

"$VPY" - <<'EOF'
import isda_mm, torch
from mmengine.runner.checkpoint import _load_checkpoint
assert 'site-packages' in isda_mm.__file__, isda_mm.__file__
state = _load_checkpoint('work/iter_2.pth', map_location='cpu')['state_dict']
counts = [v for k, v in state.items() if k.endswith('count')]
assert counts and int(counts[0].sum()) == 12, counts
print('[install-check] ok: the checkpoint holds ISDA statistics of',
      int((counts[0] > 0).sum()), 'classes from', int(counts[0].sum()),
      'images')
EOF
