//! # diffuse-nn
//!
//! Learned denoisers on burn that answer the core's [`Denoiser`](diffuse_core::Denoiser)
//! interface, so every sampler runs them exactly as it runs the exact denoisers: the
//! time-appended MLP of seeds 000, 003 and 004, the DDPM epsilon loss of seeds 001 and 003, and
//! checkpoints as a folder with `model.safetensors` and `config.json`, written atomically.

mod act;
mod checkpoint;
pub mod classifier;
mod collective;
pub mod commit;
mod cpu;
mod denoiser;
mod ema;
mod mlp;
mod model;
mod parallel;
pub mod sd;
mod train;
pub mod unet;

pub use checkpoint::{
    Checkpoint, Conditioning, load, load_bytes, load_folder_weights, load_weights, save,
    save_weights, save_with, weights_bytes,
};
pub use classifier::{
    Classifier, ClassifierConfig, ClassifierRecord, classify, load_classifier,
    load_classifier_bytes, save_classifier, train_classifier,
};
pub use collective::Peers;
pub use denoiser::LearnedDenoiser;
pub use ema::Ema;
pub use mlp::{Activation, Mlp, MlpConfig, TimeEncoding, one_hot};
pub use model::{Model, ModelConfig};
pub use parallel::Parallel;
pub use train::{Batch, Checkpoints, Standardization, TrainConfig, train};
pub use unet::{UNet, UNetConfig};

use thiserror::Error;

/// Errors of the learned side.
#[derive(Debug, Error)]
pub enum NnError {
    /// A checkpoint could not be read or written.
    #[error("{path}: {message}")]
    Checkpoint {
        /// The file or folder.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Training diverged.
    #[error(
        "the loss became {loss} at step {step}; stopped (the last checkpoint, if any, is kept)"
    )]
    Diverged {
        /// The step at which it happened.
        step: usize,
        /// The loss value.
        loss: f64,
    },
    /// Settings the model cannot use.
    #[error("{0}")]
    Invalid(String),
    /// The caller stopped the run (Ctrl-C, an error in a progress callback).
    #[error("stopped at step {step}: {reason} (the last checkpoint, if any, is kept)")]
    Stopped {
        /// The step after which it stopped.
        step: usize,
        /// Why.
        reason: String,
    },
    /// A group of training processes failed to form or lost a member.
    #[error("training group: {0}")]
    Group(String),
    /// The core math refused.
    #[error(transparent)]
    Core(#[from] diffuse_core::CoreError),
}

/// Result with [`NnError`].
pub type Result<T> = std::result::Result<T, NnError>;
