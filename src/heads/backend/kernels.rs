//! The host side of the row kernels in `kernels.cu`, shared by the two places that launch them:
//! the CUDA backend (`cuda.rs`, on a GPU) and the kernel emulator (`kernel_emu.rs`, on the CPU).
//! For each kernel, a plan checks the operands, prepares what the kernel reads (row indices as
//! `u64`, the loss's and the optimiser's constants in the kernel's struct layout) and says how many
//! blocks to launch; the launcher only passes it on. The products are planned the same way, as the
//! column-major `sgemm` calls cuBLAS receives. So the emulator runs the very checks and arguments
//! a GPU gets.

use super::{LossSpec, SgdParams};
use crate::heads::Margin;

/// Threads per block of every row kernel (a power of two: the tree reductions halve it).
pub(super) const BLOCK: u32 = 256;
/// Threads per block of the element kernel `f2c_fill_at` (cudarc's `for_num_elems`).
pub(super) const FILL_BLOCK: u32 = 1024;
/// The kernels, in the order the emulator numbers them.
pub(super) const KERNELS: &[&str] = &[
    "f2c_gather_normalize",
    "f2c_margin_loss",
    "f2c_sgd_rows",
    "f2c_copy_rows",
    "f2c_fill_at",
    "f2c_swap_rows",
    "f2c_sgd_idle_rows",
];

/// The kernels' CUDA C.
pub(super) const KERNEL_SRC: &str = include_str!("kernels.cu");

/// The kernels' launch parameters of the loss, laid out like the CUDA `struct LossArgs`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct LossArgs {
    pub kind: i32,
    pub m: f32,
    pub cos_m: f32,
    pub sin_m: f32,
    pub threshold: f32,
    pub fallback: f32,
    pub scale: f32,
    pub ce_weight: f32,
    pub neg_k: i32,
    pub neg_weight: f32,
}

impl LossArgs {
    /// The margin's constants computed on the host with the same f32 expressions as
    /// [`Margin::apply`], so that the kernel takes the same ArcFace branch as the CPU.
    pub fn new(spec: &LossSpec) -> Self {
        let (kind, m, cos_m, sin_m, threshold, fallback) = match spec.margin {
            Margin::CosFace(m) => (0, m, 0.0, 0.0, 0.0, 0.0),
            Margin::ArcFace(m) => {
                let (sm, cm) = m.sin_cos();
                let pi = std::f32::consts::PI;
                (1, m, cm, sm, (pi - m).cos(), m * (pi - m).sin())
            }
        };
        LossArgs {
            kind,
            m,
            cos_m,
            sin_m,
            threshold,
            fallback,
            scale: spec.scale,
            ce_weight: spec.ce_weight,
            neg_k: i32::try_from(spec.neg_k).unwrap_or(i32::MAX),
            neg_weight: spec.neg_weight,
        }
    }

    /// The struct's bytes as the kernel reads them (the emulator's argument).
    pub fn to_bytes(self) -> Vec<u8> {
        let words = [
            self.kind.to_le_bytes(),
            self.m.to_le_bytes(),
            self.cos_m.to_le_bytes(),
            self.sin_m.to_le_bytes(),
            self.threshold.to_le_bytes(),
            self.fallback.to_le_bytes(),
            self.scale.to_le_bytes(),
            self.ce_weight.to_le_bytes(),
            self.neg_k.to_le_bytes(),
            self.neg_weight.to_le_bytes(),
        ];
        words.concat()
    }
}

/// SGD settings laid out like the CUDA `struct SgdArgs`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct SgdArgs {
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    pub nesterov: i32,
}

impl SgdArgs {
    pub fn new(sgd: &SgdParams) -> Self {
        SgdArgs {
            lr: sgd.lr,
            momentum: sgd.momentum,
            weight_decay: sgd.weight_decay,
            nesterov: sgd.nesterov as i32,
        }
    }

    /// The struct's bytes as the kernel reads them (the emulator's argument).
    pub fn to_bytes(self) -> Vec<u8> {
        let words = [
            self.lr.to_le_bytes(),
            self.momentum.to_le_bytes(),
            self.weight_decay.to_le_bytes(),
            self.nesterov.to_le_bytes(),
        ];
        words.concat()
    }
}

