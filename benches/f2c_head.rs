//! F²C head step: the peer's form (one direction against row 0) at 10% and 1% pools, and the
//! reference form (two rows, symmetric) at 10%.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use f2c::bench::head_step::{HeadBench, HeadCase};
use f2c::heads::backend::CpuBackend;

pub fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("f2c_step");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let n = 100_000usize;
    for (name, case) in [
        (
            "pool10",
            HeadCase::F2c {
                pool_fraction: 0.1,
                reference: false,
            },
        ),
        (
            "pool1",
            HeadCase::F2c {
                pool_fraction: 0.01,
                reference: false,
            },
        ),
        (
            "pool10_reference",
            HeadCase::F2c {
                pool_fraction: 0.1,
                reference: true,
            },
        ),
    ] {
        let mut h = HeadBench::new(CpuBackend, case, n, 128, 256, 1).expect("head");
        g.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
            b.iter(|| h.step().expect("step"))
        });
    }
    g.finish();
}
