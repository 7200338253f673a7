#!/usr/bin/env python3
"""PyTorch peer of the head-step benchmark (`f2c bench --peer FILE`).

Times one training step of each classification head in isolation, as `src/bench/head_step.rs`
does in Rust: forward, backward into the embeddings and the head's own update, on fixed random
embeddings with fresh random labels every step; the median over the timed steps after warm-up.

Heads (CosFace s = 32, m = 0.4 wherever a margin softmax is used; SGD lr 0.1, momentum 0.9,
weight decay 5e-4 wherever there are centres):
  fc       full FC over all N centres.
  pfc      Partial FC r = 0.1, insightface partial_fc_v2's sample: all positive centres plus
           uniform negatives, int(r*N) in all; only the sampled rows and their momentum are updated
           (which rows step as in the original partial_fc.py).
  pfc-all  the same sample, all N centres one parameter of torch.optim.SGD as partial_fc_v2.py
           under train_v2.py: the gradient of weight[index] is dense, zero outside the sample, so
           every centre steps (the unsampled ones under weight decay and momentum alone).
  f2c      F2C's dynamic class pool loss (tiandunx/FFC), pools of 1 % and 10 % of N, in the
           one-direction form our bench calls the peer step: the first half of the batch's gallery
           features written to row 0 of an LRU pool, all B probes against row 0.
  f2c-ref  the reference two-row symmetric step at 10 %: two rows per slot written alternately, the
           loss against row 0 plus against row 1 for the refreshed slots, both directions of B/2
           probes, the first direction's pool writes rolled back.
  dcq      Dynamic Class Queue (Li et al., CVPR 2021): positive logit q.k - m, negatives against a
           FIFO queue of keys (same-label entries masked), s = 50, m = 0.3, target 0; then the
           batch's keys and labels are enqueued with wrap-around. Queue = max(10 % of N, B).

Output: one JSON line per case (stdout or --out):
  {"peer": "pytorch", "head": "fc" | "pfc0.1" | "pfc0.1-all-rows" | "f2c0.01" | "f2c0.1"
           | "dcq0.1" | "f2c0.1-tworow-symmetric", "classes", "dim", "batch", "median_s", ...}
The first six keys are what the Rust side reads (head = method followed by its parameter, as
`Peer::seconds` looks it up); the others are extra: method, param, variant, columns, state_bytes,
steps, warmup, min_s, device, threads, torch, device_peak_bytes (CUDA only) and, for a case that
did not fit, skipped (the reason) with median_s null.

Usage:
  python3 scripts/torch_heads.py --out results/bench/torch_peer.jsonl
  python3 scripts/torch_heads.py --classes 1000,10000 --steps 3 --cases fc,dcq
  python3 scripts/torch_heads.py --device cuda --classes 100000,1000000,10000000
  python3 scripts/torch_heads.py --self-test
Needs `pip install torch`. On a CPU that other jobs share, `--threads 1` keeps torch's OpenMP
threads from spinning against them (timings with 2 threads on a loaded 2-core machine were 10-100x
slower and erratic).
"""
import argparse
import heapq
import json
import math
import sys
import time

import torch
import torch.nn.functional as F

# CosFace of the FC, Partial FC and F2C cases, as in head_step.rs.
SCALE, MARGIN = 32.0, 0.4
# SGD of the centres.
LR, MOMENTUM, WEIGHT_DECAY = 0.1, 0.9, 5e-4
# DCQ's scale and margin (the authors' defaults in dcq.py).
DCQ_SCALE, DCQ_MARGIN = 50.0, 0.3
# Masked queue logits, before the scale, as dcq.py.
DCQ_MASKED = -1e9
# Parameters of the timed cases.
PFC_RATE = 0.1
F2C_FRACTIONS = (0.01, 0.1)
F2C_REF_FRACTION = 0.1
DCQ_FRACTION = 0.1
ALL_CASES = ("fc", "pfc", "pfc-all", "f2c", "f2c-ref", "dcq")