/// Row indices as the kernels read them.
pub(super) fn indices(rows: &[usize]) -> Vec<u64> {
    rows.iter().map(|&r| r as u64).collect()
}

/// Blocks for one block per row: the grid's x dimension.
pub(super) fn grid_rows(rows: usize) -> u32 {
    u32::try_from(rows)
        .ok()
        .filter(|&r| r < i32::MAX as u32)
        .expect("row count fits a CUDA grid")
}

/// The plan of [`super::Backend::gather_normalize`]: its blocks, one per listed row (all rows
/// when `rows` is `None`, with a null index pointer the kernel does not read; a listed row list
/// is on the device already, [`super::Rows`]); `None` when there is nothing to do.
pub(super) fn gather_normalize(
    src_len: usize,
    dim: usize,
    rows: Option<&[usize]>,
    out_len: usize,
    norms_len: usize,
) -> Option<u32> {
    let count = rows.map_or(src_len / dim.max(1), |r| r.len());
    assert!(
        out_len >= count * dim && norms_len >= count,
        "gather_normalize output too small"
    );
    if count == 0 || dim == 0 {
        return None;
    }
    if let Some(rows) = rows {
        assert!(
            rows.iter().all(|&r| (r + 1) * dim <= src_len),
            "gather_normalize row out of range"
        );
    }
    Some(grid_rows(count))
}

/// The plan of [`super::Backend::sgd_normalized_rows`] for `w` of `w_len` floats and its
/// velocity of `vel_len`: its blocks, as [`gather_normalize`]'s; `None` when there is nothing
/// to do.
#[allow(clippy::too_many_arguments)]
pub(super) fn sgd_rows(
    w_len: usize,
    vel_len: usize,
    dim: usize,
    rows: Option<&[usize]>,
    grad_len: usize,
    wn_len: usize,
    norms_len: usize,
) -> Option<u32> {
    let count = rows.map_or(w_len / dim.max(1), |r| r.len());
    assert!(
        vel_len == w_len && grad_len >= count * dim && wn_len >= count * dim && norms_len >= count,
        "sgd_normalized_rows shapes"
    );
    if count == 0 || dim == 0 {
        return None;
    }
    if let Some(rows) = rows {
        // Distinct rows: each block owns its row of w and vel (the CPU backend's promise too).
        debug_assert!(
            rows.windows(2).all(|p| p[0] < p[1]),
            "rows must be sorted and distinct"
        );
        assert!(
            rows.iter().all(|&r| (r + 1) * dim <= w_len),
            "sgd_normalized_rows row out of range"
        );
    }
    Some(grid_rows(count))
}

/// `f2c_margin_loss`: one block per row, the constants, and room for two loss parts per row (the
/// targets are on the device already, [`super::Targets`]).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct MarginLossPlan {
    pub blocks: u32,
    pub args: LossArgs,
    pub losses: usize,
}

/// The plan of [`super::Backend::margin_loss`]; `None` for no rows.
pub(super) fn margin_loss(
    cos_len: usize,
    b: usize,
    c: usize,
    targets: &[i64],
    spec: &LossSpec,
) -> Option<MarginLossPlan> {
    assert!(cos_len >= b * c && targets.len() == b, "margin_loss shapes");
    assert!(
        targets.iter().all(|&t| t < c as i64),
        "margin_loss target out of range"
    );
    (b > 0).then(|| MarginLossPlan {
        blocks: grid_rows(b),
        args: LossArgs::new(spec),
        losses: 2 * b,
    })
}

/// The kernel's per-row loss parts (CE, negative) summed in row order, in `f64`, as the CPU
/// backend folds its own.
pub(super) fn sum_loss_parts(parts: &[f32]) -> super::LossParts {
    parts
        .chunks(2)
        .fold(super::LossParts::default(), |acc, p| super::LossParts {
            ce: acc.ce + p[0] as f64,
            neg: acc.neg + p[1] as f64,
        })
}

