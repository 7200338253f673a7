#!/usr/bin/env bash
# GPU check of a `--features cuda` build, on a machine with an NVIDIA GPU (driver >= 580, CUDA 13.0)
# and CUDA 13 user-space libraries (PyTorch's pip wheels or a toolkit), but no Rust toolchain and no
# network. It runs from a folder made by scripts/pack-gpu-check.sh, which holds the executables, the
# experiments and ablations, and the few CUDA headers that dfdx's run-time-compiled kernels include.
#
# Steps, most important first (each under `timeout`, all within F2C_GPU_CHECK_BUDGET seconds,
# default 480: a step gets at most what is left, and none starts with under 10 s left; a failing
# step does not stop the next):
#   preflight       GPU, driver, libraries: every shared library and driver symbol the executables need
#   nvrtc-headers   the headers at the paths baked into the binary compile a kernel with NVRTC
#   cuda-agreement  tests/suite cuda_agreement:: --include-ignored --test-threads=1 (CPU vs GPU
#                   agreement; F2C_REQUIRE_GPU=1, so a GPU that cannot be opened fails it)
#   train-<name>    f2c train experiments/<name>.ron --device cuda:0, for <name> in F2C_GPU_TRAIN
#   torch-peer      python3 torch_heads.py --device cuda at the bench's sizes (PyTorch's head steps)
#   bench           f2c bench --device cuda:0 $F2C_GPU_BENCH_ARGS --peer <torch-peer's file>: head
#                   steps side by side with PyTorch's, whole training steps (time and host↔device
#                   bytes) at every size, into results/gpu/bench/ (rewritten after every case: a
#                   bench stopped by its limit keeps the cases it finished)
#   ablate-gpu      f2c ablate ablations/gpu.ron (the same runs on the GPU and on this CPU)
#   scale-gpu       f2c ablate ablations/scale-gpu.ron (the scale study's seed 1 on the GPU,
#                   cheapest method first; runs that finish are kept, the rest are named by --dry-run)
#   default-gpu     f2c ablate ablations/default.ron with the base experiment on the GPU (its
#                   wall time per run, `main` first; what the limit leaves is left)
#   train-10m       f2c train experiments/scale-10m.ron --device cuda:0 (F²C at 10⁷ identities)
#   bench-resident  f2c bench at 10⁶ identities with the training set kept in GPU memory
#                   (--inputs resident: whole steps that upload row indices instead of inputs)
#   train-orl-cnn   f2c train experiments/orl-f2c.ron --device cuda:0 (the tiny CNN on ORL faces)
#   unit-cuda       the library's unit tests whose names contain `cuda`, ignored ones included
#   bench-d512      f2c bench at 10⁷ identities with D 512, head steps only (device memory per head)
# A step whose executable or input is not in the pack is SKIPPED, not failed.
#
# Why the header paths: dfdx 0.13 compiles a few kernels with NVRTC on first use (concat and stack
# backward, reshape of a non-contiguous tensor, concat_along, to_dtype), with include paths fixed at
# build time: the build machine's CUDA include folder (for cuda_fp16.h) and dfdx's build-script
# OUT_DIR (for cuda_utils.cuh). This script recreates both paths (pack's baked-paths.txt), preferring
# this machine's own CUDA include folder, so that those kernels compile here. It needs to be able to
# create those folders (root on the GPU machines).
#
# Usage: gpu-check.sh [OUTPUT_DIR]      (default: $OUT, else ./gpu-check-out)
# Output: OUTPUT_DIR/summary.txt (one line per step), OUTPUT_DIR/gpu-check.log (every step's output),
#         OUTPUT_DIR/results.tar.gz (step logs and whatever the runs wrote). Three files, so that
#         the device tool's eight-file limit on returned files is never hit.
# Environment: F2C_GPU_CHECK_BUDGET (s), F2C_GPU_TRAIN (default "fc"), F2C_GPU_BENCH_ARGS,
#              F2C_GPU_DEVICE (default cuda:0), F2C_GPU_ONLY (step names, space-separated: run
#              only these, as a rerun of what a first call did not finish; preflight always runs).
set -uo pipefail # not -e: a failed step is recorded and the next one runs

