#!/usr/bin/env bash
# Retrains committed single-run records under emulated CPUs and compares their metrics, to tell
# whether the results depend on the SIMD instructions of the machine that made them. The gemm
# crate picks its matrix kernels at run time from what the CPU offers (AVX-512, AVX2 with FMA, or
# plain SSE), so a machine of another kind runs other kernels; this runs `f2c train E --verify`
# under qemu's user-mode emulation of each named CPU model, which reports that model's features to
# the program (`qemu-x86_64 -cpu help` lists the models).
#
# Usage: verify-other-cpus.sh [CPU_MODEL ...]      (default: Haswell Nehalem)
#   Haswell: AVX2 and FMA, no AVX-512.  Nehalem: SSE4.2, no AVX and no FMA.
# Environment: F2C_EXPERIMENTS (default "fc pfc f2c dcq": experiments/<name>.ron, each compared
#              with its record in results/train), F2C_TOLERANCE (percentage points, default 0:
#              bit-identical).
# Needs qemu-x86_64 (Debian: apt-get install qemu-user; version 7.2 or later emulates AVX2).
# Emulation is slow: each run takes 8 to 15 minutes on 2 cores, against seconds natively.
# Exits non-zero unless every run is reproduced.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if ! command -v qemu-x86_64 >/dev/null; then
    echo "verify-other-cpus: qemu-x86_64 not found; install it (Debian: apt-get install qemu-user)" >&2
    exit 2
fi
cpus=("$@")
((${#cpus[@]})) || cpus=(Haswell Nehalem)
models=$(qemu-x86_64 -cpu help | awk '{print $2}')
for cpu in "${cpus[@]}"; do
    if ! grep -qx -- "$cpu" <<<"$models"; then
        echo "verify-other-cpus: qemu knows no CPU model '$cpu' (see qemu-x86_64 -cpu help)" >&2
        exit 2
    fi
done
cargo build --release --quiet || exit
# A copy, so that a build during the runs does not replace the executable under them.
bin=$(mktemp "${TMPDIR:-/tmp}/f2c-verify-cpus.XXXXXX")
trap 'rm -f "$bin"' EXIT
cp target/release/f2c "$bin" && chmod +x "$bin" || exit

failed=0
results=()
for cpu in "${cpus[@]}"; do
    for name in ${F2C_EXPERIMENTS:-fc pfc f2c dcq}; do
        echo "== $cpu: f2c train experiments/$name.ron --verify ($(date +%T))"
        t0=$SECONDS
        # qemu warns once per CPU feature its TCG cannot emulate; those lines say nothing here.
        qemu-x86_64 -cpu "$cpu" "$bin" train "experiments/$name.ron" --verify --quiet \
            --tolerance "${F2C_TOLERANCE:-0}" 2>&1 | grep -v "TCG doesn't support requested feature"
        rc=${PIPESTATUS[0]}
        verdict=$([[ $rc == 0 ]] && echo reproduced || echo "NOT reproduced (exit $rc)")
        ((rc == 0)) || failed=$((failed + 1))
        results+=("$cpu $name: $verdict, $((SECONDS - t0)) s")
    done
done
echo "== summary (tolerance ${F2C_TOLERANCE:-0} pp)"
printf '%s\n' "${results[@]}"
exit $((failed > 0))