/// `f2c_copy_rows`: one block per distinct destination row, and one index list for both sides.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct CopyPlan {
    pub blocks: u32,
    /// The source rows, then the destination rows, each side only where it is not `0, 1, 2, …`
    /// (the identity, which the kernel computes); `None` when neither side is listed.
    pub rows: Option<Vec<u64>>,
    /// Bit 0: the source rows are listed; bit 1: the destination rows are.
    pub listed: i32,
    /// Rows copied.
    pub n: u64,
}

/// The plan of [`super::Backend::copy_rows`]; `None` when there is nothing to copy.
pub(super) fn copy_rows(
    src_len: usize,
    src_rows: &[usize],
    dst_len: usize,
    dst_rows: &[usize],
    dim: usize,
) -> Option<CopyPlan> {
    assert_eq!(
        src_rows.len(),
        dst_rows.len(),
        "copy_rows index lengths differ"
    );
    assert!(
        src_rows.iter().all(|&r| (r + 1) * dim <= src_len),
        "copy_rows source row out of range"
    );
    assert!(
        dst_rows.iter().all(|&r| (r + 1) * dim <= dst_len),
        "copy_rows destination row out of range"
    );
    if src_rows.is_empty() || dim == 0 {
        return None;
    }
    let (s, d) = last_writes(src_rows, dst_rows);
    let identity = |rows: &[usize]| rows.iter().enumerate().all(|(i, &r)| r == i);
    let (src_listed, dst_listed) = (!identity(&s), !identity(&d));
    let rows: Vec<u64> = [(src_listed, &s), (dst_listed, &d)]
        .into_iter()
        .filter(|(listed, _)| *listed)
        .flat_map(|(_, r)| indices(r))
        .collect();
    Some(CopyPlan {
        blocks: grid_rows(s.len()),
        rows: (!rows.is_empty()).then_some(rows),
        listed: i32::from(src_listed) | i32::from(dst_listed) << 1,
        n: s.len() as u64,
    })
}

/// The (source, destination) pairs of a row copy with each destination row kept once, at its last
/// occurrence: a sequential copy lets the later write win, parallel blocks would race.
fn last_writes(src_rows: &[usize], dst_rows: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let mut seen = std::collections::HashSet::with_capacity(dst_rows.len());
    let mut pairs: Vec<(usize, usize)> = src_rows
        .iter()
        .zip(dst_rows)
        .rev()
        .filter(|(_, &d)| seen.insert(d))
        .map(|(&s, &d)| (s, d))
        .collect();
    pairs.reverse();
    pairs.into_iter().unzip()
}

/// The plan of [`super::Backend::swap_rows`] between buffers of `a_len` and `b_len` floats: its
/// blocks, one per row (their list is on the device already, [`super::Rows`]); `None` when there
/// is nothing to swap.
pub(super) fn swap_rows(a_len: usize, b_len: usize, rows: &[usize], dim: usize) -> Option<u32> {
    assert!(
        rows.iter().all(|&r| (r + 1) * dim <= a_len.min(b_len)),
        "swap_rows row out of range"
    );
    let mut sorted = rows.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    // A row listed twice would be swapped back sequentially, and raced over by two blocks.
    assert_eq!(sorted.len(), rows.len(), "swap_rows rows must be distinct");
    if rows.is_empty() || dim == 0 {
        return None;
    }
    Some(grid_rows(rows.len()))
}

/// `f2c_sgd_idle_rows`: one thread per element of the centres, and how many rows it skips (their
/// list is on the device already, [`super::Rows`]).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct IdlePlan {
    pub blocks: u32,
    pub len: u64,
    /// How many rows are skipped (0: the kernel reads no index).
    pub skipped: u64,
}

