//! Decoding off the training thread. The trainer pushes the samples of the next step(s) and pops
//! decoded batches in the order it pushed them; a background thread decodes each batch with rayon
//! meanwhile. Every image lands at its own place in the batch, so the output does not depend on
//! the number of threads or their timing.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use rayon::prelude::*;

use crate::data::images::{FaceImages, Sample};
use crate::error::{Error, Result};

/// Decoded images of a list of samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub samples: Vec<Sample>,
    /// (B, C, 112, 112), row-major, in the order of `samples`.
    pub data: Vec<f32>,
}

/// Decodes `samples` now, in parallel; on failure the error of the first failing sample in list
/// order (so the same error whatever the scheduling).
pub fn load_batch(images: &dyn FaceImages, samples: Vec<Sample>) -> Result<Batch> {
    let len = images.channels().sample_len();
    let mut data = vec![0.0f32; samples.len() * len];
    let results: Vec<Result<()>> = data
        .par_chunks_mut(len.max(1))
        .zip(samples.par_iter())
        .map(|(out, s)| images.load(s.identity, s.instance, s.flip, out))
        .collect();
    results.into_iter().collect::<Result<()>>()?;
    Ok(Batch { samples, data })
}

/// A background decoder holding up to `depth` batches ahead.
pub struct Prefetcher {
    requests: Option<SyncSender<Vec<Sample>>>,
    results: Receiver<Result<Batch>>,
    worker: Option<JoinHandle<()>>,
    pending: usize,
    depth: usize,
}

impl Prefetcher {
    /// Starts the background thread for `images`; at most `depth` (≥ 1) batches are pushed and
    /// not yet popped at any time.
    pub fn new(images: Arc<dyn FaceImages>, depth: usize) -> Self {
        let depth = depth.max(1);
        let (req_tx, req_rx) = sync_channel::<Vec<Sample>>(depth);
        let (res_tx, res_rx) = sync_channel(depth);
        let worker = std::thread::Builder::new()
            .name("f2c-prefetch".into())
            .spawn(move || {
                for samples in req_rx {
                    if res_tx.send(load_batch(&*images, samples)).is_err() {
                        break;
                    }
                }
            })
            .expect("spawning the prefetch thread");
        Prefetcher {
            requests: Some(req_tx),
            results: res_rx,
            worker: Some(worker),
            pending: 0,
            depth,
        }
    }

    /// Queues a batch for decoding; returns at once.
    pub fn push(&mut self, samples: Vec<Sample>) -> Result<()> {
        if self.pending >= self.depth {
            return Err(Error::Other(format!(
                "prefetcher already holds {} batches (its depth); pop one before pushing another",
                self.depth
            )));
        }
        self.requests
            .as_ref()
            .unwrap()
            .send(samples)
            .map_err(|_| Error::Other("the prefetch thread stopped".into()))?;
        self.pending += 1;
        Ok(())
    }

    /// The oldest pushed batch, waiting for it if it is still being decoded.
    pub fn pop(&mut self) -> Result<Batch> {
        if self.pending == 0 {
            return Err(Error::Other("pop without a pushed batch".into()));
        }
        self.pending -= 1;
        self.results
            .recv()
            .map_err(|_| Error::Other("the prefetch thread stopped".into()))?
    }

    /// Batches pushed and not yet popped.
    pub fn pending(&self) -> usize {
        self.pending
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        // Closing the request channel ends the worker's loop; drain so it is not blocked sending.
        self.requests = None;
        while self.results.recv().is_ok() {}
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::images::{test_images::pgm, Channels, ImageFolder};

    #[test]
    fn batches_come_back_in_push_order_equal_to_direct_loads() {
        let dir = tempfile::tempdir().unwrap();
        for id in 0..3 {
            let d = dir.path().join(format!("p{id}"));
            std::fs::create_dir(&d).unwrap();
            for k in 0..4 {
                let img = pgm(112, 112, |x, y| ((x + 2 * y + 40 * id + 9 * k) % 256) as u8);
                std::fs::write(d.join(format!("{k}.pgm")), img).unwrap();
            }
        }
        let images: Arc<dyn FaceImages> =
            Arc::new(ImageFolder::open(dir.path(), Channels::Grey).unwrap());
        let batches: Vec<Vec<Sample>> = (0..5)
            .map(|b| {
                (0..6)
                    .map(|j| Sample {
                        identity: (b + j) % 3,
                        instance: (b * j) % 4,
                        flip: j % 2 == 1,
                    })
                    .collect()
            })
            .collect();
        let mut p = Prefetcher::new(images.clone(), 2);
        p.push(batches[0].clone()).unwrap();
        p.push(batches[1].clone()).unwrap();
        assert!(p.push(batches[2].clone()).is_err(), "depth 2");
        for b in 0..5 {
            let got = p.pop().unwrap();
            if b + 2 < 5 {
                p.push(batches[b + 2].clone()).unwrap();
            }
            let want = load_batch(&*images, batches[b].clone()).unwrap();
            assert_eq!(got, want);
            let mut one = vec![0.0; Channels::Grey.sample_len()];
            let s = batches[b][3];
            images
                .load(s.identity, s.instance, s.flip, &mut one)
                .unwrap();
            assert_eq!(&got.data[3 * one.len()..4 * one.len()], &one[..]);
        }
        assert!(p.pop().is_err());

        // Errors travel back with their batch.
        p.push(vec![Sample {
            identity: 9,
            instance: 0,
            flip: false,
        }])
        .unwrap();
        assert!(p
            .pop()
            .unwrap_err()
            .to_string()
            .contains("identity 9 out of range"));
    }
}
