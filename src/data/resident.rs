//! Training inputs kept on the device. Uploading every batch costs a copy of B input rows per
//! step (and F²C's two networks read the same rows); when the whole training set fits, it is
//! rendered or decoded once, uploaded once, and each step picks its rows on the device by index,
//! so only the row indices (8 bytes a row) and the head's labels cross per step.
//!
//! The rows are the same floats either way, so a run's numbers do not depend on where its inputs
//! live: [`InputStaging`] is an option of the run, not of the experiment.

use dfdx::prelude::*;

use crate::data::loaders::{Batch, Sample, TrainingIdentities};

/// A batch of input rows on device `D`: (B, floats per sample).
pub type Rows<D> = Tensor<(usize, usize), f32, D>;

/// Largest training set [`InputStaging::Auto`] keeps on the device, in bytes.
pub const AUTO_RESIDENT_LIMIT: u64 = 2 << 30;

/// How a run's training inputs reach the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum InputStaging {
    /// Resident when the training set takes at most 2 GiB (`AUTO_RESIDENT_LIMIT`) and the run
    /// draws at least as many samples as the set holds (an epoch or more); per step otherwise.
    #[default]
    Auto,
    /// The whole training set on the device, whatever its size.
    Resident,
    /// Each batch rendered or decoded on the host and uploaded.
    PerStep,
}

impl InputStaging {
    /// Whether a run keeps a set of `size` on the device, drawing `samples` training samples in
    /// all.
    pub fn resident(self, size: &SetSize, samples: u64) -> bool {
        match self {
            InputStaging::Resident => true,
            InputStaging::PerStep => false,
            InputStaging::Auto => {
                size.bytes() <= AUTO_RESIDENT_LIMIT && samples >= size.instances as u64
            }
        }
    }
}

/// The size of a training set kept on the device, counted without laying it out (the layout's
/// offsets take 8 bytes an identity: 76 MiB at 10⁷ identities, for a run that may not keep it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetSize {
    /// Training instances of the set.
    pub instances: usize,
    /// Two rows per instance (as is, then flipped).
    pub mirrored: bool,
    /// Floats per row.
    pub row_len: usize,
}

impl SetSize {
    /// The size of `set`'s training samples of `row_len` floats, two rows per instance if
    /// `mirrored`.
    pub fn of(set: &(impl TrainingIdentities + ?Sized), mirrored: bool, row_len: usize) -> Self {
        SetSize {
            instances: (0..set.num_train_identities())
                .map(|c| set.instances_of(c))
                .sum(),
            mirrored,
            row_len,
        }
    }

    /// Rows of the resident set: the instances, twice if mirrored.
    pub fn rows(&self) -> usize {
        self.instances << self.mirrored as usize
    }

    /// Bytes of the resident set.
    pub fn bytes(&self) -> u64 {
        4 * self.rows() as u64 * self.row_len as u64
    }
}

/// Where each training sample sits in the resident set: identities in order, each one's
/// instances in order, and, when the data is mirrored in training, each instance as two rows
/// (as is, then flipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResidentLayout {
    /// offsets[c]: instances of the identities before c; offsets[N] is the total.
    offsets: Vec<usize>,
    mirrored: bool,
    row_len: usize,
}

impl ResidentLayout {
    /// The layout of `set`'s training samples of `row_len` floats, two rows per instance if
    /// `mirrored`.
    pub fn new(set: &(impl TrainingIdentities + ?Sized), mirrored: bool, row_len: usize) -> Self {
        let mut offsets = Vec::with_capacity(set.num_train_identities() + 1);
        let mut total = 0;
        offsets.push(0);
        for c in 0..set.num_train_identities() {
            total += set.instances_of(c);
            offsets.push(total);
        }
        ResidentLayout {
            offsets,
            mirrored,
            row_len,
        }
    }

    /// Training instances of the set.
    pub fn instances(&self) -> usize {
        *self.offsets.last().expect("offsets hold at least the 0")
    }

    /// The set's size.
    pub fn size(&self) -> SetSize {
        SetSize {
            instances: self.instances(),
            mirrored: self.mirrored,
            row_len: self.row_len,
        }
    }

    /// Rows of the resident set: the instances, twice if mirrored.
    pub fn rows(&self) -> usize {
        self.size().rows()
    }

    /// Floats per row.
    pub fn row_len(&self) -> usize {
        self.row_len
    }

    /// Bytes of the resident set.
    pub fn bytes(&self) -> u64 {
        self.size().bytes()
    }

    /// The row of `sample`.
    ///
    /// # Panics
    /// If the sample is mirrored and the layout is not (the set holds no flipped rows).
    pub fn row(&self, sample: &Sample) -> usize {
        assert!(
            self.mirrored || !sample.flip,
            "a mirrored sample, but the resident set holds no flipped rows"
        );
        let instance = self.offsets[sample.identity] + sample.instance;
        if self.mirrored {
            2 * instance + sample.flip as usize
        } else {
            instance
        }
    }

    /// Every row's sample, in row order.
    pub fn samples(&self) -> Vec<Sample> {
        let mut out = Vec::with_capacity(self.rows());
        for (identity, w) in self.offsets.windows(2).enumerate() {
            for instance in 0..w[1] - w[0] {
                for flip in [false, true].into_iter().take(1 + self.mirrored as usize) {
                    out.push(Sample {
                        identity,
                        instance,
                        flip,
                    });
                }
            }
        }
        out
    }
}

/// A training set on the device, and how to find a sample's row in it.
pub struct ResidentInputs<D: Device<f32>> {
    layout: ResidentLayout,
    rows: Store<D>,
}

