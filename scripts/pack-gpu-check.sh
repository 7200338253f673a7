#!/usr/bin/env bash
# Gathers what scripts/gpu-check.sh needs on a GPU machine that has no Rust toolchain and no network
# into one folder: the `--features cuda` executables (debug info stripped, gzipped), experiments/, ablations/,
# gpu-check.sh itself, and the CUDA headers that dfdx's run-time-compiled kernels include from paths
# baked in at build time (see gpu-check.sh). The folder must stay under the device tool's 64 MiB.
#
# The executables are named by cargo itself (`--message-format=json` of the same build and
# `test --no-run` that scripts/build-cuda.sh ran; nothing is rebuilt when those are up to date), not
# by globbing target/release/deps, where old hashes linger and the library's and the binary's test
# executables share the name f2c-<hash>.
#
# Usage: scripts/pack-gpu-check.sh [--out DIR] [--max-mib N] [--] [cargo args...]
#   --out DIR     the pack folder, emptied first (default target/gpu-check, git-ignored)
#   --max-mib N   fail when the pack is larger (default 56, leaving room for the working tree)
# Layout (executables as .gz until gpu-check.sh unpacks them): bin/f2c; tests/suite (the integration tests, cuda_agreement:: among them), tests/f2c-lib (the
#   library's unit tests), tests/<bin>-bin; experiments/; ablations/; gpu-check.sh; torch_heads.py;
#   data/orl (when fetched); cuda-include/;
#   dfdx-out/; baked-paths.txt; needed-symbols.txt; MANIFEST.txt.
# Then, with the device tool: carry ["target/gpu-check"], command `bash target/gpu-check/gpu-check.sh`.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pack=$repo/target/gpu-check
max_mib=56
cargo_args=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --out) pack=$2; shift ;;
        --max-mib) max_mib=$2; shift ;;
        --) shift; cargo_args+=("$@"); break ;;
        *) cargo_args+=("$1") ;;
    esac
    shift
done
say() { echo "pack-gpu-check: $*"; }
die() {
    echo "pack-gpu-check: error: $*" >&2
    exit 1
}
for tool in python3 strip nm; do
    command -v $tool >/dev/null || die "'$tool' not found (python3; binutils for strip and nm)"
done

# The same environment as the build, so that cargo finds everything fresh.
env_lines=$("$repo/scripts/build-cuda.sh" --print-env) || die "scripts/build-cuda.sh --print-env failed"
eval "$env_lines"

cd "$repo"
say "asking cargo for the executables (builds only what is out of date)"
json=$(mktemp)
trap 'rm -f "$json"' EXIT
cargo build --release --features cuda --message-format=json-render-diagnostics "${cargo_args[@]}" >"$json"
cargo test --release --features cuda --no-run --message-format=json-render-diagnostics "${cargo_args[@]}" >>"$json"

rm -rf "$pack"
mkdir -p "$pack/bin" "$pack/tests" "$pack/cuda-include" "$pack/dfdx-out"
# One line per thing to copy: `exe <pack-relative name> <path>`, `env <name> <value>` from dfdx's
# build script (CUDA_INCLUDE_DIR, CUDA_COMPUTE_CAP), `out <dfdx OUT_DIR>`.
plan=$(python3 - "$json" <<'EOF'
import json, sys

def package_name(pid):
    # "registry+https://...#dfdx@0.13.0" (cargo >= 1.77) or "dfdx 0.13.0 (registry+...)" (older)
    return pid.split("#")[-1].split("@")[0] if "#" in pid else pid.split(" ")[0]

seen = set()
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    r = m.get("reason")
    if r == "compiler-artifact" and m.get("executable"):
        t, test = m["target"], m["profile"]["test"]
        kind = t["kind"][0]
        if not test and kind == "bin":
            name = "bin/" + t["name"]
        elif test and kind == "lib":
            name = "tests/" + t["name"] + "-lib"
        elif test and kind == "bin":
            name = "tests/" + t["name"] + "-bin"
        elif test and kind == "test":
            name = "tests/" + t["name"]
        else:
            continue
        out = f"exe {name} {m['executable']}"
    elif r == "build-script-executed" and package_name(m["package_id"]) == "dfdx":
        lines = [f"out {m['out_dir']}"] + [f"env {k} {v}" for k, v in m.get("env", [])]
        out = "\n".join(lines)
    else:
        continue
    if out not in seen:
        seen.add(out)
        print(out)
EOF
)
grep -q '^exe bin/f2c ' <<<"$plan" || die "cargo named no f2c binary; did the build succeed?"
grep -q '^out ' <<<"$plan" || die "cargo reported no dfdx build script run; is the cuda feature on?"