pack=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# preflight: what the executables need, and whether this machine has it.
preflight() {
    echo "pack: $pack"
    cat "$pack/MANIFEST.txt" 2>/dev/null
    echo
    nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv || echo "nvidia-smi failed"
    echo
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    local bad=0 f
    for f in "$pack"/bin/* "$pack"/tests/*; do
        [[ -f $f ]] || continue
        echo "--- ldd $(basename "$f")"
        ldd "$f" | grep -E 'cuda|cublas|curand|nvrtc|not found'
        if ldd "$f" | grep -q 'not found'; then bad=1; fi
    done
    python3 - "$pack/needed-symbols.txt" <<'EOF' || bad=1
# Binds each CUDA library and looks up every symbol the executables import from them, so that a
# driver or library too old (or too new) shows here by name rather than as a loader error later.
import ctypes, sys
libs = {}
for soname in ["libcuda.so.1", "libnvrtc.so.13", "libcublas.so.13", "libcublasLt.so.13", "libcurand.so.10"]:
    try:
        libs[soname] = ctypes.CDLL(soname)
        print(f"loaded {soname}")
    except OSError as e:
        print(f"MISSING {soname}: {e}")
cuda = libs.get("libcuda.so.1")
if cuda:
    v = ctypes.c_int()
    cuda.cuDriverGetVersion(ctypes.byref(v))
    print(f"driver supports CUDA {v.value // 1000}.{v.value % 1000 // 10}")
try:
    names = [l.strip() for l in open(sys.argv[1]) if l.strip()]
except OSError:
    names = []
missing = [n for n in names if not any(hasattr(l, n) for l in libs.values())]
print(f"{len(names) - len(missing)} of {len(names)} imported CUDA symbols found")
for n in missing:
    print(f"MISSING symbol {n}")
sys.exit(1 if missing or len(libs) < 5 else 0)
EOF
    return $bad
}

# Recreates the include paths baked into the binary (see the header comment).
setup_headers() {
    local kind path src
    [[ -f $pack/baked-paths.txt ]] || { note "no baked-paths.txt in the pack; NVRTC kernels may fail"; return; }
    while read -r kind path; do
        [[ -n $path ]] || continue
        case $kind in
            include)
                if [[ -f $path/cuda_fp16.h ]]; then
                    note "headers: $path already holds cuda_fp16.h"
                    continue
                fi
                # This machine's own headers match its NVRTC; the packed ones are the fallback.
                src=${cuda_includes[0]:-$pack/cuda-include}
                if [[ ! -e $path ]] && mkdir -p "$(dirname "$path")" 2>/dev/null && ln -s "$src" "$path" 2>/dev/null; then
                    note "headers: linked $path -> $src"
                elif mkdir -p "$path" 2>/dev/null && cp -r "$pack/cuda-include/." "$path/"; then
                    note "headers: copied the packed CUDA headers into $path"
                else
                    note "headers: cannot create $path; the NVRTC kernels (concat, stack, reshape, to_dtype) will fail"
                fi
                ;;
            out)
                if mkdir -p "$path" 2>/dev/null && cp "$pack"/dfdx-out/*.cuh "$path/"; then
                    note "headers: dfdx's .cuh files in $path"
                else
                    note "headers: cannot create $path; reshape and concat_along kernels will fail"
                fi
                ;;
        esac
    done <"$pack/baked-paths.txt"
}

# Compiles, with this machine's NVRTC and the baked include paths, a kernel like dfdx's to_dtype
# and reshape kernels: the cheapest proof that the header set-up works, apart from f2c's own code.
nvrtc_headers() {
    mapfile -t incs < <(awk '{print $2}' "$pack/baked-paths.txt")
    python3 - "${incs[@]}" <<'EOF'
import ctypes, sys
nvrtc = ctypes.CDLL("libnvrtc.so.13")
src = b'''
#include "cuda_fp16.h"
#include "cuda_utils.cuh"
extern "C" __global__ void k(const size_t n, const float *inp, __half *out) {
    for (unsigned int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) { out[i] = inp[i]; }
}'''
prog = ctypes.c_void_p()
assert nvrtc.nvrtcCreateProgram(ctypes.byref(prog), src, b"check.cu", 0, None, None) == 0
opts = [b"--gpu-architecture=sm_90"] + [b"-I" + p.encode() for p in sys.argv[1:]]
rc = nvrtc.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
n = ctypes.c_size_t()
nvrtc.nvrtcGetProgramLogSize(prog, ctypes.byref(n))
log = ctypes.create_string_buffer(n.value)
nvrtc.nvrtcGetProgramLog(prog, log)
print("options:", [o.decode() for o in opts])
print("nvrtc result:", rc, log.value.decode())
sys.exit(0 if rc == 0 else 1)
EOF
}

# `gpu-check.sh --internal FUNCTION`: how `step` runs the checks above under `timeout`, which
# cannot run a shell function itself.
if [[ ${1:-} == --internal ]]; then
    "$2"
    exit
fi

out=${1:-${OUT:-$PWD/gpu-check-out}}
mkdir -p "$out"
out=$(cd "$out" && pwd)
budget=${F2C_GPU_CHECK_BUDGET:-480}
device=${F2C_GPU_DEVICE:-cuda:0}
start=$SECONDS

work=$(mktemp -d "${TMPDIR:-/tmp}/f2c-gpu-check.XXXXXX")
logs=$work/logs
mkdir -p "$logs" "$work/run"
main_log=$out/gpu-check.log
summary=$out/summary.txt
: >"$main_log"
statuses=()

note() { echo "gpu-check: $*" | tee -a "$main_log"; }

# --- libraries ---------------------------------------------------------------------------------
# PyTorch's wheels put CUDA 13 libraries in site-packages/nvidia/cu13/lib (CUDA 12 ones in
# site-packages/nvidia/<lib>/lib); drivers in containers often live in /usr/local/nvidia.
site_dirs() {
    local py
    for py in python3 python; do
        command -v "$py" >/dev/null 2>&1 || continue
        "$py" - <<'EOF' 2>/dev/null
import site, sys
dirs = list(getattr(site, "getsitepackages", lambda: [])()) + [site.getusersitepackages()] + sys.path
print("\n".join(d for d in dirs if d.endswith("-packages")))
EOF
    done
    ls -d /usr/local/lib/python3*/*-packages /usr/lib/python3*/dist-packages /opt/conda/lib/python3*/site-packages \
        /root/.local/lib/python3*/site-packages /opt/*/lib/python3*/site-packages 2>/dev/null
}
lib_dirs=()
add_dir() {
    local d=$1 e
    [[ -d $d ]] || return 0
    for e in "${lib_dirs[@]}"; do [[ $e == "$d" ]] && return 0; done
    lib_dirs+=("$d")
}
mapfile -t sites < <(site_dirs | awk '!seen[$0]++')
for s in "${sites[@]}"; do add_dir "$s/nvidia/cu13/lib"; done # CUDA 13 first: libcurand.so.10 exists in both
for s in "${sites[@]}"; do
    for d in "$s"/nvidia/*/lib; do add_dir "$d"; done
done
for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
    /usr/local/cuda-13*/lib64; do # the loader searches /usr/lib/x86_64-linux-gnu itself
    add_dir "$d"
