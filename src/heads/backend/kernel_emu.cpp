/* Runs the CUDA C of kernels.cu on the CPU, in CUDA's execution model, for kernel_emu.rs.

   A launch of G blocks of T threads runs the blocks one after another; a block's T threads are
   fibers (ucontext) on one host thread, each running the kernel's code until it reaches
   `__syncthreads()` or returns, and the block moves on from a barrier once every thread has reached
   it. `__shared__` variables are function-local statics, shared by the block's threads and reused
   by the next block only once the block is done; threadIdx/blockIdx/blockDim/gridDim are set as the
   fibers switch. A barrier that some threads reach while others have returned (a barrier inside
   divergent code, undefined on a GPU) is reported as an error.

   Each launch runs twice from the same inputs: blocks and, between two barriers, threads in
   increasing order, then both in decreasing order. The two must leave every buffer bit for bit the
   same; where they differ, a thread read what another thread of its block wrote without a barrier
   between them, or two blocks wrote the same place: a race, reported as an error.

   It serves requests on stdin and answers on stdout, all little-endian:
     request:  u32 kernel (index in KERNELS below: kernels.cu's, then the faulty ones), u32 blocks, u32 threads, u32 argument count,
               then each argument as a u8 tag and its payload:
                 0 f32 buffer, 1 u64 buffer, 2 i64 buffer: u64 element count, the elements;
                 3 null pointer; 4 u64 value; 5 i32 value; 6 f32 value;
                 7 struct by value: u32 byte count, the bytes (checked against the kernel's struct);
     answer:   u8 status (0 ok, else an error message follows as u32 length and bytes), then every
               f32 buffer argument in order, as u64 element count and elements.
   End of input ends the program. */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include <functional>
#include <string>
#include <vector>

struct EmuDim3 {
    unsigned int x, y, z;
};
static EmuDim3 threadIdx, blockIdx, blockDim, gridDim;

enum FiberState { READY, AT_BARRIER, DONE };

struct Fiber {
    ucontext_t ctx;
    std::vector<char> stack;
    FiberState state = READY;
};

static ucontext_t g_scheduler;
static Fiber* g_current = nullptr;
static const std::function<void()>* g_body = nullptr;

static void __syncthreads() {
    g_current->state = AT_BARRIER;
    swapcontext(&g_current->ctx, &g_scheduler);
}

static void fiber_entry() {
    (*g_body)();
    g_current->state = DONE;
    /* Returning resumes uc_link: the scheduler. */
}

#define __global__
#define __device__
#define __shared__ static

#include "kernels.cu"

/* Two faulty kernels for the emulator's own tests (kernel_emu.rs): one reads another thread's
   shared-memory write without a barrier between, one has a barrier that half the block skips. */
extern "C" __global__ void emu_faulty_race(float* out) {
    __shared__ float s[BLOCK];
    s[threadIdx.x] = (float)threadIdx.x;
    out[blockIdx.x * blockDim.x + threadIdx.x] = s[(threadIdx.x + 1) % blockDim.x];
}

extern "C" __global__ void emu_faulty_barrier(float* out) {
    if (threadIdx.x % 2) return;
    __syncthreads();
    out[blockIdx.x * blockDim.x + threadIdx.x] = 1.0f;
}

/* Runs `body` as a launch of `blocks` blocks of `threads` threads, in increasing or decreasing
   order; returns an error message, empty when the launch completed. */
static std::string run_launch(unsigned int blocks, unsigned int threads, bool reverse, const std::function<void()>& body) {
    static std::vector<Fiber> fibers;
    if (fibers.size() < threads) fibers.resize(threads);
    g_body = &body;
    blockDim = {threads, 1, 1};
    gridDim = {blocks, 1, 1};
    for (unsigned int bi = 0; bi < blocks; ++bi) {
        blockIdx = {reverse ? blocks - 1 - bi : bi, 0, 0};
        for (unsigned int t = 0; t < threads; ++t) {
            Fiber& f = fibers[t];
            if (f.stack.empty()) f.stack.resize(64 * 1024);
            getcontext(&f.ctx);
            f.ctx.uc_stack.ss_sp = f.stack.data();
            f.ctx.uc_stack.ss_size = f.stack.size();
            f.ctx.uc_link = &g_scheduler;
            makecontext(&f.ctx, fiber_entry, 0);
            f.state = READY;
        }
        for (unsigned int barriers = 0;; ++barriers) {
            unsigned int waiting = 0;
            for (unsigned int i = 0; i < threads; ++i) {
                const unsigned int t = reverse ? threads - 1 - i : i;
                Fiber& f = fibers[t];
                if (f.state == DONE) continue;
                threadIdx = {t, 0, 0};
                g_current = &f;
                swapcontext(&g_scheduler, &f.ctx);
                if (f.state == AT_BARRIER) ++waiting;
            }
            if (waiting == 0) break;
            if (waiting != threads) {
                return "block " + std::to_string(blockIdx.x) + ": barrier " + std::to_string(barriers + 1) +
                       " reached by " + std::to_string(waiting) + " of " + std::to_string(threads) +
                       " threads while the others had returned: __syncthreads() in divergent code";
            }
            for (unsigned int t = 0; t < threads; ++t) fibers[t].state = READY;
        }
    }
    return "";
}