/// The plan of [`super::Backend::sgd_idle_rows`] over `w` of `w_len` floats and its velocity of
/// `vel_len`; `None` when there is nothing to do.
pub(super) fn sgd_idle_rows(
    w_len: usize,
    vel_len: usize,
    dim: usize,
    skip: &[usize],
) -> Option<IdlePlan> {
    assert_eq!(
        w_len, vel_len,
        "sgd_idle_rows: centres and momentum differ in size"
    );
    // The kernel bisects the list: it must be sorted, and a row listed twice is a caller's slip.
    assert!(
        skip.windows(2).all(|p| p[0] < p[1]),
        "sgd_idle_rows: skipped rows must be sorted and distinct"
    );
    if dim == 0 || w_len == 0 {
        return None;
    }
    assert!(
        skip.iter().all(|&r| (r + 1) * dim <= w_len),
        "sgd_idle_rows row out of range"
    );
    let blocks = u32::try_from(w_len.div_ceil(FILL_BLOCK as usize))
        .ok()
        .filter(|&b| b < i32::MAX as u32)
        .expect("element count fits a CUDA grid");
    Some(IdlePlan {
        blocks,
        len: w_len as u64,
        skipped: skip.len() as u64,
    })
}

/// An operand's operation in a column-major `sgemm`: as stored, or transposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    N,
    T,
}

/// The three row-major products of [`super::Backend`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Product {
    /// C (m×n) = A (m×k) · Bᵀ, with B stored (n×k).
    Abt,
    /// C (m×n) = A (m×k) · B (k×n), added to C when accumulating.
    Ab,
    /// C (m×n) = Aᵀ · B, with A stored (k×m) and B (k×n).
    Atb,
}

impl Product {
    fn name(self) -> &'static str {
        match self {
            Product::Abt => "matmul_abt",
            Product::Ab => "matmul_ab",
            Product::Atb => "matmul_atb",
        }
    }
}

/// One column-major `sgemm`, with cuBLAS's arguments in cuBLAS's order (α is 1):
/// C (m×n, leading dimension ldc) = op_a(A) · op_b(B) + β·C, where A (leading dimension lda) is
/// the **row-major product's B** and B (ldb) is its A. A row-major (r×c) matrix is the
/// column-major (c×r) transpose in the same memory, so the row-major C = A·B is computed as the
/// column-major Cᵀ = Bᵀ·Aᵀ: operands swapped, m and n exchanged. With β = 0, C is not read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Sgemm {
    pub transa: Op,
    pub transb: Op,
    pub m: i32,
    pub n: i32,
    pub k: i32,
    pub lda: i32,
    pub ldb: i32,
    pub ldc: i32,
    pub beta: f32,
}

/// What a product asks of the device.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum GemmPlan {
    /// An empty C (m or n is 0), or k = 0 while accumulating: nothing to do.
    Nothing,
    /// k = 0: C's first `len` floats become zeros (cuBLAS is not called with an empty k).
    Zero(usize),
    /// One `sgemm` with the row-major product's B as its A and the product's A as its B.
    Sgemm(Sgemm),
}

/// The plan of one row-major product, for operands of `a_len`, `b_len` and `c_len` floats (the
/// heads' work buffers may be longer than their matrices). Errs when a dimension exceeds
/// cuBLAS's 32-bit sizes.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm(
    product: Product,
    m: usize,
    n: usize,
    k: usize,
    a_len: usize,
    b_len: usize,
    c_len: usize,
    accumulate: bool,
) -> Result<GemmPlan, String> {
    assert!(
        a_len >= m * k && b_len >= n * k && c_len >= m * n,
        "{} operands too small",
        product.name()
    );
    if m == 0 || n == 0 || (k == 0 && accumulate) {
        return Ok(GemmPlan::Nothing);
    }
    if k == 0 {
        return Ok(GemmPlan::Zero(m * n));
    }
    // The operation and leading dimension of the product's B and A in column-major terms.
    let (b_op, a_op) = match product {
        // B's memory is column-major Bᵀ (k×n, ld k): transposed. A's is Aᵀ (k×m, ld k): as is.
        Product::Abt => ((Op::T, k), (Op::N, k)),
        // B's memory is column-major Bᵀ (n×k, ld n), A's is Aᵀ (k×m, ld k): both as is.
        Product::Ab => ((Op::N, n), (Op::N, k)),
        // B's memory is column-major Bᵀ (n×k, ld n): as is. A (k×m) is column-major Aᵀ (m×k,
        // ld m): transposed, giving the A of Cᵀ = Bᵀ·A.
        Product::Atb => ((Op::N, n), (Op::T, m)),
    };
    let int = |x: usize| {
        i32::try_from(x).map_err(|_| format!("matrix dimension {x} exceeds cuBLAS's 32-bit sizes"))
    };
    Ok(GemmPlan::Sgemm(Sgemm {
        transa: b_op.0,
        transb: a_op.0,
        m: int(n)?,
        n: int(m)?,
        k: int(k)?,
        lda: int(b_op.1)?,
        ldb: int(a_op.1)?,
        ldc: int(n)?,
        beta: if accumulate { 1.0 } else { 0.0 },
    }))
}

