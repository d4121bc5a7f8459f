//! Every architecture behind one type, so that training, checkpoints, the EMA and sampling are
//! written once: the MLPs of the seeds for low-dimensional data and the UNet for images.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::mlp::{Mlp, MlpConfig, TimeEncoding};
use crate::unet::{UNet, UNetConfig};

/// An architecture, as `config.json` stores it (the MLP's fields or the UNet's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ModelConfig {
    /// An MLP (seeds 000, 001, 003, 004).
    Mlp(MlpConfig),
    /// A UNet for images.
    UNet(UNetConfig),
}

impl From<MlpConfig> for ModelConfig {
    fn from(c: MlpConfig) -> Self {
        ModelConfig::Mlp(c)
    }
}

impl From<UNetConfig> for ModelConfig {
    fn from(c: UNetConfig) -> Self {
        ModelConfig::UNet(c)
    }
}

impl ModelConfig {
    /// The data dimension (pixels for a UNet).
    pub fn dim(&self) -> usize {
        match self {
            ModelConfig::Mlp(c) => c.dim,
            ModelConfig::UNet(c) => c.height * c.width,
        }
    }

    /// A generous estimate of the bytes one example takes in a training step: the float32
    /// activations the backward pass keeps (inputs, pre-activations, outputs and their
    /// gradients, about eight values per unit of every layer) and the example itself. Used to
    /// refuse a `--batch` that cannot fit before anything is allocated.
    pub fn training_bytes_per_example(&self) -> f64 {
        let units = match self {
            ModelConfig::Mlp(c) => {
                (c.dim + if c.classes > 0 { c.classes + 1 } else { 0 } + 1 + c.hidden * c.depth)
                    as f64
                    * 8.0
            }
            ModelConfig::UNet(c) => {
                // Each level: two residual blocks of two convolutions, norms and activations
                // on the way down and up (about forty maps of its size), halving the image.
                let (mut h, mut w, mut total) = (c.height as f64, c.width as f64, 0.0);
                for m in &c.mults {
                    total += 40.0 * (c.channels * m) as f64 * h * w;
                    h = (h / 2.0).ceil();
                    w = (w / 2.0).ceil();
                }
                total
            }
        };
        units * 4.0 + self.dim() as f64 * 8.0 * 4.0
    }

    /// Number of classes (0: unconditional).
    pub fn classes(&self) -> usize {
        match self {
            ModelConfig::Mlp(c) => c.classes,
            ModelConfig::UNet(c) => c.classes,
        }
    }

    /// Width of the condition input (one-hot classes + 1, a sentence embedding, or 0).
    pub fn cond_width(&self) -> usize {
        match self {
            ModelConfig::Mlp(c) => {
                if c.classes > 0 {
                    c.classes + 1
                } else {
                    0
                }
            }
            ModelConfig::UNet(c) => c.cond_width(),
        }
    }

    /// Width of the sentence embedding a prompt-conditioned model reads (0: none).
    pub fn text(&self) -> usize {
        match self {
            ModelConfig::Mlp(_) => 0,
            ModelConfig::UNet(c) => c.text,
        }
    }

    /// How an MLP sees the time (None for a UNet: sinusoidal features, always).
    pub fn time(&self) -> Option<TimeEncoding> {
        match self {
            ModelConfig::Mlp(c) => Some(c.time),
            ModelConfig::UNet(_) => None,
        }
    }

    /// Checks the settings a model cannot be built without.
    pub fn validate(&self) -> crate::Result<()> {
        match self {
            ModelConfig::Mlp(c) => c.validate(),
            ModelConfig::UNet(c) => c.validate(),
        }
    }

    /// The model, with burn's default initialisation (seeded through the device).
    pub fn init(&self, device: &Device) -> Model {
        match self {
            ModelConfig::Mlp(c) => Model::Mlp(c.init(device)),
            ModelConfig::UNet(c) => Model::UNet(c.init(device)),
        }
    }
}

/// A denoiser network of any architecture.
// One model lives per process, so the size difference costs nothing; burn's Module derive does
// not see through a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Model {
    /// An MLP.
    Mlp(Mlp),
    /// A UNet.
    UNet(UNet),
}

impl Model {
    /// The prediction for x `[n, d]` at times `t_over_t` `[n, 1]` (t / T), with the condition
    /// rows `[n, cond_width]` of a conditional model (one-hot classes or sentence embeddings).
    pub fn forward(
        &self,
        x: Tensor<2>,
        t_over_t: Tensor<2>,
        class: Option<Tensor<2>>,
    ) -> Tensor<2> {
        match self {
            Model::Mlp(m) => m.forward(x, t_over_t, class),
            Model::UNet(u) => u.forward(x, t_over_t, class),
        }
    }
}