/* ---- the request loop ---- */

struct Arg {
    uint8_t tag = 0;
    std::vector<float> f32;
    std::vector<uint64_t> u64s;
    std::vector<int64_t> i64s;
    std::vector<unsigned char> bytes;
    uint64_t u64 = 0;
    int32_t i32 = 0;
    float f = 0.0f;
};

static bool read_exact(void* dst, size_t n) {
    return fread(dst, 1, n, stdin) == n;
}

template <typename T>
static T read_value() {
    T v;
    if (!read_exact(&v, sizeof v)) {
        fprintf(stderr, "kernel emulator: truncated request\n");
        _Exit(2);
    }
    return v;
}

template <typename T>
static void read_vec(std::vector<T>& v) {
    const uint64_t n = read_value<uint64_t>();
    v.resize(n);
    if (n && !read_exact(v.data(), n * sizeof(T))) {
        fprintf(stderr, "kernel emulator: truncated buffer\n");
        _Exit(2);
    }
}

static void write_bytes(const void* src, size_t n) {
    if (n && fwrite(src, 1, n, stdout) != n) _Exit(2);
}

/* A kernel's arguments, checked as they are taken. */
struct Args {
    std::vector<Arg>& a;
    std::string error;

    Arg* at(size_t i, uint8_t tag, const char* what) {
        if (i >= a.size()) {
            fail(i, what, "missing");
            return nullptr;
        }
        if (a[i].tag != tag && !(a[i].tag == 3 && tag <= 2)) {
            fail(i, what, "wrong type");
            return nullptr;
        }
        return &a[i];
    }
    void fail(size_t i, const char* what, const char* why) {
        if (error.empty()) error = "argument " + std::to_string(i) + " (" + what + "): " + why;
    }
    float* f32(size_t i) {
        Arg* x = at(i, 0, "f32 buffer");
        return x && x->tag == 0 ? x->f32.data() : nullptr;
    }
    const u64* u64p(size_t i) {
        Arg* x = at(i, 1, "u64 buffer");
        return x && x->tag == 1 ? reinterpret_cast<const u64*>(x->u64s.data()) : nullptr;
    }
    const i64* i64p(size_t i) {
        Arg* x = at(i, 2, "i64 buffer");
        return x && x->tag == 2 ? reinterpret_cast<const i64*>(x->i64s.data()) : nullptr;
    }
    u64 u64v(size_t i) {
        Arg* x = at(i, 4, "u64");
        return x ? x->u64 : 0;
    }
    int i32v(size_t i) {
        Arg* x = at(i, 5, "i32");
        return x ? x->i32 : 0;
    }
    float f32v(size_t i) {
        Arg* x = at(i, 6, "f32");
        return x ? x->f : 0.0f;
    }
    template <typename S>
    S record(size_t i) {
        S s;
        memset(&s, 0, sizeof s);
        Arg* x = at(i, 7, "struct");
        if (!x) return s;
        if (x->bytes.size() != sizeof(S)) {
            fail(i, "struct", "its size differs from the kernel's struct");
            return s;
        }
        memcpy(&s, x->bytes.data(), sizeof s);
        return s;
    }
    void count(size_t n) {
        if (a.size() != n) fail(n, "count", "a different number of arguments than the kernel takes");
    }
};

static const char* const KERNELS[] = {
    "f2c_gather_normalize", "f2c_margin_loss", "f2c_sgd_rows", "f2c_copy_rows", "f2c_fill_at", "f2c_swap_rows",
    "f2c_sgd_idle_rows", "emu_faulty_race", "emu_faulty_barrier",
};
static const unsigned int KERNEL_COUNT = sizeof KERNELS / sizeof KERNELS[0];

