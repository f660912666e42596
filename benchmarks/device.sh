#!/usr/bin/env bash
# One prepared run on a machine with an NVIDIA GPU: install the CUDA build of JAX, install the package, run the
# tests on the GPU and every benchmark in benchmarks/ with small presets, write everything to one folder.
#
#   bash benchmarks/device.sh                 # on the GPU machine, from the repository root (about 6-9 minutes)
#   bash benchmarks/device.sh --cpu           # the same steps on CPU (JAX_PLATFORMS=cpu, no CUDA install)
#   bash benchmarks/device.sh --cpu --tiny    # ... with the smallest presets (what the slow unit test runs)
#   bash benchmarks/device.sh --dry-run       # print the steps and their time limits, run nothing
#
# Output folder: ${OUT:-results/device}:
#   summary.txt / summary.jsonl   one line per step: name, status (ok / failed / timeout / skipped), exit code, seconds
#   env.json                      backend, devices, versions of jax / jaxlib / sparsejax, nvidia-smi, the CUDA install
#   bench_<name>.jsonl            the JSON lines each benchmark printed (its full output in bench_<name>.log)
#   tests.log, tests.json         the pytest run on the device (counts of passed / failed / ...)
#   install.log                   the pip output
#
# Robustness: set -u; every step runs under `timeout` with its own limit, cut to the time left before the overall
# deadline (DEADLINE seconds, default 570: the run must fit in 10 minutes on one H200); a step that fails or times
# out is recorded and the script goes on; the exit status is 0 when every step was ok, 1 otherwise (the summary says
# which). The CUDA build: nothing is installed when JAX already sees a GPU; otherwise, when PyPI answers (or a local
# wheelhouse is given in WHEELS), it is tried as jax[cuda12] pinned to the installed jax version, then jax[cuda13]
# pinned, then jax[cuda12] unpinned; if none works (or PyPI is unreachable, as on a machine without network) the
# script says so in env.json / summary.txt and runs on whatever backend JAX finds (the figures are then CPU figures,
# labelled so in env.json, and the exit status is 1).
#
# Environment: OUT (output folder), DEADLINE (seconds), DEVICE_TESTS ("core", the default subset, or "all": the
# whole default suite), PYTEST_WORKERS (default 4; each worker is one process on the one GPU, memory not
# preallocated), WHEELS (a folder of wheels to install the CUDA build from, offline), PIP_TIMEOUT (seconds per pip
# call, default 200;
# after a pip call that times out no other spelling is tried).
set -u

# the whole script is one function, parsed before it runs: editing the file during a run cannot break it
main() {

MODE=gpu
TINY=0
DRY=0
for arg in "$@"; do
  case "$arg" in
    --cpu) MODE=cpu ;;
    --tiny) TINY=1 ;;
    --dry-run) DRY=1 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "device.sh: unknown option $arg (use --cpu, --tiny, --dry-run)" >&2; exit 2 ;;
  esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2
OUT="${OUT:-results/device}"
mkdir -p "$OUT" || { echo "device.sh: cannot create $OUT" >&2; exit 2; }
OUT="$(cd "$OUT" && pwd)"
DEADLINE="${DEADLINE:-570}"
PIP_TIMEOUT="${PIP_TIMEOUT:-200}"
PYTEST_WORKERS="${PYTEST_WORKERS:-4}"
[ "$TINY" = 1 ] && PYTEST_WORKERS="${PYTEST_WORKERS_TINY:-0}"
DEVICE_TESTS="${DEVICE_TESTS:-core}"
PY="${PYTHON:-python}"
: > "$OUT/summary.txt"
: > "$OUT/summary.jsonl"
FAILED=0

export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export XLA_PYTHON_CLIENT_PREALLOCATE=false      # several processes (pytest workers) share the one GPU
export PYTHONUNBUFFERED=1
export TQDM_DISABLE=1
if [ "$MODE" = cpu ]; then
  export JAX_PLATFORMS=cpu
fi

left() { echo $(( DEADLINE - SECONDS )); }

