/* The heads' fused row kernels for the CUDA backend (cuda.rs), compiled at run time with NVRTC,
   so they include no header. Each kernel gives one block of BLOCK threads to one row and reduces
   in shared memory in a fixed tree order.
   BLOCK must equal the Rust constant (checked by a test); MAXK is how many negatives one pass of
   the top-k selects (any k works, in ceil(k / MAXK) passes over the row). Index arithmetic is
   64-bit: at 10^7 classes x 128 dimensions offsets pass 2^31. */

#define BLOCK 256
#define MAXK 16
#define NEG_FLT_MAX (-3.402823466e+38f)

typedef unsigned long long u64;
typedef long long i64;

/* Must match `LossArgs` in cuda.rs field for field (all 4-byte fields: no padding). */
struct LossArgs {
    int kind;          /* 0: CosFace, 1: ArcFace */
    float m;
    float cos_m;       /* ArcFace: cos m, sin m, cos(pi - m), m sin(pi - m), all from the host */
    float sin_m;
    float threshold;
    float fallback;
    float scale;
    float ce_weight;
    int neg_k;
    float neg_weight;
};

struct SgdArgs {
    float lr;
    float momentum;
    float weight_decay;
    int nesterov;
};

/* Sum over the block in a fixed tree order; every thread gets the result. */
__device__ float block_sum(float v, float* red) {
    red[threadIdx.x] = v;
    __syncthreads();
    for (unsigned int s = BLOCK / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) red[threadIdx.x] += red[threadIdx.x + s];
        __syncthreads();
    }
    float r = red[0];
    __syncthreads();
    return r;
}

__device__ float block_max(float v, float* red) {
    red[threadIdx.x] = v;
    __syncthreads();
    for (unsigned int s = BLOCK / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) red[threadIdx.x] = fmaxf(red[threadIdx.x], red[threadIdx.x + s]);
        __syncthreads();
    }
    float r = red[0];
    __syncthreads();
    return r;
}

/* The order of the negative top-k: larger cosine first, then the smaller column (the CPU's
   insertion keeps the earlier of equal values); column -1 means "nothing" and comes last. */
__device__ bool better(float av, i64 ai, float bv, i64 bi) {
    if (ai < 0) return false;
    if (bi < 0) return true;
    return av > bv || (av == bv && ai < bi);
}

/* The best (value, column) over the block; a strict order on distinct columns, so the result
   does not depend on the reduction order. */
__device__ void block_best(float* v, i64* i, float* redv, i64* redi) {
    redv[threadIdx.x] = *v;
    redi[threadIdx.x] = *i;
    __syncthreads();
    for (unsigned int s = BLOCK / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s && better(redv[threadIdx.x + s], redi[threadIdx.x + s], redv[threadIdx.x], redi[threadIdx.x])) {
            redv[threadIdx.x] = redv[threadIdx.x + s];
            redi[threadIdx.x] = redi[threadIdx.x + s];
        }
        __syncthreads();
    }
    *v = redv[0];
    *i = redi[0];
    __syncthreads();
}

/* Margin::apply of src/heads/margin.rs, operation for operation. */
__device__ void apply_margin(float c, const LossArgs& a, float* phi, float* dphi) {
    if (a.kind == 0) {
        *phi = c - a.m;
        *dphi = 1.0f;
        return;
    }
    c = fminf(fmaxf(c, -1.0f), 1.0f);
    if (c > a.threshold) {
        float sn = sqrtf(fmaxf(1.0f - c * c, 1e-12f));
        *phi = c * a.cos_m - sn * a.sin_m;
        *dphi = a.cos_m + c * a.sin_m / sn;
    } else {
        *phi = c - a.fallback;
        *dphi = 1.0f;
    }
}

/* Row i of out (and norms[i]) = row rows[i] of src normalised (its norm, clamped at 1e-12). */
extern "C" __global__ void f2c_gather_normalize(const float* src, const u64* rows, int has_rows, u64 dim, float* out, float* norms) {
    __shared__ float red[BLOCK];
    const u64 i = blockIdx.x;
    const u64 r = has_rows ? rows[i] : i;
    const float* s = src + r * dim;
    float acc = 0.0f;
    for (u64 j = threadIdx.x; j < dim; j += BLOCK) acc += s[j] * s[j];
    const float norm = fmaxf(sqrtf(block_sum(acc, red)), 1e-12f);
    const float inv = 1.0f / norm;
    float* o = out + i * dim;
    for (u64 j = threadIdx.x; j < dim; j += BLOCK) o[j] = s[j] * inv;
    if (threadIdx.x == 0) norms[i] = norm;
}

