//! Compute-device choice: experiments name a device in RON (`Cpu` by default, `Cuda(0)` for the
//! first GPU); the command line may override it. Asking for a GPU from a CPU-only build is an error
//! that says how to rebuild.

use serde::{Deserialize, Serialize};

/// Where the networks and heads run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum DeviceChoice {
    /// The host CPU (dfdx `Cpu`; matmuls multi-threaded through gemm + rayon).
    #[default]
    Cpu,
    /// An NVIDIA GPU by ordinal (dfdx `Cuda`; needs a build with `--features cuda`).
    Cuda(usize),
}

impl std::str::FromStr for DeviceChoice {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        let t = s.trim().to_ascii_lowercase();
        if t == "cpu" {
            return Ok(DeviceChoice::Cpu);
        }
        let ord = t.strip_prefix("cuda").map(|r| r.trim_start_matches(':'));
        match ord {
            Some("") => Ok(DeviceChoice::Cuda(0)),
            Some(n) => n.parse().map(DeviceChoice::Cuda).map_err(|_| {
                crate::Error::Device(format!(
                    "bad device `{s}`: expected `cpu`, `cuda` or `cuda:N`"
                ))
            }),
            None => Err(crate::Error::Device(format!(
                "bad device `{s}`: expected `cpu`, `cuda` or `cuda:N`"
            ))),
        }
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceChoice::Cpu => write!(f, "cpu"),
            DeviceChoice::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// Fails with a message naming the fix when `choice` cannot be honoured by this build.
pub fn check_available(choice: DeviceChoice) -> crate::Result<()> {
    match choice {
        DeviceChoice::Cpu => Ok(()),
        #[cfg(not(feature = "cuda"))]
        DeviceChoice::Cuda(_) => Err(crate::Error::Device(format!(
            "`{choice}` was asked for, but this binary was built without the `cuda` feature; \
             build with `bash scripts/build-cuda.sh` (see README) or use `--device cpu`"
        ))),
        #[cfg(feature = "cuda")]
        DeviceChoice::Cuda(_) => Ok(()),
    }
}
