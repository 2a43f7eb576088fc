#!/usr/bin/env bash
# The GPU check (issue 19): on a machine with a Python that has torch and no network, install
# the OpenMMLab stack from wheels prepared beside the tree, then run on one device the device
# tests (core and head twins, fp32, fp16 and bf16 autocast), the benchmark's core and heads
# tables, and a few training iterations of one ISDA config per toolkit; write one report.
#
#   tools/gpu_check.sh --prepare [DIR] [--python PY] [--arch 9.0]
#       here, with network: fill DIR (default .whl/gpu_check, git-ignored) with cp312 wheels,
#       the mmcv sdist and, given PY (a Python with the target's torch) and nvcc, an mmcv
#       wheel with CUDA ops for --arch, cached in ~/.cache/isda_mm/wheels/.
#   tools/gpu_check.sh [--device cuda|cpu] [--python PY] [--wheels DIR] [--report FILE]
#                      [--work DIR] [--iters N] [--only tests,benchmark,train]
#       the check: device (default cuda if PY's torch sees one), PY (default python3),
#       report (default $OUT/gpu_check_report.md if $OUT is set, else gpu_check_report.md),
#       training iterations per config (default 8), the steps after the install (default
#       all). Exit status 0 only if every step passed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
HERE="$ROOT/tools/gpu_check"
MMCV_VERSION=2.1.0
MODE=check DEVICE="" PY=python3 PY_GIVEN="" WHEELS="$ROOT/.whl/gpu_check" REPORT="" WORK=""
ITERS=8 ARCH=9.0 ONLY=tests,benchmark,train

die() { echo "[gpu_check] $*" >&2; exit 2; }
say() { echo "[gpu_check] $*"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --prepare) MODE=prepare; if [ $# -gt 1 ] && [ "${2#--}" = "$2" ]; then WHEELS=$2; shift; fi ;;
    --device) DEVICE=${2:?}; shift ;;
    --python) PY=${2:?}; PY_GIVEN=1; shift ;;
    --wheels) WHEELS=${2:?}; shift ;;
    --report) REPORT=${2:?}; shift ;;
    --work) WORK=${2:?}; shift ;;
    --iters) ITERS=${2:?}; shift ;;
    --arch) ARCH=${2:?}; shift ;;
    --only) ONLY=${2:?}; shift ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed 's/^# \{0,1\}//;$d'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  shift
done
WHEELS=$(mkdir -p "$WHEELS" && cd "$WHEELS" && pwd)

# ---------------------------------------------------------------------------------- --prepare
prepare() {
  local pip=(python3 -m pip --disable-pip-version-check) tags=()
  for t in manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014; do
    tags+=(--platform "${t}_x86_64")
  done
  local dl=("${pip[@]}" download -q --only-binary=:all: --python-version 3.12
            --implementation cp --abi cp312 "${tags[@]}" -d "$WHEELS")
  say "downloading cp312 wheels into $WHEELS"
  # mmengine and mmcv declare opencv-python, which a torch image replaces by the headless
  # build: both are installed without their declared dependencies, named here instead.
  "${dl[@]}" --no-deps mmengine==0.10.7
  "${dl[@]}" mmpretrain==1.2.0 mmsegmentation==1.2.2 mmdet==3.3.0 ftfy regex 'setuptools<81' \
    wheel ninja addict termcolor yapf rich pyyaml packaging
  # What a torch image always holds, and what is too big to travel (64 MiB in all).
  ( cd "$WHEELS" && rm -f numpy-* scipy-* matplotlib-* pillow-* fonttools-* kiwisolver-* \
      contourpy-* opencv_python* )
  say "downloading the mmcv $MMCV_VERSION sdist"
  local c; c=$(mktemp); echo 'setuptools<81' > "$c"   # its setup.py imports pkg_resources
  PIP_CONSTRAINT=$c "${pip[@]}" download -q --no-deps --no-binary :all: "mmcv==$MMCV_VERSION" -d "$WHEELS"
  rm -f "$c"
  if [ -n "$PY_GIVEN" ]; then prebuild_mmcv; fi
  say "ready: $(du -sh "$WHEELS" | cut -f1) in $WHEELS:"
  ls -R "$WHEELS"
}

