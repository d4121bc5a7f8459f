//! Stable Diffusion's networks as diffusers and transformers define them, each built from its
//! folder's `config.json` and safetensors: the CLIP text encoder, the conditional UNet and the
//! KL autoencoder. One implementation serves downloaded weights and weights trained here.

pub mod clip;
pub mod config;
pub mod latent_train;
pub mod layers;
pub mod unet;
pub mod vae;
pub mod vae_train;
pub mod weights;

pub use clip::{ClipText, ClipTextConfig};
pub use config::{UnetConfig, UnetLayout, VaeConfig};
pub use latent_train::{LatentTraining, Prompt, pad_prompts, train_latent};
pub use unet::UNet2DCondition;
pub use vae::AutoencoderKl;
pub use vae_train::{VaeStep, VaeTraining, train_vae, vae_loss};
pub use weights::{ParamNames, Weights, named_bytes};

use std::path::Path;

/// Writes a network made here as a diffusers component folder (`unet/`, `vae/`): its
/// `config.json` and `diffusion_pytorch_model.safetensors` under diffusers' tensor names, and
/// `extra` files (name, bytes), as one unit (a crash leaves the old folder or the new one
/// whole), so that the loader of downloaded folders reads it back.
pub fn save_component<M: burn::module::Module>(
    dir: &Path,
    config: &serde_json::Value,
    module: &M,
    names: &ParamNames,
    extra: &[(&str, &[u8])],
) -> crate::Result<()> {
    let bytes = named_bytes(module, names)?;
    let json = serde_json::to_string_pretty(config).map_err(|e| crate::NnError::Checkpoint {
        path: dir.join("config.json").display().to_string(),
        message: e.to_string(),
    })?;
    let mut files: Vec<(&str, &[u8])> = vec![
        ("config.json", json.as_bytes()),
        ("diffusion_pytorch_model.safetensors", &bytes),
    ];
    files.extend_from_slice(extra);
    crate::commit::commit(dir, &files)
}
