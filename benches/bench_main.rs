//! Criterion benches of the heads' training steps at small sizes, for regression tracking. The
//! full-size comparison against PyTorch is `f2c bench` (src/bench).

use criterion::{criterion_group, criterion_main};

mod head_step;

criterion_group!(benches, head_step::bench);
criterion_main!(benches);
