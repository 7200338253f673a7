//! Host↔device traffic of the training step, counted where the code moves data.
//!
//! Every place where this crate hands host memory to a device or reads a device buffer back
//! reports the bytes here: the networks' input uploads and embedding downloads, the gradient
//! handed back to the probe's tape, the convolutions' gather indices, and every host-side argument
//! or result of a head's [`crate::heads::backend::Backend`] call (through
//! [`crate::heads::backend::Metered`]). The counts are made by the same code on every device, so
//! a CPU run counts the bytes a GPU run moves over PCIe (on the CPU they are memory copies).
//!
//! Not counted: dfdx's own small uploads inside its CUDA kernels (shape and stride tables of
//! broadcasts and reductions, the ones that seed a backward pass), which happen out of this
//! crate's sight.
//!
//! The counters are per thread: a run trains on one thread, and runs trained side by side
//! (`ablate --jobs N`) do not mix their counts.

use std::cell::Cell;

/// Bytes and copies in each direction since the counters were last taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Traffic {
    /// Bytes copied from host memory to the device.
    pub to_device_bytes: u64,
    /// Copies from host memory to the device.
    pub to_device_copies: u64,
    /// Bytes copied from the device to host memory.
    pub to_host_bytes: u64,
    /// Copies from the device to host memory.
    pub to_host_copies: u64,
}

impl Traffic {
    /// Bytes in both directions.
    pub fn bytes(&self) -> u64 {
        self.to_device_bytes + self.to_host_bytes
    }

    /// Copies in both directions.
    pub fn copies(&self) -> u64 {
        self.to_device_copies + self.to_host_copies
    }

    /// "`x` KiB to the device in `n` copies, `y` KiB back in `m`".
    pub fn describe(&self) -> String {
        format!(
            "{:.1} KiB to the device in {} copies, {:.1} KiB back in {}",
            self.to_device_bytes as f64 / 1024.0,
            self.to_device_copies,
            self.to_host_bytes as f64 / 1024.0,
            self.to_host_copies
        )
    }

    /// The traffic divided over `steps` steps (rounded down), for per-step figures.
    pub fn per(&self, steps: u64) -> Traffic {
        let steps = steps.max(1);
        Traffic {
            to_device_bytes: self.to_device_bytes / steps,
            to_device_copies: self.to_device_copies / steps,
            to_host_bytes: self.to_host_bytes / steps,
            to_host_copies: self.to_host_copies / steps,
        }
    }
}

thread_local! {
    static COUNTS: Cell<Traffic> = const { Cell::new(Traffic {
        to_device_bytes: 0,
        to_device_copies: 0,
        to_host_bytes: 0,
        to_host_copies: 0,
    }) };
}

fn add(f: impl FnOnce(&mut Traffic)) {
    COUNTS.with(|c| {
        let mut t = c.get();
        f(&mut t);
        c.set(t);
    });
}

/// Records one copy of `bytes` bytes from host memory to the device.
pub fn to_device(bytes: usize) {
    add(|t| {
        t.to_device_bytes += bytes as u64;
        t.to_device_copies += 1;
    });
}

/// Records one copy of `bytes` bytes from the device to host memory.
pub fn to_host(bytes: usize) {
    add(|t| {
        t.to_host_bytes += bytes as u64;
        t.to_host_copies += 1;
    });
}

/// This thread's traffic since the last call, and the counters reset.
pub fn take() -> Traffic {
    COUNTS.with(|c| c.replace(Traffic::default()))
}

/// Runs `f` without counting what it moves (e.g. a checkpoint's copy of the head's state, which is
/// not part of a training step).
pub fn uncounted<R>(f: impl FnOnce() -> R) -> R {
    let before = take();
    let out = f();
    COUNTS.with(|c| c.set(before));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_per_thread_and_reset_when_taken() {
        take();
        to_device(100);
        to_device(28);
        to_host(8);
        std::thread::spawn(|| to_host(1 << 20)).join().unwrap();
        let t = take();
        assert_eq!(
            t,
            Traffic {
                to_device_bytes: 128,
                to_device_copies: 2,
                to_host_bytes: 8,
                to_host_copies: 1,
            }
        );
        assert_eq!((t.bytes(), t.copies()), (136, 3));
        assert_eq!(t.per(2).to_device_bytes, 64);
        assert_eq!(take(), Traffic::default());
        to_host(4);
        assert_eq!(
            uncounted(|| {
                to_device(1000);
                7
            }),
            7
        );
        assert_eq!(
            take(),
            Traffic {
                to_host_bytes: 4,
                to_host_copies: 1,
                ..Traffic::default()
            }
        );
    }
}
