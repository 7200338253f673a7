//! Lists the shipped experiment files for `src/config/embedded.rs` to compile in: every
//! `experiments/*.ron`, so that a new experiment file is shipped without another edit.

use std::path::Path;

fn main() {
    let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&root).join("experiments");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("the experiments/ folder")
        .map(|e| e.expect("an entry of experiments/").file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".ron"))
        .collect();
    names.sort();
    let entries: String = names
        .iter()
        .map(|n| {
            let path = dir.join(n).display().to_string();
            format!("    (\"experiments/{n}\", include_str!({path:?})),\n")
        })
        .collect();
    let code = format!(
        "/// (path relative to the repository root, text) of every shipped experiment file.\n\
         pub const EXPERIMENTS: [(&str, &str); {}] = [\n{entries}];\n",
        names.len()
    );
    let out =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("experiments.rs");
    std::fs::write(&out, code).expect("OUT_DIR is writable");
}