done
ld_extra=$(IFS=:; echo "${lib_dirs[*]}")
export LD_LIBRARY_PATH=$ld_extra${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export RUST_BACKTRACE=1
# The records name the packed commit: there is no checkout here for `git describe`.
F2C_CODE_REVISION=$(awk '$1 == "commit:" {print $2; exit}' "$pack/MANIFEST.txt" 2>/dev/null)
export F2C_CODE_REVISION=${F2C_CODE_REVISION:+$F2C_CODE_REVISION (packed)}
cuda_includes=()
for s in "${sites[@]}"; do [[ -f $s/nvidia/cu13/include/cuda_fp16.h ]] && cuda_includes+=("$s/nvidia/cu13/include"); done
for d in /usr/local/cuda/include /usr/local/cuda-13*/include; do [[ -f $d/cuda_fp16.h ]] && cuda_includes+=("$d"); done

# --- steps -------------------------------------------------------------------------------------
# step NAME LIMIT_S COMMAND...: runs COMMAND in the work folder under `timeout`, with LIMIT_S cut to
# what is left of the budget, and records ok / FAIL(rc) / TIMEOUT / SKIPPED.
step() {
    local name=$1 limit=$2
    shift 2
    if [[ -n ${F2C_GPU_ONLY:-} && $name != preflight && " $F2C_GPU_ONLY " != *" $name "* ]]; then
        statuses+=("$name SKIPPED (not in F2C_GPU_ONLY)")
        return
    fi
    local left=$((budget - (SECONDS - start)))
    if ((left < 10)); then
        statuses+=("$name SKIPPED (budget of ${budget}s spent)")
        note "$name: skipped, budget spent"
        return
    fi
    ((limit > left)) && limit=$left
    note "$name: start (limit ${limit}s): $*"
    local t0=$SECONDS rc
    (cd "$work/run" && timeout --kill-after=10 "$limit" "$@") >"$logs/$name.log" 2>&1
    rc=$?
    local took=$((SECONDS - t0)) status
    case $rc in
        0) status="ok" ;;
        124 | 137) status="TIMEOUT after ${limit}s" ;;
        *) status="FAIL (exit $rc)" ;;
    esac
    statuses+=("$name $status ${took}s")
    {
        echo "===== $name: $status, ${took}s ====="
        tail -c 200000 "$logs/$name.log" # a runaway log must not swamp the rest
        echo
    } >>"$main_log"
    note "$name: $status (${took}s)"
}
skip() {
    statuses+=("$1 SKIPPED ($2)")
    note "$1: skipped: $2"
}

