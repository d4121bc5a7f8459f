//! A model folder (or a model shipped with diffuse) loaded into a ready conditional denoiser
//! with its record and schedule. The folder's config says what kind of model it is.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use diffuse_core::{Schedule, device};
use diffuse_nn::{Checkpoint, Conditioning, LearnedDenoiser, ModelConfig};

use crate::shipped::{Found, MODELS, find};

/// A loaded model.
pub struct Loaded {
    /// The network behind the core's conditional-denoiser interface.
    pub denoiser: LearnedDenoiser,
    /// How it was made: architecture, schedule, standardisation, classes, captions.
    pub record: Checkpoint,
    /// Its noise schedule.
    pub schedule: Schedule,
    /// Where it came from: a folder, or the name of a shipped model.
    pub source: PathBuf,
}

/// Loads a model folder written by `diffuse train`, or a shipped model by name, on the CPU.
pub fn load(path: &Path) -> Result<Loaded> {
    load_on(path, &device::cpu())
}

/// Loads a model folder, or a shipped model by name, on `device`.
pub fn load_on(path: &Path, dev: &Device) -> Result<Loaded> {
    let (model, record) = match find(path, MODELS, "--model")? {
        Found::Folder(f) => {
            if f.join("model_index.json").exists() {
                bail!(
                    "--model {}: a diffusers pipeline folder (model_index.json); this version of diffuse loads only its own model folders (config.json and model.safetensors)",
                    f.display()
                );
            }
            diffuse_nn::load(&f, dev)
        }
        Found::Shipped(s) => diffuse_nn::load_bytes(s.config, s.weights.to_vec(), path, dev),
    }
    .context("--model")?;
    let schedule =
        Schedule::parse(&record.schedule, record.steps).context("the model's schedule")?;
    let (dim, steps) = (record.model.dim(), record.steps);
    let denoiser = if record.model.text() > 0 {
        LearnedDenoiser::with_text(model, dim, steps, record.model.text())
    } else {
        LearnedDenoiser::new(model, dim, steps, record.classes.len())
    }
    .predicting(record.target);
    Ok(Loaded {
        denoiser,
        record,
        schedule,
        source: path.to_path_buf(),
    })
}

impl Loaded {
    /// The dimension of a sample.
    pub fn dim(&self) -> usize {
        self.record.model.dim()
    }

    /// The image size of its samples: the UNet's, or that of the images it was trained on.
    pub fn image_shape(&self) -> Option<(usize, usize)> {
        match &self.record.model {
            ModelConfig::UNet(u) => Some((u.height, u.width)),
            ModelConfig::Mlp(_) => diffuse_data::Dataset::parse(&self.record.data)
                .ok()?
                .image_shape(),
        }
    }

    /// Whether its samples are pixels in [-1, 1] (images, not standardised), so that the
    /// predicted clean image is clipped to that range by default.
    pub fn clips(&self) -> bool {
        self.image_shape().is_some() && self.record.standardization.std.iter().all(|s| *s == 1.0)
    }

    /// Whether it reads prompts as sentences.
    pub fn reads_prompts(&self) -> bool {
        self.record.cond == Conditioning::Prompt
    }
}