# run_step NAME LIMIT LOGFILE CMD...: run CMD under timeout (LIMIT cut to the time left), log its output, record it
run_step() {
  local name="$1" limit="$2" log="$3"
  shift 3
  local remain
  remain=$(left)
  if [ "$limit" -gt "$remain" ]; then limit="$remain"; fi
  if [ "$DRY" = 1 ]; then
    echo "[dry-run] $name (limit ${limit}s): $*"
    printf '%-28s %-8s rc=%-4s %6ss  %s\n' "$name" "dry-run" "-" 0 "$(printf '%s ' "$@" | tr '\n' ' ' | tr -s ' ' | cut -c1-200)" >> "$OUT/summary.txt"
    printf '{"step": "%s", "status": "dry-run", "rc": null, "seconds": 0, "limit_s": %d}\n' "$name" "$limit" \
      >> "$OUT/summary.jsonl"
    return 0
  fi
  local status rc t0 dt desc
  desc="$(printf '%s ' "$@" | tr '\n' ' ' | tr -s ' ' | cut -c1-200)"
  if [ "$limit" -lt 5 ]; then
    status=skipped; rc=-1; dt=0
    echo "device.sh: $name skipped: the ${DEADLINE}s deadline is reached" | tee -a "$log" >&2
  else
    echo "== $name (limit ${limit}s): $*" >&2
    t0=$SECONDS
    timeout --signal=TERM --kill-after=10 "$limit" "$@" >> "$log" 2>&1
    rc=$?
    dt=$(( SECONDS - t0 ))
    if [ "$rc" = 0 ]; then status=ok
    elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then status=timeout
    else status=failed
    fi
  fi
  [ "$status" = ok ] || FAILED=1
  printf '%-28s %-8s rc=%-4s %6ss  %s\n' "$name" "$status" "$rc" "$dt" "$desc" >> "$OUT/summary.txt"
  printf '{"step": "%s", "status": "%s", "rc": %d, "seconds": %d, "limit_s": %d, "log": "%s"}\n' \
    "$name" "$status" "$rc" "$dt" "$limit" "$(basename "$log")" >> "$OUT/summary.jsonl"
  echo "   -> $status (rc $rc, ${dt}s)" >&2
  return 0
}

# ------------------------------------------------------------------ 1. CUDA build of JAX, the package
CUDA_NOTE="not attempted (--cpu)"
[ "$DRY" = 1 ] && CUDA_NOTE="not attempted (--dry-run)"
if [ "$MODE" = gpu ] && [ "$DRY" = 1 ]; then
  echo "[dry-run] CUDA JAX: none if JAX already sees a GPU; else jax[cuda12]==<installed jax>, jax[cuda13]==..., jax[cuda12]"
elif [ "$MODE" = gpu ]; then
  JAXV="$("$PY" -c 'import jax; print(jax.__version__)' 2>/dev/null || echo "")"
  if timeout 120 "$PY" -c 'import jax, sys; sys.exit(jax.default_backend() != "gpu")' >> "$OUT/install.log" 2>&1; then
    CUDA_NOTE="already installed: JAX $JAXV sees a GPU (nothing installed)"
  elif [ -n "${WHEELS:-}" ] || timeout 15 "$PY" -c 'import urllib.request as u; u.urlopen("https://pypi.org/simple/jax/", timeout=8)' \
       >> "$OUT/install.log" 2>&1; then
    CUDA_NOTE="failed: no CUDA build of JAX could be installed (see install.log); running on the backend JAX finds"
    local src=()
    [ -n "${WHEELS:-}" ] && src=(--no-index --find-links "$WHEELS")       # a local wheelhouse, for offline machines
    for spec in ${JAXV:+"jax[cuda12]==$JAXV"} ${JAXV:+"jax[cuda13]==$JAXV"} "jax[cuda12]"; do
      run_step "install $spec" "$PIP_TIMEOUT" "$OUT/install.log" \
        "$PY" -m pip install -q --disable-pip-version-check --timeout 20 --retries 1 ${src[@]+"${src[@]}"} "$spec"
      if tail -n 1 "$OUT/summary.jsonl" | grep -q '"status": "ok"' \
         && "$PY" -c 'import jax, sys; sys.exit(jax.default_backend() != "gpu")' >> "$OUT/install.log" 2>&1; then
        CUDA_NOTE="installed $spec"
        break
      fi
      # a download that ran out of time will not do better with another spelling: keep the time for the rest
      tail -n 1 "$OUT/summary.jsonl" | grep -q '"status": "timeout"' && break
    done
  else
    CUDA_NOTE="failed: PyPI is unreachable from this machine and JAX sees no GPU (no WHEELS folder given); running on the backend JAX finds"
  fi
  if [[ "$CUDA_NOTE" == failed* ]]; then
    FAILED=1
    echo "device.sh: $CUDA_NOTE" | tee -a "$OUT/summary.txt" >&2
  fi
