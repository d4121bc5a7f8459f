//! # diffuse-text
//!
//! The text encoder of prompt-to-image generation (the role CLIP's text tower plays in seed
//! 002's Stable Diffusion): all-MiniLM-L6-v2, a 6-layer BERT trained by sentence-transformers to
//! place sentences of similar meaning close together. It runs on burn with Hugging Face's
//! tokenizer, and its embeddings are checked against the reference implementation's
//! (`tests/fixtures/minilm.json`).

mod bert;
mod clip;
mod encoder;

pub use bert::{Bert, BertConfig};
pub use clip::{ClipTokenizer, ClipTokens};
pub use encoder::{ENV_VAR, Encoding, PACKAGE_SUBDIR, TextEncoder, TokenStates, default_folder};

use thiserror::Error;

/// Errors of the text encoder.
#[derive(Debug, Error)]
pub enum TextError {
    /// The encoder's files are not where they were looked for.
    #[error("{0}")]
    Missing(String),
    /// The files are there but cannot be used.
    #[error("text encoder: {0}")]
    Weights(String),
    /// The input cannot be encoded.
    #[error("{0}")]
    Input(String),
}

/// Result with [`TextError`].
pub type Result<T> = std::result::Result<T, TextError>;