/// `f2c_fill_at`: one thread per index, in blocks of [`FILL_BLOCK`].
#[derive(Debug, Clone, PartialEq)]
pub(super) struct FillPlan {
    pub blocks: u32,
    pub at: Vec<u64>,
}

/// The plan of [`super::Backend::fill_at`] on a buffer of `len` floats; `None` for no index.
pub(super) fn fill_at(len: usize, at: &[usize]) -> Option<FillPlan> {
    if at.is_empty() {
        return None;
    }
    assert!(at.iter().all(|&i| i < len), "fill_at index out of range");
    let blocks = u32::try_from(at.len().div_ceil(FILL_BLOCK as usize))
        .expect("index count fits a CUDA grid");
    Some(FillPlan {
        blocks,
        at: indices(at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_constants_match_the_rust_side() {
        assert!(KERNEL_SRC.contains(&format!("#define BLOCK {BLOCK}\n")));
        assert!(
            BLOCK.is_power_of_two(),
            "the tree reductions halve the block"
        );
        for k in KERNELS {
            assert!(
                KERNEL_SRC.contains(&format!("extern \"C\" __global__ void {k}(")),
                "{k}"
            );
        }
        // Ten 4-byte fields and four, as in the CUDA structs.
        assert_eq!(std::mem::size_of::<LossArgs>(), 40);
        assert_eq!(std::mem::size_of::<SgdArgs>(), 16);
        let spec = LossSpec::mean_cross_entropy(Margin::CosFace(0.35), 30.0, 4);
        assert_eq!(LossArgs::new(&spec).to_bytes().len(), 40);
    }

    #[test]
    fn arcface_constants_by_hand() {
        // m = 0.5: cos m = 0.877583, sin m = 0.479426, cos(π − 0.5) = −0.877583,
        // m·sin(π − m) = 0.5·0.479426 = 0.239713.
        let spec = LossSpec {
            margin: Margin::ArcFace(0.5),
            scale: 64.0,
            ce_weight: 0.5,
            neg_k: 3,
            neg_weight: 0.1,
        };
        let a = LossArgs::new(&spec);
        assert_eq!((a.kind, a.neg_k), (1, 3));
        for (got, want) in [
            (a.cos_m, 0.877_583),
            (a.sin_m, 0.479_426),
            (a.threshold, -0.877_583),
            (a.fallback, 0.239_713),
        ] {
            assert!((got - want).abs() < 1e-6, "{a:?}");
        }
        // The branch constants reproduce Margin::apply at a point on each side of the threshold.
        for c in [0.6f32, -0.95] {
            let (phi, _) = spec.margin.apply(c);
            let mine = if c > a.threshold {
                c * a.cos_m - (1.0 - c * c).max(1e-12).sqrt() * a.sin_m
            } else {
                c - a.fallback
            };
            assert_eq!(phi, mine, "c = {c}");
        }
        let cos = LossArgs::new(&LossSpec {
            margin: Margin::CosFace(0.35),
            ..spec
        });
        assert_eq!((cos.kind, cos.m), (0, 0.35));
    }

    #[test]
    fn repeated_destination_rows_keep_the_last_write() {
        // dst 4 ← src 0, then dst 2 ← src 1, then dst 4 ← src 3: the copy of src 3 wins row 4.
        let (s, d) = last_writes(&[0, 1, 3], &[4, 2, 4]);
        assert_eq!((s, d), (vec![1, 3], vec![2, 4]));
        assert_eq!(last_writes(&[5, 6], &[1, 0]), (vec![5, 6], vec![1, 0]));
        let plan = copy_rows(8, &[0, 1, 3], 10, &[4, 2, 4], 2).unwrap();
        assert_eq!(
            (plan.rows, plan.listed, plan.n),
            (Some(vec![1, 3, 2, 4]), 3, 2)
        );
    }

    #[test]
    fn a_side_copied_in_order_is_not_listed() {
        // Into a work buffer, rows 0, 1, 2 in order: only the sources cross.
        let save = copy_rows(20, &[7, 3, 9], 6, &[0, 1, 2], 2).unwrap();
        assert_eq!(
            (save.rows, save.listed, save.n),
            (Some(vec![7, 3, 9]), 1, 3)
        );
        // And back: only the destinations.
        let back = copy_rows(6, &[0, 1, 2], 20, &[7, 3, 9], 2).unwrap();
        assert_eq!((back.rows, back.listed), (Some(vec![7, 3, 9]), 2));
        // Both in order: nothing crosses but the launch.
        let both = copy_rows(6, &[0, 1], 6, &[0, 1], 2).unwrap();
        assert_eq!((both.rows, both.listed, both.blocks), (None, 0, 2));
        // Not the identity once the later of a repeated destination wins: dst [1] ← src 1.
        let kept = copy_rows(6, &[0, 1], 6, &[1, 1], 2).unwrap();
        assert_eq!((kept.rows, kept.listed), (Some(vec![1, 1]), 3));
    }

    #[test]
    fn plans_launch_one_block_per_row_or_per_1024_indices() {
        assert_eq!(gather_normalize(12, 4, Some(&[2, 0]), 8, 2), Some(2));
        assert_eq!(gather_normalize(12, 4, None, 12, 3), Some(3));
        assert_eq!(gather_normalize(12, 4, Some(&[]), 0, 0), None);
        assert_eq!(fill_at(5000, &[0; 1025]).unwrap().blocks, 2);
        assert_eq!(fill_at(5000, &[]), None);
        let m = margin_loss(
            6,
            2,
            3,
            &[1, -1],
            &LossSpec::mean_cross_entropy(Margin::CosFace(0.35), 30.0, 2),
        )
        .unwrap();
        assert_eq!((m.blocks, m.losses), (2, 4));
        assert_eq!(swap_rows(12, 16, &[2, 0], 4), Some(2));
        assert_eq!(swap_rows(12, 16, &[], 4), None);
    }

    #[test]
    #[should_panic(expected = "swap_rows rows must be distinct")]
    fn a_row_swapped_twice_is_refused() {
        swap_rows(12, 12, &[1, 2, 1], 4);
    }

    #[test]
    fn products_are_planned_as_transposed_column_major_sgemms() {
        let plan = |p, accumulate| gemm(p, 2, 3, 4, 8, 12, 6, accumulate).unwrap();
        let sgemm = |transa, transb, lda, ldb, beta| {
            GemmPlan::Sgemm(Sgemm {
                transa,
                transb,
                m: 3,
                n: 2,
                k: 4,
                lda,
                ldb,
                ldc: 3,
                beta,
            })
        };
        assert_eq!(plan(Product::Abt, false), sgemm(Op::T, Op::N, 4, 4, 0.0));
        assert_eq!(plan(Product::Ab, true), sgemm(Op::N, Op::N, 3, 4, 1.0));
        assert_eq!(plan(Product::Atb, false), sgemm(Op::N, Op::T, 3, 2, 0.0));
        // Empty shapes never reach cuBLAS.
        assert_eq!(
            gemm(Product::Ab, 2, 3, 0, 0, 0, 6, false),
            Ok(GemmPlan::Zero(6))
        );
        assert_eq!(
            gemm(Product::Ab, 2, 3, 0, 0, 0, 6, true),
            Ok(GemmPlan::Nothing)
        );
        assert_eq!(
            gemm(Product::Abt, 0, 3, 4, 0, 12, 0, false),
            Ok(GemmPlan::Nothing)
        );
        let big = 1usize << 31;
        let err = gemm(Product::Abt, 1, big, 1, 1, big, big, false).unwrap_err();
        assert!(err.contains("exceeds cuBLAS's 32-bit sizes"), "{err}");
    }
}