# --- executables -------------------------------------------------------------------------------
while read -r _ name path; do
    strip --strip-debug -o "$pack/$name" "$path"
    say "$name <- ${path#"$repo"/} ($(du -h "$path" | cut -f1) -> $(du -h "$pack/$name" | cut -f1))"
done < <(grep '^exe ' <<<"$plan")

# Every CUDA symbol the executables import, for gpu-check's preflight against this driver.
nm -D --undefined-only "$pack"/bin/* "$pack"/tests/* 2>/dev/null | awk '{print $NF}' | sed 's/@.*//' |
    grep -E '^(cu|nvrtc|cublas|curand)' | sort -u >"$pack/needed-symbols.txt"

# --- baked header paths ------------------------------------------------------------------------
include_dir=$(awk '$1 == "env" && $2 == "CUDA_INCLUDE_DIR" {print $3; exit}' <<<"$plan")
compute_cap=$(awk '$1 == "env" && $2 == "CUDA_COMPUTE_CAP" {print $3; exit}' <<<"$plan")
[[ -n $include_dir ]] || die "dfdx's build script set no CUDA_INCLUDE_DIR"
: >"$pack/baked-paths.txt"
# Kept only if an executable really holds the path, so a future dfdx that stops baking it is seen.
baked() { grep -qaF "$1" "$pack"/bin/f2c "$pack"/tests/* 2>/dev/null; }
if baked "$include_dir"; then
    echo "include $include_dir" >>"$pack/baked-paths.txt"
else
    say "warning: $include_dir is not in the executables; dfdx may have changed how it finds headers"
fi
while read -r _ dir; do
    if baked "$dir"; then
        echo "out $dir" >>"$pack/baked-paths.txt"
        cp "$dir"/*.cuh "$pack/dfdx-out/"
    fi
done < <(grep '^out ' <<<"$plan")
# cuda_fp16.h is the only header the kernels include from the toolkit; NVRTC 13.0 builds in the
# rest it reads (measured: cuda_fp16.h alone suffices). Its direct includes come along in case the
# GPU machine's NVRTC is another 13.x that does not.
# The baked folder can be gone (a build from another checkout that shares this target folder): then
# the headers of the same CUDA from this build's environment.
header_dir=$include_dir
if [[ ! -f $header_dir/cuda_fp16.h ]]; then
    header_dir=${CUDA_ROOT:-}/include
    [[ -f $header_dir/cuda_fp16.h ]] || die "no cuda_fp16.h in $include_dir or $header_dir"
    say "the baked $include_dir is gone here; packing the headers of $header_dir"
fi
for h in cuda_fp16.h cuda_fp16.hpp vector_types.h vector_functions.h vector_functions.hpp nv; do
    cp -rL "$header_dir/$h" "$pack/cuda-include/"
done

# --- inputs and the script ---------------------------------------------------------------------
for d in experiments ablations; do
    mkdir -p "$pack/$d"
    if [[ -d $repo/$d ]]; then cp -r "$repo/$d/." "$pack/$d/"; fi
done
# The ORL faces (when fetched: bash scripts/fetch-orl.sh), for the CNN's run on the GPU.
if [[ -d $repo/data/orl ]]; then
    mkdir -p "$pack/data"
    cp -r "$repo/data/orl" "$pack/data/"
fi
# Compressed (a quarter of the size): gpu-check.sh unpacks them where they lie before its first step.
gzip -9 "$pack"/bin/* "$pack"/tests/*
cp "$repo/scripts/gpu-check.sh" "$pack/gpu-check.sh"
chmod +x "$pack/gpu-check.sh"
# The PyTorch peer of the head bench, timed on the GPU beside ours.
cp "$repo/scripts/torch_heads.py" "$pack/torch_heads.py"

{
    echo "f2c GPU-check pack"
    echo "commit: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$repo" diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "packed: $(date -u +%FT%TZ)"
    echo "compute capability built for: $compute_cap"
    echo "sizes:"
    (cd "$pack" && du -ab bin tests cuda-include dfdx-out experiments ablations | sort -k2 | awk '{printf "  %10d  %s\n", $1, $2}')
} >"$pack/MANIFEST.txt"

total=$(du -sb "$pack" | cut -f1)
total_mib=$(((total + 1048575) / 1048576))
say "pack at ${pack#"$repo"/}: ${total_mib} MiB (limit ${max_mib} MiB), $(wc -l <"$pack/needed-symbols.txt") imported CUDA symbols"
if ((total_mib > max_mib)); then
    die "the pack is ${total_mib} MiB, over ${max_mib} MiB; strip more (strip --strip-all), carry fewer test executables or leave data/orl out"
fi
say "run it on a GPU machine with: bash ${pack#"$repo"/}/gpu-check.sh [OUTPUT_DIR]"