/* One row of cosines in, dL/dcos out; losses[2i] = weighted CE, losses[2i + 1] = weighted
   negative loss of row i. */
extern "C" __global__ void f2c_margin_loss(float* cos, u64 c, const i64* targets, LossArgs a, float* losses) {
    __shared__ float red[BLOCK];
    __shared__ float redv[BLOCK];
    __shared__ i64 redi[BLOCK];
    const u64 row = blockIdx.x;
    const unsigned int tid = threadIdx.x;
    float* x = cos + row * c;
    const i64 t = targets[row];
    if (t >= 0) {
        const u64 tu = (u64)t;
        float phi, dphi;
        apply_margin(x[tu], a, &phi, &dphi);
        const float s = a.scale;
        /* The reductions below synchronise the block, so every thread has read x[t] before the
           thread owning column t overwrites it. */
        float mx = NEG_FLT_MAX;
        for (u64 j = tid; j < c; j += BLOCK) mx = fmaxf(mx, j == tu ? phi : x[j]);
        mx = block_max(mx, red) * s;
        float acc = 0.0f;
        for (u64 j = tid; j < c; j += BLOCK) acc += expf((j == tu ? phi : x[j]) * s - mx);
        const float sum = block_sum(acc, red);
        const float p_t = expf(phi * s - mx) / sum;
        const float loss = logf(sum) + mx - phi * s;
        const float k = a.ce_weight * s / sum;
        for (u64 j = tid; j < c; j += BLOCK) {
            if (j == tu) x[j] = a.ce_weight * s * (p_t - 1.0f) * dphi;
            else x[j] = expf(x[j] * s - mx) * k;
        }
        if (tid == 0) {
            losses[2 * row] = a.ce_weight * loss;
            losses[2 * row + 1] = 0.0f;
        }
        return;
    }
    /* Negative loss: the k best cosines in the order of `better`, in passes of at most MAXK.
       Each thread keeps the best of its own columns (sorted), then the block merges the threads'
       lists one winner at a time; a later pass only considers columns after the last winner. */
    u64 remaining = (u64)a.neg_k < c ? (u64)a.neg_k : c;
    float lastv = 0.0f;
    i64 lasti = -1;
    float total = 0.0f; /* thread 0's, summed in the winners' (descending) order like the CPU */
    while (remaining > 0) {
        const int kk = remaining < MAXK ? (int)remaining : MAXK;
        float lv[MAXK];
        i64 li[MAXK];
        int cnt = 0;
        for (u64 j = tid; j < c; j += BLOCK) {
            const float v = x[j];
            if (lasti >= 0 && !better(lastv, lasti, v, (i64)j)) continue;
            /* Columns arrive in increasing order, so a tie keeps the earlier one ahead. */
            if (cnt == kk && !(v > lv[kk - 1])) continue;
            int p = cnt < kk ? cnt : kk - 1;
            while (p > 0 && v > lv[p - 1]) {
                lv[p] = lv[p - 1];
                li[p] = li[p - 1];
                --p;
            }
            lv[p] = v;
            li[p] = (i64)j;
            if (cnt < kk) ++cnt;
        }
        int h = 0;
        int exhausted = 0;
        for (int r = 0; r < kk; ++r) {
            float bv = h < cnt ? lv[h] : 0.0f;
            i64 bi = h < cnt ? li[h] : -1;
            block_best(&bv, &bi, redv, redi);
            if (bi < 0) { exhausted = 1; break; } /* the same in every thread: bi is shared */
            if (h < cnt && li[h] == bi) ++h;
            if (tid == 0 && bv > 0.0f) total += bv;
            lastv = bv;
            lasti = bi;
        }
        remaining = exhausted ? 0 : remaining - (u64)kk;
    }
    /* The selected columns are exactly those not after the last winner. */
    for (u64 j = tid; j < c; j += BLOCK) {
        const float v = x[j];
        const bool picked = lasti >= 0 && !better(lastv, lasti, v, (i64)j);
        x[j] = (picked && v > 0.0f) ? a.neg_weight : 0.0f;
    }
    if (tid == 0) {
        losses[2 * row] = 0.0f;
        losses[2 * row + 1] = a.neg_weight * total;
    }
}

