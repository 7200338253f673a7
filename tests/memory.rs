//! Memory that grows with the number of training identities N. A global allocator counts the
//! bytes in use and their peak; each head's whole run (data, networks, head, evaluation, as
//! `f2c train` runs it) is run at two N, and the growth of its peak is held to what the head must
//! keep per identity. F²C and DCQ with a pool or queue of fixed size keep almost nothing per
//! identity, which is what lets them train at N = 10⁷ in about 100 MiB; a run that lays out a
//! table per identity (an 8-byte offset each: 76 MiB at 10⁷) fails here.
//!
//! Allocation sizes do not depend on timing or thread count, so the counts repeat exactly; the
//! tests share the allocator and so take turns.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

use f2c::heads::class_pool::Capacity;
use f2c::heads::HeadConfig;
use f2c::train::run::{run_experiment, RunOptions};
use f2c::Experiment;

/// The system allocator, counting the bytes it has handed out and not taken back.
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = IN_USE.fetch_add(bytes, Relaxed) + bytes;
    PEAK.fetch_max(now, Relaxed);
}

// SAFETY: every call is forwarded to `System` with the caller's arguments; the counters do not
// touch the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        IN_USE.fetch_sub(layout.size(), Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match new_size.checked_sub(layout.size()) {
            Some(more) => grew(more),
            None => {
                IN_USE.fetch_sub(layout.size() - new_size, Relaxed);
            }
        }
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// One measurement at a time: a test running beside another would count its bytes.
static TURN: Mutex<()> = Mutex::new(());

/// Allocation noise between two runs that differ only in N: the records' text, the progress of
/// the thread pool. Far below the per-identity regressions these tests look for (0.5 MiB at 10⁵
/// identities for a table of one u8 each).
const SLACK: usize = 64 << 10;

/// A committed experiment cut to 10 steps with no warm-up, at N training identities.
fn experiment(file: &str, n: usize) -> Experiment {
    let mut e = Experiment::load(Path::new(file)).unwrap();
    e.train.steps = 10;
    e.train.warmup_steps = 0;
    e.data.as_mut().expect("synthetic data").train_identities = n;
    e.validate(Path::new(file)).unwrap();
    e
}

/// Peak bytes in use during the run of `exp`, above those in use when it started.
fn run_peak(exp: &Experiment) -> usize {
    let before = IN_USE.load(Relaxed);
    PEAK.store(before, Relaxed);
    run_experiment(exp, &RunOptions::default()).unwrap();
    PEAK.load(Relaxed) - before
}

/// Growth of the run's peak from N = `small` to N = `large` identities; `edit` adjusts the
/// experiment. A first run at `small` is not counted: it warms the thread pool and the caches
/// that live for the whole process.
fn peak_growth(file: &str, small: usize, large: usize, edit: impl Fn(&mut Experiment)) -> usize {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let at = |n| {
        let mut e = experiment(file, n);
        edit(&mut e);
        e
    };
    run_peak(&at(small));
    let (low, high) = (run_peak(&at(small)), run_peak(&at(large)));
    eprintln!("{file}: peak {low} B at N = {small}, {high} B at N = {large}");
    high.saturating_sub(low)
}

/// The growth the head's cost model allows (the floats of state and step buffers the head
/// benchmark counts, [`HeadConfig::cost`]) from N = `small` to `large`, plus what the run keeps
/// beside them: the instance loader's index, one 8-byte count per 16 identities (half a byte
/// each), and, for the heads that choose their columns, up to 64 bytes of bookkeeping per column
/// (Partial FC's lists of sampled classes, F²C's slot map, DCQ's labels).
fn modelled_growth(e: &Experiment, small: usize, large: usize) -> usize {
    let (d, b) = (e.backbone.embedding_dim(), e.train.loaders.batch_size());
    let (low, high) = (e.head.cost(small, d, b), e.head.cost(large, d, b));
    let bookkeeping = match e.head {
        HeadConfig::Fc { .. } => 0,
        _ => 64 * (high.columns - low.columns),
    };
    4 * (high.floats - low.floats) as usize + (large - small) / 2 + bookkeeping
}

/// Asserts that the peak of `file`'s run grows from N = `small` to `large` by no more than
/// [`modelled_growth`]; returns the growth.
fn assert_growth_modelled(
    file: &str,
    small: usize,
    large: usize,
    edit: impl Fn(&mut Experiment),
) -> usize {
    let mut e = experiment(file, small);
    edit(&mut e);
    let allowed = modelled_growth(&e, small, large);
    let grew = peak_growth(file, small, large, edit);
    assert!(
        grew <= allowed + SLACK,
        "{file}: the peak grew by {grew} B from {small} to {large} identities; the model allows \
         {allowed} B"
    );
    grew
}

/// Every head as committed, its pool, queue or sample a fraction of N. Full FC keeps, per class,
/// its centre and momentum and, for the step, the normalised centre, its gradient, its norm and a
/// column of cosines (4·D + 1 + B floats, exactly the model); Partial FC the centre and momentum
/// of every class and the step's buffers for the sampled ones. No head holds a second copy of its
/// state, not while it initialises its centres nor while DCQ's queue grows room for its keys.
#[test]
fn every_head_grows_as_its_cost_model() {
    let (small, large) = (100_000, 200_000);
    for file in [
        "experiments/fc.ron",
        "experiments/pfc.ron",
        "experiments/f2c.ron",
        "experiments/dcq.ron",
    ] {
        let grew = assert_growth_modelled(file, small, large, |_| {});
        let centres = 8 * experiment(file, small).backbone.embedding_dim() * (large - small);
        if file.ends_with("fc.ron") {
            assert!(
                grew >= centres,
                "{file}: the peak grew by {grew} B, less than its centres"
            );
        }
    }
}

/// With a pool or queue of fixed size, F²C and DCQ keep no state per identity: from 10⁵ to 10⁷
/// identities only the instance loader's index grows (DCQ draws identities only and has none).
#[test]
fn fixed_pools_keep_half_a_byte_per_identity() {
    let fixed = |e: &mut Experiment| match &mut e.head {
        HeadConfig::F2c(f) => f.pool.capacity = Capacity::Count(1_000),
        HeadConfig::Dcq(q) => q.queue = Capacity::Count(1_000),
        _ => panic!("not a pool or queue head"),
    };
    let (small, large) = (100_000, 10_000_000);
    for file in ["experiments/f2c.ron", "experiments/dcq.ron"] {
        let mut e = experiment(file, small);
        fixed(&mut e);
        let index = (large - small) / 2;
        assert_eq!(
            modelled_growth(&e, small, large),
            index,
            "{file}: the model keeps state per identity"
        );
        assert_growth_modelled(file, small, large, fixed);
    }
}