def cosface_ce(cos, target, s=SCALE, m=MARGIN):
    """Mean cross-entropy of s*cos with the target's cosine lowered by m. (n, C) cosines."""
    logits = cos * s
    # In place on the product: its backward does not need its output, and a B x N copy is spared.
    logits[torch.arange(cos.shape[0], device=cos.device), target] -= s * m
    return F.cross_entropy(logits, target)


def fc_loss(x, weight, labels, s=SCALE, m=MARGIN):
    """Full-FC CosFace loss of raw embeddings x (B, D) against raw centres weight (C, D)."""
    cos = F.linear(F.normalize(x), F.normalize(weight)).clamp(-1, 1)  # (B, C)
    return cosface_ce(cos, labels, s, m)


def dcq_loss(x, keys, labels, queue, queue_labels, s=DCQ_SCALE, m=DCQ_MARGIN):
    """DCQ loss (dcq.py's forward): queries x (B, D) with grad, keys (B, D) without."""
    q = F.normalize(x)  # (B, D)
    k = F.normalize(keys).detach()  # (B, D)
    pos = (q * k).sum(1, keepdim=True) - m  # (B, 1)
    neg = q @ queue.t()  # (B, K)
    # Same identity in the queue: not a negative.
    neg = neg.masked_fill(labels[:, None] == queue_labels[None, :], DCQ_MASKED)
    logits = torch.cat([pos, neg], dim=1) * s  # (B, 1 + K)
    return F.cross_entropy(logits, torch.zeros_like(labels)), k


def enqueue(queue, queue_labels, ptr, keys, labels):
    """Writes keys and labels at the pointer, wrapping around; returns the new pointer."""
    idx = (ptr + torch.arange(keys.shape[0], device=queue.device)) % queue.shape[0]
    queue[idx] = keys
    queue_labels[idx] = labels
    return (ptr + keys.shape[0]) % queue.shape[0]


def sgd_rows(weight, momentum, rows, sub):
    """torch.optim.SGD's update (weight decay, then momentum) applied to the sampled rows only."""
    with torch.no_grad():
        grad = sub.grad + WEIGHT_DECAY * sub
        buf = momentum[rows].mul_(MOMENTUM).add_(grad)
        weight[rows] = sub - LR * buf
        momentum[rows] = buf


def pool_slots(fraction, classes, batch):
    return max(int(fraction * classes), batch)


def top_k(slots):
    """The reference's k = min(max(floor(0.0002 Q), 3), 10), capped at Q."""
    return min(min(max(int(0.0002 * slots), 3), 10), slots)