/* Normalisation backward and SGD (momentum, weight decay, optional Nesterov) on row rows[i] of
   w and vel, with the gradient, normalised row and norm of row i. */
extern "C" __global__ void f2c_sgd_rows(float* w, float* vel, u64 dim, const u64* rows, int has_rows, const float* g, const float* u, const float* norms, SgdArgs a) {
    __shared__ float red[BLOCK];
    const u64 i = blockIdx.x;
    const u64 r = has_rows ? rows[i] : i;
    const float* gi = g + i * dim;
    const float* ui = u + i * dim;
    float* wr = w + r * dim;
    float* vr = vel + r * dim;
    float acc = 0.0f;
    for (u64 j = threadIdx.x; j < dim; j += BLOCK) acc += gi[j] * ui[j];
    const float gu = block_sum(acc, red);
    const float inv = 1.0f / norms[i];
    for (u64 j = threadIdx.x; j < dim; j += BLOCK) {
        const float grad = (gi[j] - gu * ui[j]) * inv + a.weight_decay * wr[j];
        const float vj = a.momentum * vr[j] + grad;
        vr[j] = vj;
        const float step = a.nesterov ? grad + a.momentum * vj : vj;
        wr[j] -= a.lr * step;
    }
}

/* The SGD step of a zero loss gradient (weight decay and momentum alone: g = weight_decay * w) on
   every element of w whose row, i / dim, is not among the n_skip sorted rows of `skip` (a null
   pointer when n_skip is 0): how PyTorch's SGD moves the rows of a parameter the loss did not
   reach. One thread per element of the len floats of w; a thread finds its row by bisection. */
extern "C" __global__ void f2c_sgd_idle_rows(float* w, float* vel, u64 len, u64 dim, const u64* skip, u64 n_skip, SgdArgs a) {
    const u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= len) return;
    const u64 r = i / dim;
    u64 lo = 0, hi = n_skip;
    while (lo < hi) {
        const u64 mid = lo + (hi - lo) / 2;
        if (skip[mid] < r) lo = mid + 1; else hi = mid;
    }
    if (lo < n_skip && skip[lo] == r) return;
    const float grad = a.weight_decay * w[i];
    const float vj = a.momentum * vel[i] + grad;
    vel[i] = vj;
    const float step = a.nesterov ? grad + a.momentum * vj : vj;
    w[i] -= a.lr * step;
}

/* Row d(i) of dst = row s(i) of src for the n blocks i (destination rows distinct: the host keeps
   the last of repeated ones, the sequential semantics). `rows` holds the n source rows when
   `listed & 1`, then the n destination rows when `listed & 2`; a side not listed is block i's own
   row i, and its indices never cross the bus. */
extern "C" __global__ void f2c_copy_rows(const float* src, const u64* rows, int listed, u64 n, float* dst, u64 dim) {
    const u64 i = blockIdx.x;
    const float* s = src + ((listed & 1) ? rows[i] : i) * dim;
    float* d = dst + ((listed & 2) ? rows[((listed & 1) ? n : 0) + i] : i) * dim;
    for (u64 j = threadIdx.x; j < dim; j += BLOCK) d[j] = s[j];
}

/* Row rows[i] of a and row rows[i] of b swapped (rows distinct: each block owns its row). */
extern "C" __global__ void f2c_swap_rows(float* a, float* b, const u64* rows, u64 dim) {
    const u64 r = rows[blockIdx.x];
    float* x = a + r * dim;
    float* y = b + r * dim;
    for (u64 j = threadIdx.x; j < dim; j += BLOCK) {
        const float t = x[j];
        x[j] = y[j];
        y[j] = t;
    }
}

/* buf[at[i]] = value for i < n (DCQ's label mask), one thread per index. */
extern "C" __global__ void f2c_fill_at(float* buf, const u64* at, u64 n, float value) {
    const u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) buf[at[i]] = value;
}
