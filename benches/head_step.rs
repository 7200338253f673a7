//! Every case of `f2c bench` (each method's head step, F²C in both of its forms) at 10k and 100k
//! identities, B 256, D 128, on the CPU: a new head is benched as soon as the bench times it.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use f2c::bench::cases;
use f2c::bench::head_step::HeadBench;
use f2c::heads::backend::CpuBackend;

pub fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("head_step");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for n in [10_000usize, 100_000] {
        for case in cases() {
            let name = format!("{}{}-{}", case.head(), case.param(), case.variant());
            let mut h = HeadBench::new(CpuBackend, &case, n, 128, 256, 1).expect("head");
            g.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| h.step().expect("step"))
            });
        }
    }
    g.finish();
}
