//! Partial FC head step, r = 0.1 (only the sampled centres are read and updated).

use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use f2c::bench::head_step::{HeadBench, HeadCase};
use f2c::heads::backend::CpuBackend;

pub fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("partial_fc_step");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for n in [10_000usize, 100_000] {
        let mut h = HeadBench::new(
            CpuBackend,
            HeadCase::Pfc { sample_rate: 0.1 },
            n,
            128,
            256,
            1,
        )
        .expect("head");
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| h.step().expect("step"))
        });
    }
    g.finish();
}
