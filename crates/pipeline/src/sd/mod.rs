//! A Stable Diffusion pipeline folder as diffusers saves it (`model_index.json` and one folder per
//! component), loaded into its parts: CLIP's tokenizer and text encoder, the conditional UNet, the
//! autoencoder and the scheduler's config. Each part is built from its own config; a pipeline of
//! another kind, or a component of another class, is refused by name.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use burn::tensor::{Device, Int, Tensor, TensorData};
use diffuse_nn::sd::{
    AutoencoderKl, ClipText, ClipTextConfig, UNet2DCondition, UnetLayout, VaeConfig,
};
use diffuse_text::{ClipTokenizer, ClipTokens};
use serde_json::{Map, Value};

pub mod bench;
mod edit;
mod generate;
mod guide;
mod io;
mod scheduler;

pub use edit::{interpolate, swap_token};
pub use generate::{SdImages, SdRequest, check, decode, generate};
pub use guide::{ImageLoss, LossGuide};
pub use io::{read_image, read_tensor4, to_rgb8, write_tensors};
pub use scheduler::{SchedulerConfig, sampler_for_class};

/// What turns a prompt into the token states the UNet reads.
pub enum TextSide {
    /// Stable Diffusion's own: CLIP's tokenizer and text transformer, prompts padded to
    /// `model_max_length` (the padding read as tokens).
    Clip {
        tokenizer: Box<ClipTokenizer>,
        encoder: Box<ClipText>,
        config: ClipTextConfig,
    },
    /// A model trained here (`train --model latent`): the installed MiniLM's token states, each
    /// prompt its own length (padding masked when two are batched).
    TokenStates(Box<diffuse_text::TextEncoder>),
}

/// The parts of a Stable Diffusion pipeline, ready to run.
pub struct StableDiffusion {
    pub folder: PathBuf,
    pub text: TextSide,
    pub unet: UNet2DCondition,
    pub unet_layout: UnetLayout,
    pub vae: AutoencoderKl,
    pub vae_config: VaeConfig,
    pub scheduler: SchedulerConfig,
}

/// One component entry of `model_index.json`: `[library, class]`.
fn component(index: &Map<String, Value>, name: &str, path: &Path, class: &str) -> Result<()> {
    let entry = index
        .get(name)
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("{}: names no {name} component", path.display()))?;
    let found = entry.get(1).and_then(Value::as_str).unwrap_or("null");
    if !class.is_empty() && found != class {
        bail!(
            "{}: {name} is {found}; only {class} is supported",
            path.display()
        );
    }
    Ok(())
}

/// Is `dir` a diffusers pipeline folder?
pub fn is_pipeline(dir: &Path) -> bool {
    dir.join("model_index.json").is_file()
}

impl StableDiffusion {
    /// The pipeline in `dir`, every component checked against `model_index.json`.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let path = dir.join("model_index.json");
        if !path.is_file() {
            bail!(
                "{}: no model_index.json (a Stable Diffusion folder as diffusers saves it has one)",
                dir.display()
            );
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let index: Map<String, Value> =
            serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
        let class = index
            .get("_class_name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if class != "StableDiffusionPipeline" && class != "StableDiffusionImg2ImgPipeline" {
            bail!(
                "{}: _class_name {class:?}: only StableDiffusionPipeline (SD 1.x and 2.x) is supported",
                path.display()
            );
        }
        component(&index, "unet", &path, "UNet2DConditionModel")?;
        component(&index, "vae", &path, "AutoencoderKL")?;
        component(&index, "text_encoder", &path, "")?;
        component(&index, "scheduler", &path, "")?;
        let text_class = index
            .get("text_encoder")
            .and_then(|e| e.get(1))
            .and_then(Value::as_str)
            .unwrap_or("null");
        let text = match text_class {
            "CLIPTextModel" => {
                component(&index, "tokenizer", &path, "")?;
                let tokenizer = ClipTokenizer::load(&dir.join("tokenizer"))?;
                let (encoder, config) = ClipText::load(&dir.join("text_encoder"), device)?;
                TextSide::Clip {
                    tokenizer: Box::new(tokenizer),
                    encoder: Box::new(encoder),
                    config,
                }
            }
            crate::latent::TOKEN_STATES_ENCODER => {
                crate::latent::check_text_encoder(&dir.join("text_encoder"))?;
                TextSide::TokenStates(Box::new(diffuse_text::TextEncoder::installed(device)?))
            }
            other => bail!(
                "{}: text_encoder is {other}; only CLIPTextModel (and {} for models trained \
                 here) are supported",
                path.display(),
                crate::latent::TOKEN_STATES_ENCODER
            ),
        };
        let (unet, unet_layout) = UNet2DCondition::load(&dir.join("unet"), device)?;
        let (vae, vae_config) = AutoencoderKl::load(&dir.join("vae"), device)?;
        let scheduler = SchedulerConfig::read(&dir.join("scheduler"))?;
        let hidden = match &text {
            TextSide::Clip { config, .. } => config.hidden_size,
            TextSide::TokenStates(e) => e.dim(),
        };
        if unet_layout.context_dim != hidden {
            bail!(
                "{}: the UNet attends to {}-wide token states (unet/config.json \
                 cross_attention_dim) but the text encoder gives {} (text_encoder/config.json \
                 hidden_size)",
                dir.display(),
                unet_layout.context_dim,
                hidden
            );
        }
        if unet_layout.config.in_channels != vae_config.latent_channels {
            bail!(
                "{}: the UNet takes {} channels but the VAE's latents have {} \
                 (inpainting UNets are not supported)",
                dir.display(),
                unet_layout.config.in_channels,
                vae_config.latent_channels
            );
        }
        Ok(Self {
            folder: dir.to_path_buf(),
            text,
            unet,
            unet_layout,
            vae,
            vae_config,
            scheduler,
        })
    }