fi
# editable install (build isolation needs PyPI for setuptools; without it the local setuptools must read
# pyproject.toml); if neither works the checkout is used through PYTHONPATH, which is set above: the step is ok
# when sparsejax imports from this checkout
run_step "install sparsejax" 150 "$OUT/install.log" bash -c '
  "$0" -m pip install -q --disable-pip-version-check --timeout 10 --retries 0 --no-deps -e "$1" \
  || "$0" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e "$1" \
  || echo "device.sh: pip could not install the package; using the checkout through PYTHONPATH"
  "$0" -c "import sparsejax, sys, os; print(\"sparsejax from\", os.path.dirname(sparsejax.__file__)); \
sys.exit(not os.path.realpath(sparsejax.__file__).startswith(os.path.realpath(sys.argv[1])))" "$1"' "$PY" "$ROOT"

# ------------------------------------------------------------------ 2. what JAX sees
if [ "$DRY" = 0 ]; then
  CUDA_NOTE="$CUDA_NOTE" timeout 120 "$PY" - > "$OUT/env.json" 2>> "$OUT/install.log" <<'EOF'
import json, os, shutil, subprocess
import jax, jaxlib
info = {"backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()], "jax": jax.__version__,
        "jaxlib": jaxlib.__version__, "cuda_install": os.environ.get("CUDA_NOTE", "")}
try:
    import sparsejax
    info["sparsejax"] = sparsejax.__version__
except Exception as e:  # noqa: BLE001
    info["sparsejax"] = f"import failed: {e}"
if shutil.which("nvidia-smi"):
    q = "name,memory.total,driver_version"
    info["nvidia_smi"] = subprocess.run(["nvidia-smi", f"--query-gpu={q}", "--format=csv,noheader"],
                                        capture_output=True, text=True).stdout.strip()
print(json.dumps(info))
EOF
  cat "$OUT/env.json" >&2
  if [ "$MODE" = gpu ] && ! grep -q '"backend": "gpu"' "$OUT/env.json"; then
    echo "device.sh: WARNING: JAX does not see a GPU; the figures below are NOT GPU figures" \
      | tee -a "$OUT/summary.txt" >&2
    FAILED=1
  fi
fi

# ------------------------------------------------------------------ 3. tests on the device
if [ "$TINY" = 1 ]; then
  TESTS=(tests/test_streaming.py::test_chunks_equal_one_shot_encode_omp
         tests/test_streaming.py::test_bad_input_is_named_before_computing)
  TEST_LIMIT=150
elif [ "$DEVICE_TESTS" = all ]; then
  TESTS=(tests sparsejax)
  TEST_LIMIT=330
else
  # the numerical core: shrinkage, the iteration driver, operators, pursuits, convolution, learning, streaming
  TESTS=(tests/test_shrink.py tests/test_solve.py tests/test_operators.py tests/test_dictionary.py tests/pursuit
         tests/conv tests/learn tests/test_streaming.py)
  TEST_LIMIT=180
fi
run_step "pytest" "$TEST_LIMIT" "$OUT/tests.log" \
  "$PY" -m pytest -q -p no:cacheprovider -n "$PYTEST_WORKERS" --maxfail=10 --durations=15 \
  -o addopts="-m 'not slow'" "${TESTS[@]}"