# An mmcv wheel with CUDA ops for ARCH against PY's torch, cached by versions (a CUDA build
# needs nvcc, not a GPU). The check uses it when the machine's torch and card match.
prebuild_mmcv() {
  command -v nvcc >/dev/null || die "--python given but nvcc is not on PATH"
  "$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' \
    || die "--python must be a Python 3.12 (the device's) with the device's torch"
  local torch_v key cache dest
  torch_v=$("$PY" -c 'import torch; print(torch.__version__)')
  key="torch$torch_v-sm${ARCH/./}"   # as the check names the card: sm90
  cache="${ISDA_MM_CACHE:-$HOME/.cache/isda_mm}/wheels/mmcv$MMCV_VERSION-py312-$key"
  dest="$WHEELS/mmcv/$key"
  if ! ls "$cache"/mmcv-*.whl >/dev/null 2>&1; then
    say "building mmcv $MMCV_VERSION with CUDA ops for sm_${ARCH/./} against torch $torch_v"
    build_mmcv 1 "$ARCH" "$cache"
  fi
  mkdir -p "$dest" && cp "$cache"/mmcv-*.whl "$dest/"
}

# build_mmcv CUDA(0|1) ARCH DEST: the sdist's wheel, built with PY; its setup.py imports
# pkg_resources, so the prepared setuptools<81 goes first on the path.
build_mmcv() {
  local src log tools jobs t0=$SECONDS
  tools=$(mktemp -d)
  "$PY" -m pip install -q --no-index --no-deps --target "$tools" "$WHEELS"/setuptools-*.whl
  if [ "$1" = 1 ]; then
    if [ -z "${CUDA_HOME:-}" ]; then   # where nvcc lies (torch takes /usr/local from a wrapper)
      command -v nvcc >/dev/null || die "a CUDA build needs nvcc on PATH"
      export CUDA_HOME; CUDA_HOME=$(dirname "$(nvcc -dryrun -c -x cu /dev/null 2>&1 \
        | sed -n 's/^#\$ _HERE_=//p')")
    fi
    if [ ! -f "$CUDA_HOME/include/cusparse.h" ]; then   # a toolkit without the math libraries:
      export CPATH   # torch's headers include them; its pip packages hold their headers
      CPATH=$("$PY" -c 'import glob, os.path as p, torch
print(":".join(glob.glob(p.join(p.dirname(p.dirname(torch.__file__)), "nvidia/*/include"))))'
      )${CPATH:+:$CPATH}
    fi
  fi
  src=$(mktemp -d)
  tar xzf "$WHEELS/mmcv-$MMCV_VERSION.tar.gz" -C "$src"
  src="$src/mmcv-$MMCV_VERSION"
  sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"   # torch >= 2.5 headers need C++20
  log="$src/build.log"
  jobs=$(nproc)
  say "compiling mmcv with $jobs jobs (log: $log)"
  # Linked without debug information: 26 MB instead of 108 MB (sm_90), a 6 MB wheel.
  if ! ( cd "$src" && export PYTHONPATH="$tools${PYTHONPATH:+:$PYTHONPATH}" MMCV_WITH_OPS=1 \
           LDFLAGS="-Wl,--strip-debug${LDFLAGS:+ $LDFLAGS}" FORCE_CUDA="$1" \
           TORCH_CUDA_ARCH_LIST="$2" MAX_JOBS="$jobs" \
         && "$PY" -m pip wheel -q --no-index --no-build-isolation --no-deps -w "$3" . ) >"$log" 2>&1
  then
    tail -30 "$log" >&2; die "the mmcv build failed (log: $log)"
  fi
  say "built $(ls "$3"/mmcv-*.whl) in $((SECONDS - t0)) s"
}

if [ "$MODE" = prepare ]; then prepare; exit 0; fi

# -------------------------------------------------------------------------------------- check
command -v "$PY" >/dev/null || die "no Python '$PY' (set --python)"
[ -f "$WHEELS/mmcv-$MMCV_VERSION.tar.gz" ] || die "no prepared wheels in $WHEELS: run --prepare first"
REPORT=${REPORT:-${OUT:+$OUT/}gpu_check_report.md}
REPORT="$(mkdir -p "$(dirname "$REPORT")" && cd "$(dirname "$REPORT")" && pwd)/$(basename "$REPORT")"
WORK=${WORK:-$(mktemp -d /tmp/gpu_check.XXXXXX)}
WORK=$(mkdir -p "$WORK/logs" && cd "$WORK" && pwd)
cd "$ROOT"
SITE="$WORK/site"
export PYTHONPATH="$SITE:$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 PIP_NO_INDEX=1
if [ -z "$DEVICE" ]; then
  DEVICE=$("$PY" -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')
fi
case "$DEVICE" in
  cuda) "$PY" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' \
          || die "--device cuda, but $PY's torch sees no CUDA device" ;;
  cpu) export CUDA_VISIBLE_DEVICES="" ;;   # the same steps on the CPU, whatever the machine has
  *) die "--device must be cuda or cpu, got '$DEVICE'" ;;
