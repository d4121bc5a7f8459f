//! Models compiled into the program, so that `diffuse sample --model fashion-mnist` works right
//! after installation. Each was made by `diffuse` itself with the recipe in `models/README.md`.

use std::path::{Path, PathBuf};

/// A model folder's two files, compiled in.
pub struct Shipped {
    /// The name `--model` (or `--classifier`) accepts.
    pub name: &'static str,
    /// `config.json`.
    pub config: &'static str,
    /// `model.safetensors`.
    pub weights: &'static [u8],
}

/// Denoisers.
pub const MODELS: &[Shipped] = &[
    Shipped {
        name: "fashion-mnist",
        config: include_str!("../../../models/fashion-mnist/config.json"),
        weights: include_bytes!("../../../models/fashion-mnist/model.safetensors"),
    },
    Shipped {
        name: "mnist",
        config: include_str!("../../../models/mnist/config.json"),
        weights: include_bytes!("../../../models/mnist/model.safetensors"),
    },
];

/// Classifiers for `eval --classifier`; each also judges `sample` of the models trained on its
/// data.
pub const CLASSIFIERS: &[Shipped] = &[
    Shipped {
        name: "fashion-mnist-classifier",
        config: include_str!("../../../models/fashion-mnist-classifier/config.json"),
        weights: include_bytes!("../../../models/fashion-mnist-classifier/model.safetensors"),
    },
    Shipped {
        name: "mnist-classifier",
        config: include_str!("../../../models/mnist-classifier/config.json"),
        weights: include_bytes!("../../../models/mnist-classifier/model.safetensors"),
    },
];

/// Where a `--model` / `--classifier` argument points: a folder on disk, or else a shipped model
/// of that name.
pub enum Found {
    /// A folder.
    Folder(PathBuf),
    /// A model compiled in.
    Shipped(&'static Shipped),
}

/// A folder if `arg` is one; else the shipped model of that name; else an error listing both
/// possibilities.
pub fn find(arg: &Path, shipped: &'static [Shipped], option: &str) -> anyhow::Result<Found> {
    if arg.exists() {
        return Ok(Found::Folder(arg.to_path_buf()));
    }
    match shipped.iter().find(|s| Path::new(s.name) == arg) {
        Some(s) => Ok(Found::Shipped(s)),
        None => anyhow::bail!(
            "{option} {}: no such folder, and not a model shipped with diffuse ({})",
            arg.display(),
            shipped
                .iter()
                .map(|s| s.name)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
