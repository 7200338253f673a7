//! The full fully-connected margin-softmax head (CosFace / ArcFace): N class centres, normalised,
//! a cosine per class, cross-entropy as logsumexp minus the target logit (no one-hot, so it works
//! with millions of classes), SGD with momentum on the centres. Forward + backward cost 6·B·D·N
//! flops per step. Partial FC ([`super::partial_fc`]) is this head restricted to a row sample.

use rand::SeedableRng;
use rand_chacha::ChaCha12Rng;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;

use super::backend::{Backend, LossSpec, Rows, SgdParams};
use super::{
    check_len, BenchBatch, ClassifierHead, Halves, HeadState, HeadStats, Margin, Method, Naming,
    StepCost, StepInput, StepOutput,
};
use crate::binary::{Parsed, Reader, Writer};
use crate::data::loaders::LoaderConfig;
use crate::error::Result;

/// Centres of up to this many values are drawn from one random stream, as every committed run's
/// were; one stream takes about 7 ns a value, seconds at 10⁶ identities × 128 and beyond.
const ONE_STREAM_MAX: usize = 1 << 26;

/// Above [`ONE_STREAM_MAX`], each run of this many values has a stream of its own.
const CHUNK: usize = 1 << 20;

/// `len` values N(0, 0.01²), insightface's initial centres, from `seed`. Up to `one_stream_max`
/// values: one stream (`StdRng` seeded with `seed`). Above: the seed's ChaCha12 key, stream `c`
/// for chunk `c` of `chunk` values, the chunks drawn in parallel; the values depend on neither
/// the number of threads nor their order.
fn initial_centres(len: usize, seed: u64, one_stream_max: usize, chunk: usize) -> Vec<f32> {
    let normal = Normal::new(0.0f32, 0.01).expect("valid normal");
    if len <= one_stream_max {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        return (0..len).map(|_| normal.sample(&mut rng)).collect();
    }
    let mut host = vec![0.0f32; len];
    host.par_chunks_mut(chunk)
        .enumerate()
        .for_each(|(c, values)| {
            let mut rng = ChaCha12Rng::seed_from_u64(seed);
            rng.set_stream(c as u64);
            values.iter_mut().for_each(|x| *x = normal.sample(&mut rng));
        });
    host
}

/// Writes the centres and their momentum in the checkpoint layout.
pub fn write_state(w: &mut Writer, weight: &[f32], velocity: &[f32]) {
    w.f32s(weight);
    w.f32s(velocity);
}

/// Reads what [`write_state`] wrote.
pub fn read_state(r: &mut Reader) -> Parsed<HeadState> {
    Ok(HeadState::Fc {
        weight: r.f32s()?,
        velocity: r.f32s()?,
    })
}

/// The plan's line: full FC over `classes` identities.
pub fn describe(classes: usize) -> String {
    format!("full FC over N = {classes} centres")
}

/// Full FC's name: `Full FC` in tables, `FC` short.
pub fn run_name(naming: Naming) -> String {
    match naming {
        Naming::Table => Method::Fc.label().into(),
        Naming::Short => "FC".into(),
    }
}

/// Full FC's head-benchmark series.
pub fn series_name() -> String {
    "FC".into()
}

/// The head benchmark's batch for FC and Partial FC: `batch` instances, every row a probe.
pub fn bench_batch(batch: usize) -> BenchBatch {
    BenchBatch {
        loaders: LoaderConfig {
            identities: 0,
            instances: batch,
        },
        halves: Halves::default(),
    }
}

/// A step over all N = `classes` centres.
pub fn cost(classes: usize, dim: usize, batch: usize) -> StepCost {
    cost_over(classes, classes, dim, batch)
}

/// A step over `columns` of the N = `classes` centres (all for FC, the sample for Partial FC):
/// three GEMMs of the B probes (logits, dL/d(emb), dL/d(centres)); the centres and their momentum
/// over N, the normalised rows, their gradient and norms over the columns, and the (B, columns)
/// cosines.
pub fn cost_over(columns: usize, classes: usize, dim: usize, batch: usize) -> StepCost {
    let (n, d, b, cols) = (classes as u64, dim as u64, batch as u64, columns as u64);
    StepCost {
        rows: batch,
        columns,
        evals: 1,
        gemms: 3,
        floats: 2 * n * d + 2 * cols * d + cols + b * cols,
    }
}