/* The kernel call with its arguments taken from `a` (checked as they are taken). */
static std::function<void()> bind(uint32_t kernel, Args& a) {
    switch (kernel) {
    case 0: {
        a.count(6);
        const float* src = a.f32(0);
        const u64* rows = a.u64p(1);
        const int has_rows = a.i32v(2);
        const u64 dim = a.u64v(3);
        float* out = a.f32(4);
        float* norms = a.f32(5);
        return [=] { f2c_gather_normalize(src, rows, has_rows, dim, out, norms); };
    }
    case 1: {
        a.count(5);
        float* cos = a.f32(0);
        const u64 c = a.u64v(1);
        const i64* targets = a.i64p(2);
        const LossArgs args = a.record<LossArgs>(3);
        float* losses = a.f32(4);
        return [=] { f2c_margin_loss(cos, c, targets, args, losses); };
    }
    case 2: {
        a.count(9);
        float* w = a.f32(0);
        float* vel = a.f32(1);
        const u64 dim = a.u64v(2);
        const u64* rows = a.u64p(3);
        const int has_rows = a.i32v(4);
        const float* g = a.f32(5);
        const float* u = a.f32(6);
        const float* norms = a.f32(7);
        const SgdArgs args = a.record<SgdArgs>(8);
        return [=] { f2c_sgd_rows(w, vel, dim, rows, has_rows, g, u, norms, args); };
    }
    case 3: {
        a.count(6);
        const float* src = a.f32(0);
        const u64* rows = a.u64p(1);
        const int listed = a.i32v(2);
        const u64 n = a.u64v(3);
        float* dst = a.f32(4);
        const u64 dim = a.u64v(5);
        return [=] { f2c_copy_rows(src, rows, listed, n, dst, dim); };
    }
    case 4: {
        a.count(4);
        float* buf = a.f32(0);
        const u64* at = a.u64p(1);
        const u64 n = a.u64v(2);
        const float value = a.f32v(3);
        return [=] { f2c_fill_at(buf, at, n, value); };
    }
    case 5: {
        a.count(4);
        float* x = a.f32(0);
        float* y = a.f32(1);
        const u64* rows = a.u64p(2);
        const u64 dim = a.u64v(3);
        return [=] { f2c_swap_rows(x, y, rows, dim); };
    }
    case 6: {
        a.count(7);
        float* w = a.f32(0);
        float* vel = a.f32(1);
        const u64 len = a.u64v(2);
        const u64 dim = a.u64v(3);
        const u64* skip = a.u64p(4);
        const u64 n_skip = a.u64v(5);
        const SgdArgs args = a.record<SgdArgs>(6);
        return [=] { f2c_sgd_idle_rows(w, vel, len, dim, skip, n_skip, args); };
    }
    case 7: {
        a.count(1);
        float* out = a.f32(0);
        return [=] { emu_faulty_race(out); };
    }
    default: {
        a.count(1);
        float* out = a.f32(0);
        return [=] { emu_faulty_barrier(out); };
    }
    }
}

/* Runs the launch in both orders (see the top); an error message, empty when it completed alike. */
static std::string run_both_orders(uint32_t kernel, unsigned int blocks, unsigned int threads, std::vector<Arg>& raw) {
    std::vector<Arg> second = raw;
    Args a{raw, ""}, b{second, ""};
    const std::function<void()> forward = bind(kernel, a), backward = bind(kernel, b);
    if (!a.error.empty()) return a.error;
    std::string err = run_launch(blocks, threads, false, forward);
    if (err.empty()) err = run_launch(blocks, threads, true, backward);
    if (!err.empty()) return err;
    for (size_t i = 0; i < raw.size(); ++i) {
        const std::vector<float>& x = raw[i].f32;
        const std::vector<float>& y = second[i].f32;
        for (size_t j = 0; j < x.size(); ++j) {
            if (memcmp(&x[j], &y[j], sizeof(float)) != 0) {
                char msg[320];
                snprintf(msg, sizeof msg,
                         "argument %zu, element %zu: %.9g with blocks and threads in increasing order, %.9g in "
                         "decreasing order: a thread reads what another writes without a barrier between, or "
                         "two blocks write the same place",
                         i, j, x[j], y[j]);
                return msg;
            }
        }
    }
    return "";
}

int main() {
    for (;;) {
        uint32_t header[4];
        const size_t got = fread(header, 1, sizeof header, stdin);
        if (got == 0 && feof(stdin)) return 0;
        if (got != sizeof header) {
            fprintf(stderr, "kernel emulator: truncated request header\n");
            return 2;
        }
        const uint32_t kernel = header[0], blocks = header[1], threads = header[2], count = header[3];
        std::vector<Arg> raw(count);
        for (auto& x : raw) {
            x.tag = read_value<uint8_t>();
            switch (x.tag) {
            case 0: read_vec(x.f32); break;
            case 1: read_vec(x.u64s); break;
            case 2: read_vec(x.i64s); break;
            case 3: break;
            case 4: x.u64 = read_value<uint64_t>(); break;
            case 5: x.i32 = read_value<int32_t>(); break;
            case 6: x.f = read_value<float>(); break;
            case 7: {
                const uint32_t n = read_value<uint32_t>();
                x.bytes.resize(n);
                if (n && !read_exact(x.bytes.data(), n)) return 2;
                break;
            }
            default: fprintf(stderr, "kernel emulator: unknown argument tag %u\n", x.tag); return 2;
            }
        }
        std::string error;
        if (kernel >= KERNEL_COUNT) error = "unknown kernel " + std::to_string(kernel);
        else if (threads == 0 || threads > 1024) error = "threads per block must be 1 to 1024";
        else error = run_both_orders(kernel, blocks, threads, raw);
        if (!error.empty()) {
            const std::string msg = std::string(kernel < KERNEL_COUNT ? KERNELS[kernel] : "?") + ": " + error;
            const uint8_t status = 1;
            const uint32_t len = (uint32_t)msg.size();
            write_bytes(&status, 1);
            write_bytes(&len, 4);
            write_bytes(msg.data(), len);
        } else {
            const uint8_t status = 0;
            write_bytes(&status, 1);
            for (const auto& x : raw) {
                if (x.tag != 0) continue;
                const uint64_t n = x.f32.size();
                write_bytes(&n, 8);
                write_bytes(x.f32.data(), n * sizeof(float));
            }
        }
        fflush(stdout);
    }
}
