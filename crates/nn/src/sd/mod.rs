//! Stable Diffusion's networks as diffusers and transformers define them, each built from its
//! folder's `config.json` and safetensors: the CLIP text encoder, the conditional UNet and the
//! KL autoencoder. One implementation serves downloaded weights and weights trained here.

pub mod clip;
pub mod config;
pub mod layers;
pub mod unet;
pub mod vae;
pub mod weights;

pub use clip::{ClipText, ClipTextConfig};
pub use config::{UnetConfig, UnetLayout, VaeConfig};
pub use unet::UNet2DCondition;
pub use vae::AutoencoderKl;
pub use weights::Weights;