/// Class centres with their momentum, plus the work buffers of a step (kept between steps so
/// that no step allocates).
pub struct FullFc<B: Backend> {
    be: B,
    num_classes: usize,
    dim: usize,
    margin: Margin,
    scale: f32,
    /// (N, D) raw centres.
    weight: B::Buf,
    /// (N, D) SGD momentum of the centres.
    velocity: B::Buf,
    work: Option<Work<B>>,
}

/// Scratch buffers sized for `rows` centres and `batch` embeddings.
struct Work<B: Backend> {
    rows: usize,
    batch: usize,
    normed: B::Buf,
    norms: B::Buf,
    cos: B::Buf,
    grad_normed: B::Buf,
    emb: B::Buf,
    grad_emb: B::Buf,
}

impl<B: Backend> Work<B> {
    fn ensure(
        be: &B,
        work: &mut Option<Self>,
        rows: usize,
        batch: usize,
        dim: usize,
    ) -> Result<()> {
        if work
            .as_ref()
            .is_some_and(|w| w.rows >= rows && w.batch >= batch)
        {
            return Ok(());
        }
        let (rows, batch) = work
            .as_ref()
            .map_or((rows, batch), |w| (w.rows.max(rows), w.batch.max(batch)));
        *work = Some(Work {
            rows,
            batch,
            normed: be.zeros(rows * dim)?,
            norms: be.zeros(rows)?,
            cos: be.zeros(batch * rows)?,
            grad_normed: be.zeros(rows * dim)?,
            emb: be.zeros(batch * dim)?,
            grad_emb: be.zeros(batch * dim)?,
        });
        Ok(())
    }
}

impl<B: Backend> FullFc<B> {
    /// N centres of dimension `dim`, initialised N(0, 0.01²) like insightface (drawn in parallel
    /// above [`ONE_STREAM_MAX`] values), zero momentum.
    pub fn new(
        be: B,
        num_classes: usize,
        dim: usize,
        margin: Margin,
        scale: f32,
        seed: u64,
    ) -> Result<Self> {
        let host = initial_centres(num_classes * dim, seed, ONE_STREAM_MAX, CHUNK);
        Ok(FullFc {
            weight: be.upload_owned(host)?,
            velocity: be.zeros(num_classes * dim)?,
            be,
            num_classes,
            dim,
            margin,
            scale,
            work: None,
        })
    }

    /// Number of classes N.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// One full-FC step on L2-normalised embeddings `emb` (B, D) with `labels` in 0..N.
    pub fn step(&mut self, emb: &[f32], labels: &[usize], sgd: &SgdParams) -> Result<StepOutput> {
        let targets: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
        self.step_rows(None, emb, targets, sgd)
    }

    /// The step restricted to the centres `rows` (sorted, distinct; all when `None`); `targets[i]`
    /// indexes into `rows`. Only those rows of the centres and of their momentum are read or written.
    /// The list is uploaded once ([`FullFc::upload_rows`]) for all the step's row operations.
    pub(crate) fn step_rows(
        &mut self,
        rows: Option<&Rows<B::Index>>,
        emb: &[f32],
        targets: Vec<i64>,
        sgd: &SgdParams,
    ) -> Result<StepOutput> {
        let (be, d) = (&self.be, self.dim);
        let b = targets.len();
        let m = rows.map_or(self.num_classes, Rows::len);
        assert_eq!(emb.len(), b * d, "embeddings must be (B, D)");
        let mut slot = self.work.take();
        Work::ensure(be, &mut slot, m, b, d)?;
        let w = slot.as_mut().expect("work buffers");
        w.emb = be.upload(emb)?;
        be.gather_normalize(&self.weight, d, rows, &mut w.normed, &mut w.norms)?;
        be.matmul_abt(b, m, d, &w.emb, &w.normed, &mut w.cos)?; // (B, M) cosines
        let spec = LossSpec::mean_cross_entropy(self.margin, self.scale, b);
        let targets = be.upload_targets(targets)?;
        let loss = be.margin_loss(&mut w.cos, b, m, &targets, &spec)?; // cos now holds dL/dcos
        be.matmul_ab(b, d, m, &w.cos, &w.normed, &mut w.grad_emb, false)?; // (B, D)
        be.matmul_atb(m, d, b, &w.cos, &w.emb, &mut w.grad_normed)?; // (M, D)
        be.sgd_normalized_rows(
            &mut self.weight,
            &mut self.velocity,
            d,
            rows,
            &w.grad_normed,
            &w.normed,
            &w.norms,
            sgd,
        )?;
        let mut grad = be.download(&w.grad_emb)?;
        grad.truncate(b * d);
        self.work = slot;
        Ok(StepOutput {
            loss,
            grad,
            stats: HeadStats::default(),
        })
    }