class ClassPool:
    """The dynamic class pool: features (rows, Q, D) and an LRU map identity -> slot on the host.

    LRU by use stamps and a heap with stale entries skipped, so a write costs O(log Q); an undo log
    per trial direction gives the reference's rollback.
    """

    def __init__(self, slots, dim, rows, device):
        self.feat = F.normalize(torch.randn(rows, slots, dim, device=device), dim=2)
        self.rows = rows
        self.slot_of = {}
        self.owner = [-1] * slots
        # Free slots carry the oldest stamps, so they are taken before anything is evicted.
        self.stamp = list(range(-slots, 0))
        self.next_row = [0] * slots
        self.heap = [(t, s) for s, t in enumerate(self.stamp)]
        self.clock = 0
        self.undo = None

    def _touch(self, s):
        if self.undo is not None and s not in self.undo:
            self.undo[s] = (self.owner[s], self.stamp[s], self.next_row[s])

    def write(self, labels, feats, trial=False):
        """Writes gallery features (n, D) of identities `labels`; returns the refreshed slots."""
        self.undo = {} if trial else None
        refreshed, writes = [], {}
        for i, c in enumerate(labels):
            s = self.slot_of.get(c)
            if s is None:
                while True:
                    t, s = heapq.heappop(self.heap)
                    if self.stamp[s] == t:
                        break
                self._touch(s)
                if self.owner[s] >= 0:
                    del self.slot_of[self.owner[s]]
                self.slot_of[c], self.owner[s], row = s, c, 0
            else:
                self._touch(s)
                row = self.next_row[s]
                refreshed.append(s)
            self.next_row[s] = (row + 1) % self.rows
            self.stamp[s] = self.clock
            heapq.heappush(self.heap, (self.clock, s))
            self.clock += 1
            writes[(row, s)] = i  # the last write of a (row, slot) wins
        self.saved = []
        for row in range(self.rows):
            dst = [s for (r, s) in writes if r == row]
            if not dst:
                continue
            src = [writes[(row, s)] for s in dst]
            dst_t = torch.tensor(dst, device=self.feat.device)
            if trial:
                self.saved.append((row, dst_t, self.feat[row, dst_t].clone()))
            self.feat[row, dst_t] = feats[torch.tensor(src, device=feats.device)]
        return sorted(set(refreshed))

    def rollback(self):
        """Undoes the last trial write: features, map, stamps and rows."""
        for row, dst, old in self.saved:
            self.feat[row, dst] = old
        for s, (owner, stamp, next_row) in self.undo.items():
            if self.owner[s] >= 0 and self.slot_of.get(self.owner[s]) == s:
                del self.slot_of[self.owner[s]]
            self.owner[s], self.stamp[s], self.next_row[s] = owner, stamp, next_row
            if owner >= 0:
                self.slot_of[owner] = s
            heapq.heappush(self.heap, (stamp, s))
        self.undo = None

    def targets(self, labels, device):
        return torch.tensor([self.slot_of.get(c, -1) for c in labels], device=device)


def pool_loss(probe, targets, rows, k):
    """F2C's loss of probes (n, D) against pool rows (Q, D): CosFace over the pool for resident
    identities, mean of the k largest clipped cosines for the others."""
    cos = F.linear(F.normalize(probe), rows)  # (n, Q)
    pos = targets >= 0
    loss = cos.new_zeros(())
    if pos.any():
        loss = loss + cosface_ce(cos[pos], targets[pos])
    if (~pos).any():
        loss = loss + torch.topk(cos[~pos], k, dim=1)[0].clamp_min(0).mean()
    return loss


class Case:
    """One head step, set up for `classes` identities; step(labels) runs it."""

    def __init__(self, name, method, param, variant, columns, state_bytes):
        self.name, self.method, self.param, self.variant = name, method, param, variant
        self.columns, self.state_bytes = columns, state_bytes


def held_by_sgd(case, w):
    """Gives `case` the centres `w` as one parameter of torch's SGD (case.w, case.opt), as
    insightface's trainers hold them."""
    case.w = torch.nn.Parameter(w)
    case.opt = torch.optim.SGD([case.w], lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)


def sgd_step(case, labels, loss_of):
    """One step of a case whose centres torch's SGD holds: gradients cleared, the loss of the
    labels (on the case's device), its backward, the optimiser's step."""
    labels = labels.to(case.x.device)
    case.opt.zero_grad(set_to_none=True)
    case.x.grad = None
    loss = loss_of(labels)
    loss.backward()
    case.opt.step()
    return loss


class FullFc(Case):
    def __init__(self, classes, dim, batch, device):
        super().__init__("fc", "fc", 1.0, "peer", classes, 2 * classes * dim * 4)
        self.x = F.normalize(torch.randn(batch, dim, device=device)).requires_grad_()
        held_by_sgd(self, torch.normal(0, 0.01, (classes, dim), device=device))

    def step(self, labels):
        return sgd_step(self, labels, lambda labels: fc_loss(self.x, self.w, labels))


