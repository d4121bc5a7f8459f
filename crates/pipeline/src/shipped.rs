//! Models compiled into the program, so that `diffuse sample --model fashion-mnist` works right
//! after installation. Each was made by `diffuse` itself with the recipe in
//! `scripts/train-models.sh`.
//!
//! Diffusers pipeline folders (the latent text-to-image model `colour-fashion`) ship as their
//! files and are unpacked once into the user's cache, so that the one folder loader that reads
//! Stable Diffusion reads them too.

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

/// A diffusers pipeline folder compiled in: each file's path in the folder and its bytes.
pub struct ShippedPipeline {
    /// The name `--model` accepts.
    pub name: &'static str,
    /// The folder's files.
    pub files: &'static [(&'static str, &'static [u8])],
}

macro_rules! folder_file {
    ($model:literal, $file:literal) => {
        (
            $file,
            include_bytes!(concat!("../../../models/", $model, "/", $file)) as &[u8],
        )
    };
}

/// Pipelines, loaded as Stable Diffusion folders.
pub const PIPELINES: &[ShippedPipeline] = &[ShippedPipeline {
    name: "colour-fashion",
    files: &[
        folder_file!("colour-fashion", "model_index.json"),
        folder_file!("colour-fashion", "scheduler/scheduler_config.json"),
        folder_file!("colour-fashion", "text_encoder/config.json"),
        folder_file!("colour-fashion", "unet/config.json"),
        folder_file!("colour-fashion", "unet/diffusion_pytorch_model.safetensors"),
        folder_file!("colour-fashion", "unet/training.json"),
        folder_file!("colour-fashion", "vae/config.json"),
        folder_file!("colour-fashion", "vae/diffusion_pytorch_model.safetensors"),
        folder_file!("colour-fashion", "vae/training.json"),
    ],
}];

impl ShippedPipeline {
    /// A 64-bit FNV-1a hash of the file names and contents: the name of the unpacked copy, so
    /// that a new build never reads an old copy.
    fn digest(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for (name, bytes) in self.files {
            for b in name.bytes().chain([0]).chain(bytes.iter().copied()) {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        h
    }

    /// The folder, unpacked under `cache` (once: a complete copy is reused; a copy is written
    /// under a temporary name and renamed, so an interrupted unpacking is never read).
    pub fn unpack_in(&self, cache: &Path) -> anyhow::Result<PathBuf> {
        use anyhow::Context;
        let digest = self.digest();
        let dir = cache.join(format!("{}-{digest:016x}", self.name));
        if dir.join("model_index.json").is_file() {
            return Ok(dir);
        }
        let tmp = cache.join(format!(
            ".{}-{digest:016x}.{}",
            self.name,
            std::process::id()
        ));
        let write = || -> std::io::Result<()> {
            for (name, bytes) in self.files {
                let path = tmp.join(name);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&path, bytes)?;
            }
            Ok(())
        };
        let written = write().and_then(|()| std::fs::rename(&tmp, &dir));
        if let Err(e) = written {
            let _ = std::fs::remove_dir_all(&tmp);
            // Another process may have unpacked the same copy first.
            if !dir.join("model_index.json").is_file() {
                return Err(e).with_context(|| {
                    format!(
                        "cannot unpack the shipped model {} into {}",
                        self.name,
                        dir.display()
                    )
                });
            }
        }
        Ok(dir)
    }

    /// The folder, unpacked into the user's cache: `$XDG_CACHE_HOME/diffuse`, else
    /// `~/.cache/diffuse`, else the system's temporary folder.
    pub fn unpack(&self) -> anyhow::Result<PathBuf> {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir)
            .join("diffuse");
        self.unpack_in(&cache)
    }
}

/// The folder a `--model` argument names: the argument itself when it exists or names no
/// shipped pipeline, else the shipped pipeline of that name, unpacked.
pub fn model_folder(arg: &Path) -> anyhow::Result<PathBuf> {
    if arg.exists() {
        return Ok(arg.to_path_buf());
    }
    match PIPELINES.iter().find(|p| Path::new(p.name) == arg) {
        Some(p) => p.unpack(),
        None => Ok(arg.to_path_buf()),
    }
}

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
                .chain(
                    (option == "--model")
                        .then(|| PIPELINES.iter().map(|p| p.name))
                        .into_iter()
                        .flatten()
                )
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