    /// `rows` on the centres' device, for [`FullFc::step_rows`] and [`FullFc::step_idle_rows`].
    pub(crate) fn upload_rows(&self, rows: Vec<usize>) -> Result<Rows<B::Index>> {
        self.be.upload_rows(rows)
    }

    /// The zero-gradient SGD step (weight decay and momentum alone) of every centre not in
    /// `stepped` (sorted, distinct): the rows a [`FullFc::step_rows`] over `stepped` left alone.
    pub(crate) fn step_idle_rows(
        &mut self,
        stepped: &Rows<B::Index>,
        sgd: &SgdParams,
    ) -> Result<()> {
        self.be
            .sgd_idle_rows(&mut self.weight, &mut self.velocity, self.dim, stepped, sgd)
    }

    /// The current centres, (N, D), on the host (tests and inspection).
    pub fn weights(&self) -> Result<Vec<f32>> {
        self.be.download(&self.weight)
    }

    /// The centres and their momentum, each (N, D), on the host.
    pub fn centres_state(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        Ok((
            self.be.download(&self.weight)?,
            self.be.download(&self.velocity)?,
        ))
    }

    /// Puts back centres and momentum that [`FullFc::centres_state`] gave.
    pub fn load_centres(&mut self, weight: &[f32], velocity: &[f32]) -> Result<()> {
        let n = self.num_classes * self.dim;
        check_len("the centres", weight.len(), n)?;
        check_len("the centres' momentum", velocity.len(), n)?;
        self.weight = self.be.upload(weight)?;
        self.velocity = self.be.upload(velocity)?;
        Ok(())
    }
}

impl<B: Backend> ClassifierHead<B> for FullFc<B> {
    fn step(&mut self, input: &StepInput<'_>) -> Result<StepOutput> {
        FullFc::step(self, input.probe, input.labels, input.sgd)
    }

    /// The centres and their momentum.
    fn state_bytes(&self) -> u64 {
        2 * (self.num_classes * self.dim * 4) as u64
    }

    fn save_state(&self) -> Result<HeadState> {
        let (weight, velocity) = self.centres_state()?;
        Ok(HeadState::Fc { weight, velocity })
    }

    fn load_state(&mut self, state: &HeadState) -> Result<()> {
        match state {
            HeadState::Fc { weight, velocity } => self.load_centres(weight, velocity),
            other => Err(other.wrong_method(Method::Fc)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_centres_are_one_stream_up_to_the_limit_and_thread_independent_above() {
        // Up to the limit: the one stream every committed run was initialised from.
        let normal = Normal::new(0.0f32, 0.01).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let one: Vec<f32> = (0..1000).map(|_| normal.sample(&mut rng)).collect();
        assert_eq!(initial_centres(1000, 3, 1000, 64), one);
        // Above: a stream per chunk, the same values on one thread and on three.
        let on = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| initial_centres(100_003, 3, 1000, 4096))
        };
        let (a, b) = (on(1), on(3));
        assert_eq!(a, b);
        assert_eq!(a.len(), 100_003);
        assert_ne!(a[..4096], a[4096..8192], "chunks draw distinct streams");
        assert_ne!(
            initial_centres(100_003, 4, 1000, 4096),
            a,
            "the seed matters"
        );
        let mean = a.iter().map(|&x| x as f64).sum::<f64>() / a.len() as f64;
        let sd =
            (a.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / a.len() as f64).sqrt();
        assert!(
            mean.abs() < 1e-4 && (sd - 0.01).abs() < 2e-4,
            "N(0, 0.01²): mean {mean}, sd {sd}"
        );
    }
}