note "pack $pack, output $out, budget ${budget}s, device $device"
note "library folders: ${ld_extra:-none found}"
note "CUDA include folders here: ${cuda_includes[*]:-none}"
# The pack's executables come gzipped; unpacked in place once (a second run finds them unpacked).
for gz in "$pack"/bin/*.gz "$pack"/tests/*.gz; do
    [[ -f $gz ]] || continue
    if gunzip -f "$gz" 2>>"$main_log"; then chmod +x "${gz%.gz}"; else note "could not unpack $gz"; fi
done
cp -r "$pack/experiments" "$pack/ablations" "$work/run/" 2>/dev/null
[[ -d $pack/data ]] && cp -r "$pack/data" "$work/run/"
# A rerun on a fresh machine picks up where an earlier call stopped: the run records it brought back,
# laid out as its run folder (results/<matrix>/runs/, default-gpu/results/default/runs/), put in
# the pack's prior/ before packing; ablate skips the runs they record.
if [[ -d $pack/prior ]]; then
    cp -r "$pack/prior/." "$work/run/"
    note "prior: $(find "$pack/prior" -name '*.json' | wc -l) run records of an earlier call"
fi
setup_headers

step preflight 40 bash "$pack/gpu-check.sh" --internal preflight
if command -v python3 >/dev/null; then
    step nvrtc-headers 30 bash "$pack/gpu-check.sh" --internal nvrtc_headers
else
    skip nvrtc-headers "no python3"
fi

f2c=$pack/bin/f2c
# f2c_step NAME LIMIT_S INPUT ARGS...: `f2c ARGS...` as step NAME, skipped when bin/f2c or INPUT
# (a file or folder of the pack, or "-") is missing.
f2c_step() {
    local name=$1 limit=$2 input=$3
    shift 3
    if [[ ! -x $f2c ]]; then
        skip "$name" "bin/f2c not in the pack"
    elif [[ $input != - && ! -e $pack/$input ]]; then
        skip "$name" "$input not in the pack"
    else
        step "$name" "$limit" "$f2c" "$@"
    fi
}
if [[ -x $pack/tests/suite ]]; then
    # On this machine a test that cannot open the GPU must fail, not skip.
    step cuda-agreement 150 env F2C_REQUIRE_GPU=1 "$pack/tests/suite" cuda_agreement:: --include-ignored --test-threads=1
else
    skip cuda-agreement "tests/suite (the integration tests) not in the pack"
fi
for name in ${F2C_GPU_TRAIN:-fc}; do
    f2c_step "train-$name" 75 "experiments/$name.ron" train "experiments/$name.ron" --device "$device" --quiet
done
sizes=${F2C_GPU_BENCH_SIZES:-100000,1000000,10000000}
peer_args=()
if [[ ! -f $pack/torch_heads.py ]]; then
    skip torch-peer "torch_heads.py not in the pack"
elif ! python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
    skip torch-peer "no PyTorch with CUDA here"
else
    mkdir -p "$work/run/results/gpu/bench"
    step torch-peer 90 python3 "$pack/torch_heads.py" --device cuda --classes "$sizes" --steps 5 --warmup 2 \
        --out results/gpu/bench/torch_peer.jsonl
    [[ -s $work/run/results/gpu/bench/torch_peer.jsonl ]] && peer_args=(--peer results/gpu/bench/torch_peer.jsonl)
fi
# shellcheck disable=SC2086 # the extra arguments are meant to split
f2c_step bench 150 - bench --device "$device" --classes "$sizes" --out results/gpu/bench \
    ${F2C_GPU_BENCH_ARGS:---steps 3 --warmup 1} "${peer_args[@]}"
f2c_step ablate-gpu 120 ablations/gpu.ron ablate ablations/gpu.ron --no-tables --quiet
f2c_step scale-gpu 200 ablations/scale-gpu.ron ablate ablations/scale-gpu.ron --no-tables --quiet
f2c_step scale-gpu-left 10 ablations/scale-gpu.ron ablate ablations/scale-gpu.ron --dry-run
# The default matrix on the GPU, for its wall time there: a copy of the run folder whose base
# experiment (every experiment derives from experiments/base.ron) trains on Cuda(0). Its runs come
# in the matrix's order, `main` first; those finished within the limit are set beside the CPU's
# recorded wall times of the same runs (results/default), the rest are left.
if [[ -x $f2c && -f $pack/ablations/default.ron && -f $pack/experiments/base.ron ]]; then
    mkdir -p "$work/run/default-gpu"
    cp -r "$pack/experiments" "$pack/ablations" "$work/run/default-gpu/"
    sed -i 's/^\([[:space:]]*\)device: Cpu,/\1device: Cuda(0),/' "$work/run/default-gpu/experiments/base.ron"
    if grep -q 'device: Cuda(0),' "$work/run/default-gpu/experiments/base.ron"; then
        step default-gpu 90 bash -c "cd default-gpu && exec \"$f2c\" ablate ablations/default.ron --no-tables --quiet"
    else
        skip default-gpu "experiments/base.ron has no 'device: Cpu,' line to switch"
    fi
else
    skip default-gpu "bin/f2c, ablations/default.ron or experiments/base.ron not in the pack"
fi
f2c_step train-10m 90 experiments/scale-10m.ron train experiments/scale-10m.ron --device "$device" --quiet
f2c_step bench-resident 60 - bench --device "$device" --classes 1000000 --inputs resident \
    --steps 3 --warmup 1 --out results/gpu/bench-resident --paper results/gpu/bench-resident/paper
if [[ ! -d $pack/data/orl ]]; then
    skip train-orl-cnn "data/orl not in the pack (fetch it before packing)"
else
    f2c_step train-orl-cnn 90 experiments/orl-f2c.ron train experiments/orl-f2c.ron --device "$device" --quiet
fi
if [[ -x $pack/tests/f2c-lib ]]; then
    step unit-cuda 45 "$pack/tests/f2c-lib" cuda --include-ignored --test-threads=1
else
    skip unit-cuda "tests/f2c-lib not in the pack"
fi
f2c_step bench-d512 90 - bench --device "$device" --classes 10000000 --dim 512 --no-training-step \
    --steps 3 --warmup 1 --out results/gpu/bench-d512 --paper results/gpu/bench-d512/paper

# --- summary -----------------------------------------------------------------------------------
failed=0
{
    echo "f2c gpu-check, $(date -u +%FT%TZ), $((SECONDS - start))s of a ${budget}s budget"
    for s in "${statuses[@]}"; do
        echo "$s"
        [[ $s == *FAIL* || $s == *TIMEOUT* ]] && failed=$((failed + 1))
    done
    echo "failed or timed out: $failed"
} >"$summary"
tar -czf "$out/results.tar.gz" -C "$work" logs run 2>/dev/null || note "could not write results.tar.gz"
rm -rf "$work"
cat "$summary" | tee -a "$main_log"
exit $((failed > 0))
