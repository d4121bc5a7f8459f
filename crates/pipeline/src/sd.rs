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
use serde::Deserialize;
use serde_json::{Map, Value};

/// The scheduler's training-time noise schedule and the conventions of its timesteps, from
/// `scheduler/scheduler_config.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct SchedulerConfig {
    /// The class the folder names (`PNDMScheduler`, `DDIMScheduler`, ...).
    #[serde(rename = "_class_name", default)]
    pub class: String,
    #[serde(default = "thousand")]
    pub num_train_timesteps: usize,
    #[serde(default = "beta_start")]
    pub beta_start: f64,
    #[serde(default = "beta_end")]
    pub beta_end: f64,
    /// `linear` or `scaled_linear` (linear in sqrt(beta)).
    #[serde(default = "linear")]
    pub beta_schedule: String,
    /// `epsilon`, `v_prediction` or `sample`.
    #[serde(default = "epsilon")]
    pub prediction_type: String,
    /// `leading`, `trailing` or `linspace`.
    #[serde(default = "leading")]
    pub timestep_spacing: String,
    #[serde(default)]
    pub steps_offset: usize,
    #[serde(default = "yes")]
    pub set_alpha_to_one: bool,
    #[serde(default)]
    pub trained_betas: Option<Vec<f64>>,
}

fn thousand() -> usize {
    1000
}
fn beta_start() -> f64 {
    0.0001
}
fn beta_end() -> f64 {
    0.02
}
fn linear() -> String {
    "linear".into()
}
fn epsilon() -> String {
    "epsilon".into()
}
fn leading() -> String {
    "leading".into()
}
fn yes() -> bool {
    true
}

impl SchedulerConfig {
    /// Reads and checks `scheduler_config.json`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join("scheduler_config.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let raw: Map<String, Value> =
            serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
        for (key, ok) in [
            ("thresholding", Value::Bool(false)),
            ("rescale_betas_zero_snr", Value::Bool(false)),
        ] {
            if let Some(v) = raw.get(key)
                && v != &ok
                && !v.is_null()
            {
                bail!("{}: {key} = {v} is not supported", path.display());
            }
        }
        let c: Self = serde_json::from_value(Value::Object(raw))
            .with_context(|| format!("{}: a field has the wrong type", path.display()))?;
        let field = |name: &str, v: &str, allowed: &[&str]| -> Result<()> {
            if allowed.contains(&v) {
                Ok(())
            } else {
                Err(anyhow!(
                    "{}: {name} {v:?} is not supported ({})",
                    path.display(),
                    allowed.join(", ")
                ))
            }
        };
        field(
            "beta_schedule",
            &c.beta_schedule,
            &["linear", "scaled_linear"],
        )
        .or_else(|e| {
            if c.trained_betas.is_some() {
                Ok(())
            } else {
                Err(e)
            }
        })?;
        field(
            "prediction_type",
            &c.prediction_type,
            &["epsilon", "v_prediction", "sample"],
        )?;
        field(
            "timestep_spacing",
            &c.timestep_spacing,
            &["leading", "trailing", "linspace"],
        )?;
        if c.num_train_timesteps < 2 || c.num_train_timesteps > 100_000 {
            bail!(
                "{}: num_train_timesteps {} is out of range",
                path.display(),
                c.num_train_timesteps
            );
        }
        if !(0.0 < c.beta_start && c.beta_start <= c.beta_end && c.beta_end < 1.0) {
            bail!(
                "{}: beta_start {} and beta_end {} must satisfy 0 < start <= end < 1",
                path.display(),
                c.beta_start,
                c.beta_end
            );
        }
        Ok(c)
    }

    /// The training betas, as diffusers computes them (in f32 for `scaled_linear`'s square).
    pub fn betas(&self) -> Vec<f64> {
        if let Some(b) = &self.trained_betas {
            return b.clone();
        }
        let n = self.num_train_timesteps;
        let lin = |a: f64, b: f64| -> Vec<f64> {
            (0..n)
                .map(|i| a + (b - a) * i as f64 / (n - 1) as f64)
                .collect()
        };
        match self.beta_schedule.as_str() {
            "scaled_linear" => lin(self.beta_start.sqrt(), self.beta_end.sqrt())
                .into_iter()
                .map(|s| s * s)
                .collect(),
            _ => lin(self.beta_start, self.beta_end),
        }
    }
}

/// The parts of a Stable Diffusion pipeline, ready to run.
pub struct StableDiffusion {
    pub folder: PathBuf,
    pub tokenizer: ClipTokenizer,
    pub text_encoder: ClipText,
    pub text_config: ClipTextConfig,
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
        component(&index, "text_encoder", &path, "CLIPTextModel")?;
        component(&index, "tokenizer", &path, "")?;
        component(&index, "scheduler", &path, "")?;
        let tokenizer = ClipTokenizer::load(&dir.join("tokenizer"))?;
        let (text_encoder, text_config) = ClipText::load(&dir.join("text_encoder"), device)?;
        let (unet, unet_layout) = UNet2DCondition::load(&dir.join("unet"), device)?;
        let (vae, vae_config) = AutoencoderKl::load(&dir.join("vae"), device)?;
        let scheduler = SchedulerConfig::read(&dir.join("scheduler"))?;
        if unet_layout.context_dim != text_config.hidden_size {
            bail!(
                "{}: the UNet attends to {}-wide token states (unet/config.json \
                 cross_attention_dim) but the text encoder gives {} (text_encoder/config.json \
                 hidden_size)",
                dir.display(),
                unet_layout.context_dim,
                text_config.hidden_size
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
            tokenizer,
            text_encoder,
            text_config,
            unet,
            unet_layout,
            vae,
            vae_config,
            scheduler,
        })
    }

    /// A prompt's token states `[1, 77, d]` (all 77, padding included, as the UNet reads them)
    /// and its tokens (with the truncation, if any).
    pub fn encode_prompt(&self, prompt: &str) -> Result<(Tensor<3>, ClipTokens)> {
        let tokens = self.tokenizer.encode(prompt)?;
        let vocab = self.text_encoder.vocab_size();
        if let Some(bad) = tokens.ids.iter().find(|&&id| id as usize >= vocab) {
            bail!(
                "{}: the tokenizer gives id {bad}, beyond the text encoder's vocabulary of {vocab}",
                self.folder.display()
            );
        }
        let device = self.text_encoder.device();
        let ids: Vec<i64> = tokens.ids.iter().map(|&i| i64::from(i)).collect();
        let n = ids.len();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, n]), &device);
        Ok((self.text_encoder.forward(ids), tokens))
    }

    /// How many pixels one latent spans per side (8 for SD, 2^(VAE levels - 1)).
    pub fn vae_scale(&self) -> usize {
        self.vae_config.scale_factor()
    }

    /// The default image side: the UNet's `sample_size` times the VAE's scale.
    pub fn default_size(&self) -> usize {
        self.unet_layout.config.sample_size.unwrap_or(64) * self.vae_scale()
    }
}