esac
# Each step has a time limit, so that the report is written inside a lease; a CPU is slower.
SCALE=1; [ "$DEVICE" = cpu ] && SCALE=4
STEPS="$WORK/steps.md" DETAILS="$WORK/details.md" FAILED=0
: >"$STEPS"; : >"$DETAILS"

write_report() {
  { echo "# GPU check: \`tools/gpu_check.sh --device $DEVICE\`"; echo
    cat "$WORK/header.md"; echo
    echo "| step | status | time (s) | figures |"; echo "|---|---|---|---|"
    cat "$STEPS"; echo
    cat "$DETAILS"
  } >"$REPORT.tmp" && mv "$REPORT.tmp" "$REPORT"
  if [ -n "${OUT:-}" ] && [ -d "$OUT" ]; then   # the logs, beside a report in $OUT
    tar czf "$OUT/gpu_check_logs.tgz" -C "$WORK" logs steps.md 2>/dev/null || true
  fi
}
# run_step NAME LIMIT CMD...: output in logs/NAME.log; sets STEP_RC and STEP_TIME.
run_step() {
  local name=$1 limit=$(($2 * SCALE)) t0=$SECONDS log="$WORK/logs/$1.log"
  shift 2
  say "step '$name' (at most $limit s; log $log)"
  STEP_RC=0
  timeout "$limit" "$@" >"$log" 2>&1 || STEP_RC=$?
  STEP_TIME=$((SECONDS - t0))
  tail -3 "$log" | sed 's/^/    /'
}
# row NAME FIGURES: the step's line in the table; a failed step's log tail below it.
row() {
  local status=ok log="$WORK/logs/$CURRENT.log"
  if [ "$STEP_RC" -ne 0 ]; then
    status="**FAILED** (exit $STEP_RC$([ "$STEP_RC" -eq 124 ] && echo ': over its time limit'))"
    FAILED=1
    { echo "### $CURRENT: failed"; echo; echo '```'; tail -40 "$log"; echo '```'; echo; } >>"$DETAILS"
  fi
  echo "| $1 | $status | $STEP_TIME | $2 |" >>"$STEPS"
  write_report
}

