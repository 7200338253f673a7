//! Criterion benches of the heads' training steps at small sizes, for regression tracking; one
//! file per head. The full-size comparison against PyTorch is `f2c bench` (src/bench).

use criterion::{criterion_group, criterion_main};

mod f2c_head;
mod full_fc;
mod partial_fc;

criterion_group!(benches, full_fc::bench, partial_fc::bench, f2c_head::bench);
criterion_main!(benches);
