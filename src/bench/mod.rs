//! Head-step efficiency benchmark.