# 1. Install the wheels the machine lacks, then mmcv: the wheel prebuilt for this torch and
#    card, or one built from the sdist with the CUDA ops of the card found.
install_stack() {
  set -euo pipefail
  local wheels torch_v cap dir prebuilt="" from
  mapfile -t wheels < <("$PY" "$HERE/wheels.py" select "$WHEELS")
  echo "installing ${#wheels[@]} wheels into $SITE: ${wheels[*]##*/}"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "${wheels[@]}"
  read -r torch_v cap < <("$PY" -c 'import torch; c = torch.cuda.is_available()
print(torch.__version__, "sm%d%d" % torch.cuda.get_device_capability() if c else "cpu")')
  # Wheels are kept by torch version and card (sm90) or cpu (CPU ops only). A CPU takes any
  # for its torch; a card only its own.
  for dir in "$WHEELS"/mmcv/torch"$torch_v"-* "$BUILT"/torch"$torch_v"-*; do
    if [ -d "$dir" ] && { [ "$cap" = cpu ] || [ "${dir##*-}" = "$cap" ]; }; then prebuilt=$dir; fi
  done
  if [ -n "$prebuilt" ]; then
    from="prebuilt wheel ${prebuilt#"$ROOT"/}"
  else
    local cuda=0 arch="" t0=$SECONDS
    [ "$cap" != cpu ] && cuda=1 arch="${cap:2:${#cap}-3}.${cap: -1}"
    echo "no mmcv wheel prebuilt for torch $torch_v on $cap: building the sdist"
    prebuilt="$BUILT/torch$torch_v-$cap"
    build_mmcv $cuda "$arch" "$prebuilt"
    from="built from the sdist in $((SECONDS - t0)) s, CUDA ops: $cuda${arch:+ (sm_$arch)}"
    # Kept for the next run (a warm machine keeps ignored paths that are not carried), and
    # sent back with the report where it is small enough (16 MB) to travel.
    if [ -n "${OUT:-}" ] && [ "$(du -m "$prebuilt"/mmcv-*.whl | cut -f1)" -lt 16 ]; then
      cp "$prebuilt"/mmcv-*.whl "$OUT/"
    fi
  fi
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "$prebuilt"/mmcv-*.whl
  echo "mmcv: $from"
  "$PY" "$HERE/wheels.py" check
  # mmcv's compiled ops on the device: a CUDA build without this card's code fails here.
  (cd / && "$PY" - "$DEVICE" <<'PYEOF'
import sys, torch, mmcv, mmengine, mmpretrain, mmseg, mmdet, isda_mm  # noqa
from mmcv.ops import nms, roi_align
dev = sys.argv[1]
boxes = torch.tensor([[0., 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], device=dev)
keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7], device=dev), 0.5)[1]
assert keep.tolist() == [0, 2], keep
feats = torch.arange(64., device=dev).view(1, 1, 8, 8)
out = roi_align(feats, torch.tensor([[0., 0, 0, 4, 4]], device=dev), (2, 2), 1.0, 2)
assert out.device.type == dev and torch.isfinite(out).all(), out
print(f'versions: mmcv {mmcv.__version__}, mmengine {mmengine.__version__}, mmpretrain '
      f'{mmpretrain.__version__}, mmseg {mmseg.__version__}, mmdet {mmdet.__version__}, '
      f'mmcv.ops nms and roi_align ran on {dev}')
PYEOF
  )
}
export -f install_stack build_mmcv say die
export PY WHEELS SITE WORK HERE DEVICE MMCV_VERSION ROOT BUILT="$ROOT/.whl/gpu_check_built"

say "device $DEVICE, Python $PY, wheels $WHEELS, work $WORK, report $REPORT"
"$PY" - "$DEVICE" >"$WORK/header.md" <<'EOF' || die "$PY cannot import torch"
import os, platform, sys, time, torch
dev = sys.argv[1]
if dev == 'cuda':
    name = '%s (sm_%d%d)' % ((torch.cuda.get_device_name(), ) +
                             torch.cuda.get_device_capability())
else:
    lines = open('/proc/cpuinfo').read().splitlines()
    name = next((l.split(':', 1)[1].strip() for l in lines if l.startswith('model name')),
                platform.machine())
