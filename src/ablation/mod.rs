//! Ablation matrices: expansion, the resumable runner and the summary.