if [ "$DRY" = 0 ]; then
  "$PY" - "$OUT/tests.log" > "$OUT/tests.json" <<'EOF'
import json, re, sys
text = open(sys.argv[1], errors="replace").read()
counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)", text)}
failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", text, flags=re.M)
print(json.dumps({"step": "pytest", "counts": counts, "failed": failed[:50]}))
EOF
fi

# ------------------------------------------------------------------ 4. every benchmark, small presets
# preset NAME: the arguments of a small run (seconds to a minute on a GPU); unknown (new) benchmarks run with
# --quick when their --help offers it, else with their defaults
preset() {
  local name="$1"
  if [ "$TINY" = 1 ]; then
    case "$name" in
      dense) echo "--signals 500 --scaling 500,1000 --repeat 1 --omp-scaling 1000,2000 --omp-repeat 1" ;;
      omp_limits) echo "--signals 500 --repeat 1 --scaling 1000,2000" ;;
      streaming_memory) echo "--sizes 2000,4000 --chunk-size 1024" ;;
      conv) echo "--batch 8 --repeat 1 --rounds 1" ;;
      dictlearn) echo "--methods mod --sklearn-epochs 1" ;;
      imaging_defaults) echo "--size 32 --iters 10" ;;
      unfolded) echo "--quick --T 1 --batches 16 --repeat 1" ;;
      layered) echo "--quick --repeat 1" ;;
      distributed_scaling) echo "--quick --processes 1,2 --repeat 1" ;;
      ksvd_denoise_vs_sklearn) echo "--size 64 --iters 2" ;;
      *) quick_or_default "$name" ;;
    esac
    return
  fi
  case "$name" in
    dense) echo "--signals 10000 --scaling 10000,100000 --repeat 2 --omp-scaling 10000,100000,1000000 --omp-repeat 3" ;;
    omp_limits) echo "--signals 10000 --repeat 3 --scaling 10000,100000,1000000" ;;
    streaming_memory) echo "--sizes 100000,1000000" ;;
    conv) echo "--batch 256 --repeat 3 --rounds 2" ;;
    dictlearn) echo "--sklearn-epochs 5" ;;
    imaging_defaults) echo "--size 128 --iters 100" ;;
    distributed_scaling) echo "--quick --repeat 2" ;;
    ksvd_denoise_vs_sklearn) echo "--size 128 --iters 5" ;;
    *) quick_or_default "$name" ;;
  esac
}
quick_or_default() {
  if [ "$DRY" = 1 ]; then echo "[--quick if its --help offers it]"; return; fi
  if timeout 60 "$PY" -m "benchmarks.$1" --help 2>/dev/null | grep -q -- "--quick"; then echo "--quick"; fi
}

BENCH_LIMIT=50
[ "$TINY" = 1 ] && BENCH_LIMIT=120
for f in "$ROOT"/benchmarks/*.py; do
  name="$(basename "$f" .py)"
  case "$name" in _*|__init__) continue ;; esac
  args="$(preset "$name")"
  log="$OUT/bench_$name.log"
  : > "$log"
  # shellcheck disable=SC2086  (the preset is a list of words)
  run_step "bench $name" "$BENCH_LIMIT" "$log" "$PY" -m "benchmarks.$name" $args
  [ "$DRY" = 1 ] || grep -E '^\{' "$log" > "$OUT/bench_$name.jsonl" || true
done

# ------------------------------------------------------------------ 5. summary
{
  echo "---"
  echo "mode $MODE$([ "$TINY" = 1 ] && echo ' (tiny)'), ${SECONDS}s of ${DEADLINE}s, $(grep -c '"status": "ok"' "$OUT/summary.jsonl") ok of $(wc -l < "$OUT/summary.jsonl") steps"
  echo "cuda: $CUDA_NOTE"
} >> "$OUT/summary.txt"
cat "$OUT/summary.txt" >&2
exit "$FAILED"
}

main "$@"
exit $?