class PartialFc(Case):
    def __init__(self, classes, dim, batch, device):
        self.num_sample = min(max(int(PFC_RATE * classes), 1), classes)
        super().__init__(
            f"pfc{PFC_RATE}", "pfc", PFC_RATE, "peer", self.num_sample, 2 * classes * dim * 4
        )
        self.classes = classes
        self.x = F.normalize(torch.randn(batch, dim, device=device)).requires_grad_()
        self.w = torch.normal(0, 0.01, (classes, dim), device=device)
        self.mom = torch.zeros_like(self.w)

    def sample(self, labels):
        """The sampled centres (sorted) and each label's position among them."""
        with torch.no_grad():
            positive = torch.unique(labels, sorted=True)
            if positive.numel() >= self.num_sample:
                index = positive
            else:
                # partial_fc_v2's sample: a random key per class, positives forced to the top.
                keys = torch.rand(self.classes, device=labels.device)
                keys[positive] = 2.0
                index = torch.topk(keys, k=self.num_sample)[1].sort()[0]
            return index, torch.searchsorted(index, labels)

    def step(self, labels):
        labels = labels.to(self.x.device)
        self.x.grad = None
        index, target = self.sample(labels)
        sub = self.w[index].requires_grad_()  # (S, D)
        loss = fc_loss(self.x, sub, target)
        loss.backward()
        sgd_rows(self.w, self.mom, index, sub)
        return loss


class PartialFcAllRows(PartialFc):
    def __init__(self, classes, dim, batch, device):
        super().__init__(classes, dim, batch, device)
        self.name, self.variant = f"{self.name}-all-rows", "all-rows"
        del self.mom  # the optimiser keeps the momentum
        held_by_sgd(self, self.w)

    def step(self, labels):
        def loss_of(labels):
            index, target = self.sample(labels)
            return fc_loss(self.x, self.w[index], target)

        return sgd_step(self, labels, loss_of)