/// Where the resident rows are. On the CPU the device's memory is the host's, and dfdx's gather
/// visits every element through its shape and strides (on ORL's 12,544-float images it made a
/// step slower than uploading): there the rows stay a plain vector and a batch is copied out row
/// by row. Both give the same rows and count the same traffic.
enum Store<D: Device<f32>> {
    Host(Vec<f32>),
    Device(Rows<D>),
}

impl<D: Device<f32>> ResidentInputs<D> {
    /// Uploads `host`, the rows of `layout` in its order (one copy).
    ///
    /// # Panics
    /// If `host` does not hold exactly the layout's rows.
    pub fn upload(dev: &D, layout: ResidentLayout, host: Vec<f32>) -> Self {
        let on_cpu = std::any::TypeId::of::<D>() == std::any::TypeId::of::<Cpu>();
        Self::upload_to(dev, layout, host, !on_cpu)
    }

    fn upload_to(dev: &D, layout: ResidentLayout, host: Vec<f32>, tensor: bool) -> Self {
        assert_eq!(
            host.len(),
            layout.rows() * layout.row_len,
            "the resident set's floats do not match its layout"
        );
        crate::traffic::to_device(4 * host.len());
        let rows = if tensor {
            Store::Device(dev.tensor_from_vec(host, (layout.rows(), layout.row_len)))
        } else {
            Store::Host(host)
        };
        ResidentInputs { layout, rows }
    }

    /// The layout.
    pub fn layout(&self) -> &ResidentLayout {
        &self.layout
    }

    /// The input rows of `batch`, picked on the device: only the row indices are uploaded.
    pub fn gather(&self, dev: &D, batch: &Batch) -> Rows<D> {
        let idx: Vec<usize> = batch.samples.iter().map(|s| self.layout.row(s)).collect();
        crate::traffic::to_device(std::mem::size_of::<usize>() * idx.len());
        let (n, len) = (idx.len(), self.layout.row_len);
        match &self.rows {
            Store::Device(rows) => rows.clone().gather(dev.tensor_from_vec(idx, (n,))),
            Store::Host(rows) => {
                let mut out = Vec::with_capacity(n * len);
                for i in idx {
                    out.extend_from_slice(&rows[i * len..(i + 1) * len]);
                }
                dev.tensor_from_vec(out, (n, len))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counts(Vec<usize>);

    impl TrainingIdentities for Counts {
        fn num_train_identities(&self) -> usize {
            self.0.len()
        }
        fn instances_of(&self, identity: usize) -> usize {
            self.0[identity]
        }
        fn train_label(&self, identity: usize, _instance: usize) -> usize {
            identity
        }
    }

    fn sample(identity: usize, instance: usize, flip: bool) -> Sample {
        Sample {
            identity,
            instance,
            flip,
        }
    }

    #[test]
    fn rows_follow_identities_then_instances_then_flips() {
        let set = Counts(vec![2, 3, 1]);
        let plain = ResidentLayout::new(&set, false, 4);
        assert_eq!((plain.instances(), plain.rows(), plain.bytes()), (6, 6, 96));
        assert_eq!(plain.row(&sample(1, 2, false)), 4);
        let mirrored = ResidentLayout::new(&set, true, 4);
        assert_eq!((mirrored.rows(), mirrored.bytes()), (12, 192));
        assert_eq!(mirrored.row(&sample(1, 2, false)), 8);
        assert_eq!(mirrored.row(&sample(1, 2, true)), 9);
        for layout in [plain, mirrored] {
            let samples = layout.samples();
            assert_eq!(samples.len(), layout.rows());
            for (r, s) in samples.iter().enumerate() {
                assert_eq!(layout.row(s), r);
            }
        }
    }

    #[test]
    #[should_panic(expected = "no flipped rows")]
    fn a_flipped_sample_needs_a_mirrored_layout() {
        ResidentLayout::new(&Counts(vec![2]), false, 1).row(&sample(0, 1, true));
    }

    #[test]
    fn auto_keeps_a_set_that_fits_and_is_drawn_in_full() {
        let size = SetSize::of(&Counts(vec![3; 10]), false, 64);
        assert_eq!(
            size,
            ResidentLayout::new(&Counts(vec![3; 10]), false, 64).size()
        );
        assert!(InputStaging::Auto.resident(&size, 30));
        assert!(!InputStaging::Auto.resident(&size, 29));
        assert!(InputStaging::Resident.resident(&size, 1));
        assert!(!InputStaging::PerStep.resident(&size, 1 << 40));
        let huge = SetSize::of(&Counts(vec![3; 10]), false, 1 << 30);
        assert!(!InputStaging::Auto.resident(&huge, 1 << 40));
    }

    #[test]
    fn gathering_picks_the_batch_rows_and_uploads_only_indices() {
        let dev = Cpu::default();
        let layout = ResidentLayout::new(&Counts(vec![2, 2]), true, 3);
        let host: Vec<f32> = (0..8 * 3).map(|v| v as f32).collect();
        let batch = Batch {
            samples: vec![sample(1, 1, true), sample(0, 0, false)],
            ..Batch::default()
        };
        // The CPU's row copies, and dfdx's gather as on a GPU.
        for tensor in [false, true] {
            let resident = ResidentInputs::upload_to(&dev, layout.clone(), host.clone(), tensor);
            crate::traffic::take();
            let rows = resident.gather(&dev, &batch);
            assert_eq!(rows.shape(), &(2, 3));
            // Row 7 (identity 1, instance 1, flipped), then row 0.
            assert_eq!(rows.as_vec(), vec![21.0, 22.0, 23.0, 0.0, 1.0, 2.0]);
            let moved = crate::traffic::take();
            assert_eq!((moved.to_device_bytes, moved.to_device_copies), (16, 1));
            assert_eq!(moved.to_host_bytes, 0);
        }
    }
}
