#!/usr/bin/env bash
# Builds f2c with the `cuda` feature (dfdx's CUDA device, through cudarc 0.9) on a machine that has
# only a Rust toolchain, Python 3 with pip, and PyPI: no CUDA toolkit, no NVIDIA driver, no GPU.
#
# What it does, each part skipped when already done (re-running is cheap):
#   1. installs CUDA 13.0's nvcc, headers and libraries from NVIDIA's PyPI wheels (pinned below) into
#      a venv under .cuda/ (git-ignored), so nothing outside the repository changes;
#   2. lays out a CUDA root .cuda/root/ (include/, lib/) the way cudarc's and dfdx's build scripts
#      look for it, with the .so names that cudarc links (-lcuda -lnvrtc -lcurand -lcublas -lcublasLt);
#   3. builds a link stub for the driver library libcuda.so.1 (scripts/cuda-stub/), since the driver
#      is the one piece no wheel ships;
#   4. provides a stand-in `nvidia-smi` when no real one exists, because dfdx's build script asks it
#      for the GPU's compute capability (9.0 = Hopper, H100/H200; CUDA_COMPUTE_CAP overrides);
#   5. runs `cargo build --release --features cuda` and `cargo test --release --features cuda --no-run`
#      (the test executables, for scripts/pack-gpu-check.sh), forwarding extra arguments to both, into
#      target/cuda/ (CARGO_TARGET_DIR overrides): the `cuda` executables link libcuda.so.1, which a
#      machine without the NVIDIA driver cannot load, so they must not replace the CPU build's
#      target/release/f2c.
#
# Why CUDA 13.0 and not newer: the PTX that nvcc writes at build time must load on the GPU machines'
# driver 580 (CUDA 13.0); 13.0's nvcc writes PTX ISA 9.0, which it does.
#
# Usage: scripts/build-cuda.sh [--no-tests] [--setup-only] [--print-env] [--] [cargo args...]
#   --no-tests    build only; skip `cargo test --no-run` (what CI uses)
#   --setup-only  install the toolkit and lay out the CUDA root, but run no cargo build
#   --print-env   print the `export` lines that let one run other cargo commands with the feature
#                 (eval "$(scripts/build-cuda.sh --print-env)"; cargo clippy --features cuda); implies
#                 --setup-only and sends every other message to stderr
# Environment:
#   CUDA_COMPUTE_CAP  GPU architecture to compile for, as `90` or `9.0`; default: the GPU's, from
#                     the real nvidia-smi, else 9.0 (Hopper: H100, H200) from the stand-in
#   F2C_CUDA_DIR      where to install (default <repo>/.cuda)
#   PYTHON            the Python 3 that creates the venv (default python3)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cuda_dir=${F2C_CUDA_DIR:-$repo/.cuda}
python=${PYTHON:-python3}

# CUDA 13.0 (update 0/2) wheels. nvcc needs nvvm (cicc), crt and runtime (cuda.h, cuda_runtime.h)
# and cccl (`nv/target`); nvrtc, cublas and curand are the libraries cudarc links.
pins=(
    nvidia-cuda-nvcc==13.0.88
    nvidia-nvvm==13.0.88
    nvidia-cuda-crt==13.0.88
    nvidia-cuda-runtime==13.0.96
    nvidia-cuda-cccl==13.0.85
    nvidia-cuda-nvrtc==13.0.88
    nvidia-cublas==13.0.2.14
    nvidia-curand==10.4.0.35
)

run_tests=1
run_cargo=1
print_env=0
cargo_args=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --no-tests) run_tests=0 ;;
        --setup-only) run_cargo=0 ;;
        --print-env) print_env=1 run_cargo=0 ;;
        --) shift; cargo_args+=("$@"); break ;;
        *) cargo_args+=("$1") ;;
    esac
    shift
done

say() {
    if [[ $print_env == 1 ]]; then echo "build-cuda: $*" >&2; else echo "build-cuda: $*"; fi
}
die() {
    echo "build-cuda: error: $*" >&2
    exit 1
}
# Runs a command with its stdout sent to stderr under --print-env, so that stdout holds only exports.
quiet() {
    if [[ $print_env == 1 ]]; then "$@" >&2; else "$@"; fi
}

