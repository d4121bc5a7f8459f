//! A model folder (or a model shipped with diffuse) loaded into a ready conditional denoiser
//! with its record and schedule. The folder's config says what kind of model it is.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use diffuse_core::samplers::SamplerName;
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
    /// Where its weights live and its samples are drawn.
    pub device: Device,
    /// The text encoder's embeddings of its captions (per class), computed on first use: a
    /// prompt is read against them ([`crate::prompt_reading`]), and `serve` reads many.
    caption_embeddings: OnceLock<Vec<Vec<Vec<f32>>>>,
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
        device: dev.clone(),
        caption_embeddings: OnceLock::new(),
    })
}

impl Loaded {
    /// The embeddings of its captions by `encoder`, per class, computed once.
    pub(crate) fn caption_embeddings(
        &self,
        encoder: &diffuse_text::TextEncoder,
    ) -> Result<&[Vec<Vec<f32>>]> {
        if let Some(e) = self.caption_embeddings.get() {
            return Ok(e);
        }
        let e = crate::prompt_reading::embed_captions(encoder, &self.record.captions)?;
        Ok(self.caption_embeddings.get_or_init(|| e))
    }

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

    /// What to draw when the user says only what to draw. Image models draw a grid's worth (20,
    /// or 10 per class for every class) with the settings their published numbers were measured
    /// at (DPM-Solver++(2M), 20 evaluations, guidance 3 when asked for something), so that a
    /// first run takes seconds; the toy models draw 10,000 points with DDPM's every step, enough
    /// for the distribution tests.
    pub fn defaults(&self) -> Defaults {
        if self.image_shape().is_some() {
            Defaults {
                n: 20,
                n_per_class: 10,
                sampler: SamplerName::DpmPP2M,
                nfe: Some(20),
                guidance: 3.0,
            }
        } else {
            Defaults {
                n: 10_000,
                n_per_class: 10_000,
                sampler: SamplerName::Ddpm,
                nfe: None,
                guidance: 1.0,
            }
        }
    }
}

/// A model's sampling defaults ([`Loaded::defaults`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Defaults {
    /// Samples.
    pub n: usize,
    /// Samples of each class when every class is asked for.
    pub n_per_class: usize,
    /// The sampler.
    pub sampler: SamplerName,
    /// Its evaluations (`None`: the sampler's own default).
    pub nfe: Option<usize>,
    /// Guidance when a label or a prompt is asked for (1: none).
    pub guidance: f64,
}