    /// A prompt's token states `[1, L, d]` and its tokens (with the truncation, if any): with
    /// CLIP all 77, padding included, as the UNet reads them; with MiniLM the prompt's own.
    pub fn encode_prompt(&self, prompt: &str) -> Result<(Tensor<3>, ClipTokens)> {
        let (tokenizer, encoder) = match &self.text {
            TextSide::Clip {
                tokenizer, encoder, ..
            } => (tokenizer, encoder),
            TextSide::TokenStates(e) => {
                let t = e.token_states(prompt)?;
                let [l, d] = t.states.dims();
                let states = t.states.reshape([1, l, d]);
                let tokens = ClipTokens {
                    ids: t.ids,
                    truncated_from: t.truncated_from,
                };
                return Ok((states, tokens));
            }
        };
        let tokens = tokenizer.encode(prompt)?;
        let vocab = encoder.vocab_size();
        if let Some(bad) = tokens.ids.iter().find(|&&id| id as usize >= vocab) {
            bail!(
                "{}: the tokenizer gives id {bad}, beyond the text encoder's vocabulary of {vocab}",
                self.folder.display()
            );
        }
        let device = encoder.device();
        let ids: Vec<i64> = tokens.ids.iter().map(|&i| i64::from(i)).collect();
        let n = ids.len();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, n]), &device);
        Ok((encoder.forward(ids), tokens))
    }

    /// When `text` is longer than the text encoder reads: (its tokens with the start and end
    /// markers, how many are read).
    pub fn too_long(&self, text: &str) -> Result<Option<(usize, usize)>> {
        Ok(match &self.text {
            TextSide::Clip { tokenizer, .. } => tokenizer
                .encode(text)?
                .truncated_from
                .map(|k| (k, tokenizer.max_len())),
            TextSide::TokenStates(e) => {
                let k = e.tokenize(text)?.len();
                (k > e.max_tokens()).then_some((k, e.max_tokens()))
            }
        })
    }

    /// The token ids of `text` alone, without start, end or padding tokens.
    pub fn pieces(&self, text: &str) -> Result<Vec<u32>> {
        Ok(match &self.text {
            TextSide::Clip { tokenizer, .. } => tokenizer.pieces(text)?,
            TextSide::TokenStates(e) => {
                // Without [CLS] and [SEP].
                let ids = e.tokenize(text)?;
                ids.get(1..ids.len().saturating_sub(1))
                    .unwrap_or_default()
                    .to_vec()
            }
        })
    }

    /// The word piece a token id stands for.
    pub fn token(&self, id: u32) -> Option<String> {
        match &self.text {
            TextSide::Clip { tokenizer, .. } => tokenizer.token(id),
            TextSide::TokenStates(e) => e.token(id),
        }
    }

    /// CLIP's tokenizer and text transformer, or an error naming `what` needs them.
    pub fn clip(&self, what: &str) -> Result<(&ClipTokenizer, &ClipText)> {
        match &self.text {
            TextSide::Clip {
                tokenizer, encoder, ..
            } => Ok((tokenizer, encoder)),
            TextSide::TokenStates(_) => bail!(
                "{}: {what} needs CLIP's tokenizer; this model reads MiniLM's token states",
                self.folder.display()
            ),
        }
    }

    /// The width of the token states the UNet attends to.
    pub fn context_dim(&self) -> usize {
        self.unet_layout.context_dim
    }

    /// The device the networks run on.
    pub fn device(&self) -> Device {
        self.vae.device()
    }

    /// How many pixels one latent spans per side (8 for SD, 2^(VAE levels - 1)).
    pub fn vae_scale(&self) -> usize {
        self.vae_config.scale_factor()
    }

    /// The guidance scale and steps a request gets when none are asked (see
    /// [`SdRequest::for_pipeline`]).
    pub fn default_guidance_and_steps(&self) -> (f64, usize) {
        if self.trained_here() {
            (3.0, 20)
        } else {
            (7.5, 25)
        }
    }

    /// Whether this is a model trained here (`diffuse train --model latent`: MiniLM token
    /// states in place of CLIP).
    pub fn trained_here(&self) -> bool {
        matches!(self.text, TextSide::TokenStates(_))
    }

    /// The image side in pixels when none is asked: the UNet's `sample_size` times the VAE's
    /// factor.
    pub fn default_size(&self) -> usize {
        self.unet_layout.config.sample_size.unwrap_or(64) * self.vae_scale()
    }
}