print(f'{time.strftime("%Y-%m-%d %H:%M %Z")}; {dev}: {name}, {os.cpu_count()} CPU cores; '
      f'Python {platform.python_version()}, torch {torch.__version__} (CUDA '
      f'{torch.version.cuda or "none"}, cuDNN {torch.backends.cudnn.version()}).')
EOF
write_report

CURRENT=install
run_step install 560 bash -c install_stack
row "install (wheels, mmcv, import check)" \
  "$(sed -n 's/^mmcv: /mmcv: /p; s/^versions: //p' "$WORK/logs/install.log" | paste -sd';' - | sed 's/;/; /g')"
if [ "$STEP_RC" -ne 0 ]; then say "the install failed, nothing else can run; report: $REPORT"; exit 1; fi

# 2. The device tests.
step_tests() {
  CURRENT=tests
  run_step tests 240 env ISDA_TEST_DEVICE="$DEVICE" "$PY" -m pytest tests/test_device.py -q \
    -p no:cacheprovider
  row "device tests (\`ISDA_TEST_DEVICE=$DEVICE pytest tests/test_device.py\`)" \
    "$(grep -E ' (passed|failed|error)' "$WORK/logs/tests.log" | tail -1 | tr -d '=' | xargs)"
}

# 3. The benchmark's core and heads tables (on a CPU: small core rows, one round).
step_benchmark() {
  local bench=(core heads --device "$DEVICE")
  [ "$DEVICE" = cuda ] || bench+=(--shapes 128x10x64:full 1024x19x64:diagonal --repeats 1)
  CURRENT=benchmark
  run_step benchmark 300 "$PY" tools/benchmark "${bench[@]}" --output "$WORK/benchmark.md"
  row "benchmark (\`python tools/benchmark ${bench[*]}\`)" \
    "$(grep -h '^total' "$WORK/logs/benchmark.log" || true)"
  if [ -f "$WORK/benchmark.md" ]; then
    { echo "## Benchmark"; echo; cat "$WORK/benchmark.md"; echo; } >>"$DETAILS"
  fi
}

# 4. A few training iterations of one ISDA config per toolkit (with AMP on a GPU: mmengine's
#    AmpOptimWrapper refuses a CPU).
step_train() {
  local amp=() table="$WORK/train.md" name config summary
  [ "$DEVICE" = cuda ] && amp=(--amp)
  if ! "$PY" "$HERE/training.py" prepare "$WORK/train" --iters "$ITERS" >"$WORK/train.tsv"; then
    echo "| training data (\`training.py prepare\`) | **FAILED** | | |" >>"$STEPS"; FAILED=1
  fi
  { echo "| config | iterations logged | first loss | last loss | lambda | ISDA statistics (samples) | |"
    echo "|---|---|---|---|---|---|---|"; } >"$table"
  while IFS=$'\t' read -r name config; do
    CURRENT="train-$name"
    run_step "$CURRENT" 180 "$PY" tools/train.py "$config" --work-dir "$WORK/train/$name" "${amp[@]}"
    if ! summary=$("$PY" "$HERE/training.py" summary "$WORK/train/$name"); then
      [ "$STEP_RC" -ne 0 ] || STEP_RC=1
    fi
    echo "| $(sed -n "s|^_base_ = '$ROOT/configs/\(.*\)'|\1|p" "$config") $summary" >>"$table"
    row "train $name (\`tools/train.py${amp[*]:+ --amp}\`, $ITERS iterations)" \
      "$(echo "$summary" | awk -F'|' '{print "loss" $3 "->" $4}')"
  done <"$WORK/train.tsv"
  { echo "## Training"; echo; cat "$table"; echo; } >>"$DETAILS"
  write_report
}

for step in ${ONLY//,/ }; do
  case "$step" in
    tests|benchmark|train) "step_$step" ;;
    *) die "--only: unknown step '$step' (tests, benchmark, train)" ;;
  esac
done

say "report: $REPORT"
cat "$REPORT"
exit $FAILED