class F2c(Case):
    def __init__(self, classes, dim, batch, device, fraction, reference):
        slots = pool_slots(fraction, classes, batch)
        rows = 2 if reference else 1
        variant = "tworow-symmetric" if reference else "row0-one-direction"
        name = f"f2c{fraction}" + ("-tworow-symmetric" if reference else "")
        super().__init__(name, "f2c", fraction, variant, slots, rows * slots * dim * 4)
        self.reference, self.batch, self.k = reference, batch, top_k(slots)
        self.pool = ClassPool(slots, dim, rows, device)
        self.probe = F.normalize(torch.randn(batch, dim, device=device)).requires_grad_()
        self.gallery = F.normalize(torch.randn(batch, dim, device=device))

    def direction(self, probe_rows, gallery_rows, labels, trial):
        """One direction (slices of the batch): write, loss, backward; a trial is rolled back
        after its backward, which still reads the pool it was evaluated against."""
        dev = self.probe.device
        refreshed = self.pool.write(labels[gallery_rows], self.gallery[gallery_rows], trial)
        targets = self.pool.targets(labels[probe_rows], dev)
        probe = self.probe[probe_rows]
        loss = pool_loss(probe, targets, self.pool.feat[0], self.k)
        if self.reference:
            mix = self.pool.feat[0].clone()
            if refreshed:
                r = torch.tensor(refreshed, device=dev)
                mix[r] = self.pool.feat[1, r]
            loss = loss + pool_loss(probe, targets, mix, self.k)
        loss.backward()
        if trial:
            self.pool.rollback()
        return loss.detach()

    def step(self, labels):
        labels = labels.tolist()
        b = self.batch
        self.probe.grad = None
        if self.reference:
            a, g = slice(0, b // 2), slice(b // 2, b)
            return self.direction(a, g, labels, trial=True) + self.direction(g, a, labels, trial=False)
        return self.direction(slice(0, b), slice(0, b // 2), labels, trial=False)


class Dcq(Case):
    def __init__(self, classes, dim, batch, device):
        size = pool_slots(DCQ_FRACTION, classes, batch)
        super().__init__(
            f"dcq{DCQ_FRACTION}", "dcq", DCQ_FRACTION, "peer", size + 1, size * (dim * 4 + 8)
        )
        self.queue = F.normalize(torch.randn(size, dim, device=device))  # (K, D)
        # No label yet: −1 matches no identity.
        self.queue_labels = torch.full((size,), -1, dtype=torch.long, device=device)
        self.ptr = 0
        self.x = F.normalize(torch.randn(batch, dim, device=device)).requires_grad_()
        self.keys = F.normalize(torch.randn(batch, dim, device=device))

    def step(self, labels):
        labels = labels.to(self.x.device)
        self.x.grad = None
        loss, k = dcq_loss(self.x, self.keys, labels, self.queue, self.queue_labels)
        loss.backward()
        self.ptr = enqueue(self.queue, self.queue_labels, self.ptr, k, labels)
        return loss


def build_cases(names, classes, dim, batch, device):
    """(head, constructor) of the requested cases at one size, smallest memory first."""
    out = []
    if "f2c" in names:
        for f in F2C_FRACTIONS:
            out.append((f"f2c{f}", lambda f=f: F2c(classes, dim, batch, device, f, reference=False)))
    if "f2c-ref" in names:
        out.append((f"f2c{F2C_REF_FRACTION}-tworow-symmetric",
                    lambda: F2c(classes, dim, batch, device, F2C_REF_FRACTION, reference=True)))
    if "dcq" in names:
        out.append((f"dcq{DCQ_FRACTION}", lambda: Dcq(classes, dim, batch, device)))
    if "pfc" in names:
        out.append((f"pfc{PFC_RATE}", lambda: PartialFc(classes, dim, batch, device)))
    if "pfc-all" in names:
        out.append((f"pfc{PFC_RATE}-all-rows", lambda: PartialFcAllRows(classes, dim, batch, device)))
    if "fc" in names:
        out.append(("fc", lambda: FullFc(classes, dim, batch, device)))
    return out


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_case(case, classes, args, device, gen):
    """Median and min seconds of the timed steps; labels are drawn before each clock starts."""
    times = []
    for i in range(args.warmup + args.steps):
        labels = torch.randint(0, classes, (args.batch,), generator=gen)
        sync(device)
        t0 = time.perf_counter()
        loss = case.step(labels)
        sync(device)
        dt = time.perf_counter() - t0
        if not math.isfinite(loss.item()):
            raise RuntimeError(f"{case.name}: non-finite loss")
        if i >= args.warmup:
            times.append(dt)
    times.sort()
    return times[len(times) // 2], times[0]


# torch.OutOfMemoryError since 2.5; torch.cuda's before.
OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", getattr(torch.cuda, "OutOfMemoryError", MemoryError))


def is_out_of_memory(e):
    msg = str(e)
    return (isinstance(e, (MemoryError, OUT_OF_MEMORY)) or "out of memory" in msg
            or "can't allocate memory" in msg)


def run(args):
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("torch_heads.py: --device cuda, but torch sees no GPU (torch.cuda.is_available() is false)")
    names = args.cases
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    out = open(args.out, "w") if args.out else sys.stdout
    common = {
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    for n in sorted(args.classes):
        for head, make in build_cases(names, n, args.dim, args.batch, device):
            case = None
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            row = {"peer": "pytorch", "head": head, "classes": n, "dim": args.dim, "batch": args.batch}
            try:
                case = make()
                row["median_s"], row["min_s"] = time_case(case, n, args, device, gen)
                if device.type == "cuda":
                    row["device_peak_bytes"] = torch.cuda.max_memory_allocated(device)
            except (RuntimeError, MemoryError) as e:
                if not is_out_of_memory(e):
                    raise
                # The case does not fit: say so and go on with the others.
                row.update(median_s=None, skipped=f"out of memory: {str(e).splitlines()[0]}")
            if case is not None:
                row.update(method=case.method, param=case.param, variant=case.variant,
                           columns=case.columns, state_bytes=case.state_bytes)
            row.update(steps=args.steps, warmup=args.warmup, **common)
            print(json.dumps(row), file=out, flush=True)
            del case
    if out is not sys.stdout:
        out.close()


def self_test():
    """The FC and DCQ losses on a 3 x 4 example worked by hand (3 samples, 4 classes / queue
    entries, D = 4), the queue's wrap-around, the pool's rollback and LRU, and which centres
    Partial FC's two forms move."""
    close = lambda a, b: abs(a - b) <= 1e-4 * max(1.0, abs(b))
    e = math.exp
    # Embeddings (3,4,0,0), (0,0,1,0), (0,0,0,2) normalise to (.6,.8,0,0), e2, e3. Centres: the
    # identity, scaled by 2 (normalised away). Cosines:
    #   [[.6, .8, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    x = torch.tensor([[3.0, 4, 0, 0], [0, 0, 1, 0], [0, 0, 0, 2]])
    w = 2 * torch.eye(4)
    # FC, labels (0, 2, 1), s = 32, m = 0.4; the target logit is 32(cos - 0.4):
    #   row 0: logits (6.4, 25.6, 0, 0),   loss log(e^6.4 + e^25.6 + 2) - 6.4     ≈ 19.2000
    #   row 1: logits (0, 0, 19.2, 0),     loss log(3 + e^19.2) - 19.2            ≈ 1.38e-8
    #   row 2: logits (0, -12.8, 0, 32),   loss log(2 + e^-12.8 + e^32) + 12.8    ≈ 44.8000
    #   mean ≈ 21.3333
    fc_rows = [
        math.log(e(6.4) + e(25.6) + 2) - 6.4,
        math.log(3 + e(19.2)) - 19.2,
        math.log(2 + e(-12.8) + e(32)) + 12.8,
    ]
    fc_hand = sum(fc_rows) / 3
    fc = fc_loss(x.clone().requires_grad_(), w, torch.tensor([0, 2, 1])).item()
    assert close(fc, fc_hand) and close(fc, 21.3333), (fc, fc_hand)

    # DCQ, s = 50, m = 0.3. Queries as above; keys e0, e2, e1 give q.k = (.6, 1, 0), so positive
    # logits (.3, .7, -.3). Queue e0..e3 with labels (5, 7, 9, 8), batch labels (7, 9, 4): row 0
    # masks entry 1, row 1 masks entry 2, row 2 masks nothing. Logits x 50:
    #   row 0: (15 | 30, masked, 0, 0)  loss log(e^15 + e^30 + 2) - 15          ≈ 15.0000
    #   row 1: (35 | 0, 0, masked, 0)   loss log(e^35 + 3) - 35                  ≈ 1.9e-15
    #   row 2: (-15 | 0, 0, 0, 50)      loss log(e^-15 + 3 + e^50) + 15          ≈ 65.0000
    #   mean ≈ 26.6667
    dcq_rows = [
        math.log(e(15) + e(30) + 2) - 15,
        math.log(e(35) + 3) - 35,
        math.log(e(-15) + 3 + e(50)) + 15,
    ]
    dcq_hand = sum(dcq_rows) / 3
    keys = torch.eye(4)[[0, 2, 1]]
    queue = torch.eye(4)
    queue_labels = torch.tensor([5, 7, 9, 8])
    labels = torch.tensor([7, 9, 4])
    q = x.clone().requires_grad_()
    loss, k = dcq_loss(q, keys, labels, queue, queue_labels)
    assert close(loss.item(), dcq_hand) and close(loss.item(), 26.6667), (loss.item(), dcq_hand)
    loss.backward()
    assert torch.isfinite(q.grad).all()
    # Enqueue at 0 (entries 0..2), then at 3 wrapping to 0, 1: labels (7, 9, 4) then (1, 2, 3)
    # leave (2, 3, 4, 1) and the pointer at 2.
    ptr = enqueue(queue, queue_labels, 0, k, labels)
    assert ptr == 3 and queue_labels.tolist() == [7, 9, 4, 8]
    ptr = enqueue(queue, queue_labels, ptr, k, torch.tensor([1, 2, 3]))
    assert ptr == 2 and queue_labels.tolist() == [2, 3, 4, 1], queue_labels.tolist()
    assert torch.equal(queue[3], k[0]) and torch.equal(queue[0], k[1])

    # The pool's rollback restores map and features exactly.
    pool = ClassPool(4, 4, 2, torch.device("cpu"))
    pool.write([1, 2, 3], torch.eye(4)[:3])
    before = (pool.feat.clone(), dict(pool.slot_of), list(pool.owner), list(pool.stamp))
    pool.write([5, 6, 2], torch.ones(3, 4), trial=True)
    pool.rollback()
    assert torch.equal(pool.feat, before[0]) and pool.slot_of == before[1]
    assert pool.owner == before[2] and pool.stamp == before[3]
    # LRU: 4 slots hold 1, 2, 3, then 4; writing 5 evicts 1, the least recently written.
    pool.write([4, 5], torch.ones(2, 4))
    assert 1 not in pool.slot_of and {2, 3, 4, 5} <= set(pool.slot_of)

    # Partial FC's two forms, 20 centres at r = 0.1: a step samples 2 (class 3 and one negative).
    # The original moves only those 2 rows; v2 also moves the other 18, each by weight decay alone
    # (torch's momentum buffer starts as the first gradient): w <- w - lr * wd * w.
    for form, idle_factor in ((PartialFc, 1.0), (PartialFcAllRows, 1.0 - LR * WEIGHT_DECAY)):
        torch.manual_seed(0)
        case = form(20, 4, 2, torch.device("cpu"))
        before = case.w.detach().clone()
        case.step(torch.tensor([3, 3]))
        after = case.w.detach()
        idle = [i for i in range(20) if torch.allclose(after[i], before[i] * idle_factor, rtol=1e-5, atol=0)]
        assert len(idle) == 18 and 3 not in idle, (form.__name__, idle)

    print(json.dumps({"self_test": "ok", "fc_loss": fc, "fc_hand": fc_hand,
                      "dcq_loss": loss.item(), "dcq_hand": dcq_hand}))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ints = lambda s: [int(v) for v in s.split(",") if v]
    p.add_argument("--batch", type=int, default=256, help="batch size B")
    p.add_argument("--dim", type=int, default=128, help="embedding dimension D")
    p.add_argument("--classes", type=ints, default=[10_000, 100_000, 1_000_000],
                   help="identity counts N, comma-separated")
    p.add_argument("--steps", type=int, default=5, help="timed steps per case (median reported)")
    p.add_argument("--warmup", type=int, default=2, help="untimed warm-up steps per case")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--cases", type=lambda s: [c for c in s.split(",") if c], default=list(ALL_CASES),
                   help=f"comma-separated subset of {','.join(ALL_CASES)}")
    p.add_argument("--seed", type=int, default=0, help="seed of inputs, initialisation and labels")
    p.add_argument("--threads", type=int, help="CPU threads of torch (default: torch's choice)")
    p.add_argument("--out", help="write the JSON lines here instead of stdout")
    p.add_argument("--self-test", action="store_true",
                   help="check the FC and DCQ losses against hand-computed values and exit")
    args = p.parse_args()
    if args.self_test:
        self_test()
        return
    bad = [c for c in args.cases if c not in ALL_CASES]
    if bad:
        p.error(f"unknown case(s) {','.join(bad)}; choose from {','.join(ALL_CASES)}")
    if args.steps < 1 or args.batch < 2 or args.dim < 1 or any(c < 2 for c in args.classes):
        p.error("need --steps >= 1, --batch >= 2, --dim >= 1 and every --classes >= 2")
    run(args)


if __name__ == "__main__":
    main()