command -v cargo >/dev/null || die "cargo not found; install the Rust toolchain (https://rustup.rs)"
command -v "$python" >/dev/null || die "'$python' not found; install Python 3 with pip, or set PYTHON"
command -v "${CC:-cc}" >/dev/null || die "no C compiler '${CC:-cc}' (needed for the libcuda stub); install gcc, or set CC"

# dfdx reads CUDA_COMPUTE_CAP as a bare number (90); nvidia-smi prints it with a dot (9.0).
cap=${CUDA_COMPUTE_CAP:-9.0}
[[ $cap =~ ^([0-9]+)\.?([0-9])$ ]] || die "CUDA_COMPUTE_CAP='$cap' is not a compute capability like 9.0 or 90"
cap_dotted=${BASH_REMATCH[1]}.${BASH_REMATCH[2]}
cap_bare=${BASH_REMATCH[1]}${BASH_REMATCH[2]}

# --- 1. the wheels -----------------------------------------------------------------------------
venv=$cuda_dir/venv
stamp=$venv/.f2c-pins
want_stamp=$(printf '%s\n' "${pins[@]}")
if [[ -f $stamp && "$(cat "$stamp")" == "$want_stamp" ]]; then
    say "CUDA 13.0 wheels already installed in $venv"
else
    say "installing CUDA 13.0 wheels into $venv (about 1.4 GB downloaded; a few minutes)"
    t0=$SECONDS
    rm -rf "$venv"
    quiet "$python" -m venv "$venv"
    # --no-deps: the pins are the whole closure, so an unpinned newer CUDA cannot slip in.
    quiet "$venv/bin/python" -m pip install --quiet --no-deps --disable-pip-version-check "${pins[@]}" ||
        die "pip could not install the CUDA wheels (network to PyPI needed); re-run to retry"
    echo "$want_stamp" >"$stamp"
    say "wheels installed in $((SECONDS - t0)) s"
fi
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cu=$site/nvidia/cu13
for f in bin/nvcc include/cuda.h include/cuda_fp16.h lib/libnvrtc.so.13 lib/libcublas.so.13 \
    lib/libcublasLt.so.13 lib/libcurand.so.10; do
    [[ -e $cu/$f ]] || die "the wheels did not provide $cu/$f; delete $venv and re-run"
done

# --- 2. the CUDA root --------------------------------------------------------------------------
# A real lib/ folder with links inside, so that it can hold the stub's link-time name beside the
# wheels' libraries. The include path is baked into the binary by dfdx (CUDA_INCLUDE_DIR, for the
# kernels it compiles at run time); scripts/gpu-check.sh recreates it on the GPU machine.
root=$cuda_dir/root
mkdir -p "$root/lib"
ln -sfn "$cu/include" "$root/include"
ln -sf "$cu/lib/libnvrtc.so.13" "$root/lib/libnvrtc.so"
ln -sf "$cu/lib/libcublas.so.13" "$root/lib/libcublas.so"
ln -sf "$cu/lib/libcublasLt.so.13" "$root/lib/libcublasLt.so"
ln -sf "$cu/lib/libcurand.so.10" "$root/lib/libcurand.so"
# The sonames too: libcublas.so.13 needs libcublasLt.so.13, and ld looks for it by that name.
# NVRTC loads its builtins library by name at run time (the heads' CUDA kernels are compiled then).
for so in libnvrtc.so.13 libnvrtc-builtins.so.13.0 libcublas.so.13 libcublasLt.so.13 libcurand.so.10; do
    ln -sf "$cu/lib/$so" "$root/lib/$so"
done

# --- 3. the libcuda link stub ------------------------------------------------------------------
# In lib64/stubs, as in a real toolkit, with only the link-time name `libcuda.so` in lib/: the loader
# looks for `libcuda.so.1`, so the stub can never shadow a real driver through LD_LIBRARY_PATH.
stubs=$root/lib64/stubs
rm -f "$root/lib/libcuda.so.1" "$root/lib/libcuda_stub.c" # where an earlier version of this script put them
if [[ -f $stubs/libcuda.so.1 && -L $stubs/libcuda.so ]]; then
    say "libcuda link stub already built"
else
    say "fetching crates to find cudarc's driver bindings"
    quiet cargo fetch --manifest-path "$repo/Cargo.toml"
    sys_rs=$(cargo metadata --format-version 1 --manifest-path "$repo/Cargo.toml" --features cuda |
        "$python" -c '
import json, os, sys
pkgs = [p for p in json.load(sys.stdin)["packages"] if p["name"] == "cudarc"]
if pkgs:
    print(os.path.join(os.path.dirname(pkgs[0]["manifest_path"]), "src", "driver", "sys.rs"))
')
    [[ -n $sys_rs ]] || die "cudarc is not in the dependency graph with --features cuda; check Cargo.toml"
    quiet "$repo/scripts/cuda-stub/gen-libcuda-stub.sh" "$sys_rs" "$stubs"
fi
ln -sf ../lib64/stubs/libcuda.so.1 "$root/lib/libcuda.so"

# --- 4. nvidia-smi -----------------------------------------------------------------------------
shim=$cuda_dir/shim
mkdir -p "$shim"
if command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=compute_cap --format=csv >/dev/null 2>&1; then
    say "using the real nvidia-smi ($(command -v nvidia-smi))"
    rm -f "$shim/nvidia-smi"
else
    # Only the one query dfdx's build script makes; anything else says it is a stand-in.
    cat >"$shim/nvidia-smi" <<EOF
#!/bin/sh
# Stand-in written by scripts/build-cuda.sh: no GPU here; answers dfdx's build-time query only.
case "\$*" in
    *--query-gpu=compute_cap*) printf 'compute_cap\n%s\n' "$cap_dotted" ;;
    *) echo "nvidia-smi stand-in (scripts/build-cuda.sh): no GPU on this machine" >&2; exit 9 ;;
esac
EOF
    chmod +x "$shim/nvidia-smi"
    say "no GPU here: stand-in nvidia-smi reports compute capability $cap_dotted"
fi

# --- 5. cargo ----------------------------------------------------------------------------------
# nvcc goes by its real path ($cu/bin): through a link it cannot find cuda_runtime.h.
# Both names: cudarc and dfdx take CUDA_PATH before CUDA_ROOT, so a CUDA_PATH left in the caller's
# environment would otherwise win.
export CUDA_ROOT=$root CUDA_PATH=$root
# Passed on only when the caller chose it: on a machine with a real nvidia-smi, dfdx asks the GPU.
if [[ -n ${CUDA_COMPUTE_CAP:-} ]]; then export CUDA_COMPUTE_CAP=$cap_bare; fi
export PATH=$shim:$cu/bin:$PATH
# GNU ld resolves the libraries that the linked ones need (libcublasLt.so.13 for libcublas.so.13)
# through LD_LIBRARY_PATH, not through -L (rust-lld, Rust's default linker now, needs neither).
export LD_LIBRARY_PATH=$root/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target/cuda}

if [[ $print_env == 1 ]]; then
    printf 'export CUDA_ROOT=%q CUDA_PATH=%q\nexport PATH=%q\nexport LD_LIBRARY_PATH=%q\nexport CARGO_TARGET_DIR=%q\n' \
        "$CUDA_ROOT" "$CUDA_PATH" "$PATH" "$LD_LIBRARY_PATH" "$CARGO_TARGET_DIR"
    if [[ -n ${CUDA_COMPUTE_CAP:-} ]]; then printf 'export CUDA_COMPUTE_CAP=%q\n' "$CUDA_COMPUTE_CAP"; fi
    exit 0
fi
if [[ $run_cargo == 0 ]]; then
    say "CUDA root ready at $root (run with --print-env for the environment)"
    exit 0
fi

cd "$repo"
say "cargo build --release --features cuda ${cargo_args[*]}"
t0=$SECONDS
cargo build --release --features cuda "${cargo_args[@]}"
say "built in $((SECONDS - t0)) s"
if [[ $run_tests == 1 ]]; then
    say "cargo test --release --features cuda --no-run ${cargo_args[*]}"
    t0=$SECONDS
    cargo test --release --features cuda --no-run "${cargo_args[@]}"
    say "test executables built in $((SECONDS - t0)) s"
fi
say "done; pack for a GPU machine with scripts/pack-gpu-check.sh"
