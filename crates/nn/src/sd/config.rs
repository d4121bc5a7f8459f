//! The configs of a diffusers folder's networks, read as diffusers reads them: every key it
//! saves is known here, the ones this implementation honours are parsed, and a key set to a value
//! it does not implement (SDXL's `addition_embed_type`, a class embedding, ...) is refused by name
//! rather than ignored.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::{NnError, Result};

fn fail(path: &Path, message: impl Into<String>) -> NnError {
    NnError::Checkpoint {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// Reads and parses `dir/name`, naming the file in every error.
pub fn read_config<T: DeserializeOwned>(dir: &Path, name: &str) -> Result<(PathBuf, T)> {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            fail(&path, "missing")
        } else {
            fail(&path, e.to_string())
        }
    })?;
    let value: T = serde_json::from_str(&text).map_err(|e| fail(&path, e.to_string()))?;
    Ok((path, value))
}

/// An int or a per-level list, as diffusers accepts for several keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PerLevel {
    One(usize),
    Each(Vec<usize>),
}

impl PerLevel {
    /// One value per level, checked against the number of levels.
    pub fn levels(&self, n: usize, key: &str, path: &Path) -> Result<Vec<usize>> {
        match self {
            PerLevel::One(v) => Ok(vec![*v; n]),
            PerLevel::Each(v) if v.len() == n => Ok(v.clone()),
            PerLevel::Each(v) => Err(fail(
                path,
                format!("{key} has {} entries for {n} blocks", v.len()),
            )),
        }
    }
}

/// Refuses keys whose values this implementation does not honour: each `(key, allowed)` must be
/// absent or equal to one of `allowed`; keys not named anywhere must be null or false.
fn refuse_unsupported(
    path: &Path,
    raw: &Map<String, Value>,
    honoured: &[&str],
    fixed: &[(&str, Vec<Value>)],
) -> Result<()> {
    for (key, value) in raw {
        if key.starts_with('_') || honoured.contains(&key.as_str()) {
            continue;
        }
        match fixed.iter().find(|(k, _)| k == key) {
            Some((_, allowed)) => {
                let ok = allowed.iter().any(|a| match (a, value) {
                    (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
                    // A list of all-false (`only_cross_attention` per level) is false.
                    (Value::Bool(false), Value::Array(v)) => {
                        v.iter().all(|e| e == &Value::Bool(false))
                    }
                    _ => a == value,
                });
                if !ok {
                    return Err(fail(
                        path,
                        format!(
                            "{key} = {value} is not supported (supported: {})",
                            allowed
                                .iter()
                                .map(|a| a.to_string())
                                .collect::<Vec<_>>()
                                .join(" or ")
                        ),
                    ));
                }
            }
            None if value.is_null() || value == &Value::Bool(false) => {}
            None => {
                return Err(fail(
                    path,
                    format!("unknown key {key} = {value} is not supported"),
                ));
            }
        }
    }
    Ok(())
}

/// `unet/config.json` of a `UNet2DConditionModel`, the keys it honours.
#[derive(Debug, Clone, Deserialize)]
pub struct UnetConfig {
    #[serde(default)]
    pub sample_size: Option<usize>,
    pub in_channels: usize,
    pub out_channels: usize,
    #[serde(default = "yes")]
    pub flip_sin_to_cos: bool,
    #[serde(default)]
    pub freq_shift: f64,
    pub down_block_types: Vec<String>,
    pub up_block_types: Vec<String>,
    pub block_out_channels: Vec<usize>,
    pub layers_per_block: PerLevel,
    #[serde(default = "one")]
    pub downsample_padding: usize,
    #[serde(default = "one_f")]
    pub mid_block_scale_factor: f64,
    #[serde(default = "groups32")]
    pub norm_num_groups: usize,
    #[serde(default = "eps5")]
    pub norm_eps: f64,
    pub cross_attention_dim: PerLevel,
    #[serde(default = "depth1")]
    pub transformer_layers_per_block: PerLevel,
    /// The number of heads (diffusers' name, kept for compatibility).
    pub attention_head_dim: PerLevel,
    #[serde(default)]
    pub use_linear_projection: bool,
    #[serde(default)]
    pub upcast_attention: bool,
}

fn yes() -> bool {
    true
}
fn one() -> usize {
    1
}
fn one_f() -> f64 {
    1.0
}
fn groups32() -> usize {
    32
}
fn eps5() -> f64 {
    1e-5
}
fn depth1() -> PerLevel {
    PerLevel::One(1)
}

/// A UNet config with its per-level lists expanded and checked.
#[derive(Debug, Clone)]
pub struct UnetLayout {
    pub config: UnetConfig,
    /// Whether each down level has cross-attention.
    pub down_cross: Vec<bool>,
    /// Whether each up level has cross-attention.
    pub up_cross: Vec<bool>,
    pub layers: Vec<usize>,
    pub heads: Vec<usize>,
    pub depth: Vec<usize>,
    pub context_dim: usize,
}

impl UnetConfig {
    /// Reads `unet/config.json`, refusing what this UNet does not implement by its key.
    pub fn read(dir: &Path) -> Result<UnetLayout> {
        let (path, raw): (_, Map<String, Value>) = read_config(dir, "config.json")?;
        Self::parse(&path, raw)
    }

    /// A UNet config from the JSON object `config.json` would hold (for a network made here);
    /// the same checks as [`UnetConfig::read`].
    pub fn from_value(config: Value) -> Result<UnetLayout> {
        let path = Path::new("<unet config>");
        match config {
            Value::Object(raw) => Self::parse(path, raw),
            _ => Err(fail(path, "not a JSON object")),
        }
    }

    fn parse(path: &Path, raw: Map<String, Value>) -> Result<UnetLayout> {
        let path = path.to_path_buf();
        let class = raw.get("_class_name").and_then(Value::as_str);
        if let Some(c) = class
            && c != "UNet2DConditionModel"
        {
            return Err(fail(
                &path,
                format!("_class_name {c} is not UNet2DConditionModel"),
            ));
        }
        let honoured = [
            "sample_size",
            "in_channels",
            "out_channels",
            "flip_sin_to_cos",
            "freq_shift",
            "down_block_types",
            "up_block_types",
            "block_out_channels",
            "layers_per_block",
            "downsample_padding",
            "mid_block_scale_factor",
            "norm_num_groups",
            "norm_eps",
            "cross_attention_dim",
            "transformer_layers_per_block",
            "attention_head_dim",
            "use_linear_projection",
            "upcast_attention",
            // No effect at inference.
            "dropout",
            // Used only with an addition embedding, which is refused below.
            "addition_embed_type_num_heads",
        ];
        let fixed: &[(&str, Vec<Value>)] = &[
            ("act_fn", vec![Value::from("silu")]),
            ("center_input_sample", vec![Value::Bool(false)]),
            (
                "mid_block_type",
                vec![Value::from("UNetMidBlock2DCrossAttn")],
            ),
            ("only_cross_attention", vec![Value::Bool(false)]),
            ("dual_cross_attention", vec![Value::Bool(false)]),
            ("class_embed_type", vec![Value::Null]),
            ("addition_embed_type", vec![Value::Null]),
            ("addition_time_embed_dim", vec![Value::Null]),
            ("num_class_embeds", vec![Value::Null]),
            ("projection_class_embeddings_input_dim", vec![Value::Null]),
            ("class_embeddings_concat", vec![Value::Bool(false)]),
            ("encoder_hid_dim", vec![Value::Null]),
            ("encoder_hid_dim_type", vec![Value::Null]),
            ("num_attention_heads", vec![Value::Null]),
            ("resnet_time_scale_shift", vec![Value::from("default")]),
            ("resnet_skip_time_act", vec![Value::Bool(false)]),
            ("resnet_out_scale_factor", vec![Value::from(1.0)]),
            ("time_embedding_type", vec![Value::from("positional")]),
            ("time_embedding_dim", vec![Value::Null]),
            ("time_embedding_act_fn", vec![Value::Null]),
            ("timestep_post_act", vec![Value::Null]),
            ("time_cond_proj_dim", vec![Value::Null]),
            ("conv_in_kernel", vec![Value::from(3)]),
            ("conv_out_kernel", vec![Value::from(3)]),
            ("attention_type", vec![Value::from("default")]),
            (
                "mid_block_only_cross_attention",
                vec![Value::Null, Value::Bool(false)],
            ),
            ("cross_attention_norm", vec![Value::Null]),
            ("reverse_transformer_layers_per_block", vec![Value::Null]),
        ];
        refuse_unsupported(&path, &raw, &honoured, fixed)?;
        let config: UnetConfig =
            serde_json::from_value(Value::Object(raw)).map_err(|e| fail(&path, e.to_string()))?;
        config.layout(&path)
    }

    fn layout(self, path: &Path) -> Result<UnetLayout> {
        let n = self.block_out_channels.len();
        if n == 0 {
            return Err(fail(path, "block_out_channels is empty"));
        }
        if self.down_block_types.len() != n || self.up_block_types.len() != n {
            return Err(fail(
                path,
                format!(
                    "{} down and {} up block types for {n} block_out_channels",
                    self.down_block_types.len(),
                    self.up_block_types.len()
                ),
            ));
        }
        let kind = |t: &str, cross: &str, plain: &str| -> Result<bool> {
            if t == cross {
                Ok(true)
            } else if t == plain {
                Ok(false)
            } else {
                Err(fail(
                    path,
                    format!("block type {t} is not supported ({cross} or {plain})"),
                ))
            }
        };
        let down_cross = self
            .down_block_types
            .iter()
            .map(|t| kind(t, "CrossAttnDownBlock2D", "DownBlock2D"))
            .collect::<Result<Vec<_>>>()?;
        let up_cross = self
            .up_block_types
            .iter()
            .map(|t| kind(t, "CrossAttnUpBlock2D", "UpBlock2D"))
            .collect::<Result<Vec<_>>>()?;
        let layers = self.layers_per_block.levels(n, "layers_per_block", path)?;
        let heads = self
            .attention_head_dim
            .levels(n, "attention_head_dim", path)?;
        let depth =
            self.transformer_layers_per_block
                .levels(n, "transformer_layers_per_block", path)?;
        let context = self
            .cross_attention_dim
            .levels(n, "cross_attention_dim", path)?;
        if context.iter().any(|c| *c != context[0]) {
            return Err(fail(
                path,
                format!("cross_attention_dim {context:?} differs by level: not supported"),
            ));
        }
        for (i, (&c, &h)) in self.block_out_channels.iter().zip(&heads).enumerate() {
            if h == 0 || !c.is_multiple_of(h) {
                return Err(fail(
                    path,
                    format!(
                        "attention_head_dim (heads) {h} does not divide {c} channels at level {i}"
                    ),
                ));
            }
            if self.norm_num_groups == 0 || !c.is_multiple_of(self.norm_num_groups) {
                return Err(fail(
                    path,
                    format!(
                        "norm_num_groups {} does not divide {c} channels",
                        self.norm_num_groups
                    ),
                ));
            }
        }
        if self.downsample_padding > 1 {
            return Err(fail(path, "downsample_padding must be 0 or 1"));
        }
        Ok(UnetLayout {
            context_dim: context[0],
            config: self,
            down_cross,
            up_cross,
            layers,
            heads,
            depth,
        })
    }
}

/// `vae/config.json` of an `AutoencoderKL`, the keys it honours.
#[derive(Debug, Clone, Deserialize)]
pub struct VaeConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub down_block_types: Vec<String>,
    pub up_block_types: Vec<String>,
    pub block_out_channels: Vec<usize>,
    pub layers_per_block: usize,
    pub latent_channels: usize,
    #[serde(default = "groups32")]
    pub norm_num_groups: usize,
    #[serde(default)]
    pub sample_size: Option<usize>,
    /// Latents are `encode(x) * scaling_factor`; decoding divides by it.
    #[serde(default = "sd_scale")]
    pub scaling_factor: f64,
    #[serde(default = "yes")]
    pub use_quant_conv: bool,
    #[serde(default = "yes")]
    pub use_post_quant_conv: bool,
    #[serde(default = "yes")]
    pub mid_block_add_attention: bool,
}

fn sd_scale() -> f64 {
    0.18215
}

impl VaeConfig {
    /// Reads `vae/config.json`, refusing what this autoencoder does not implement by its key.
    pub fn read(dir: &Path) -> Result<Self> {
        let (path, raw): (_, Map<String, Value>) = read_config(dir, "config.json")?;
        Self::parse(&path, raw)
    }

    /// A VAE config from the JSON object `config.json` would hold (for a network made here);
    /// the same checks as [`VaeConfig::read`].
    pub fn from_value(config: Value) -> Result<Self> {
        let path = Path::new("<vae config>");
        match config {
            Value::Object(raw) => Self::parse(path, raw),
            _ => Err(fail(path, "not a JSON object")),
        }
    }

    fn parse(path: &Path, raw: Map<String, Value>) -> Result<Self> {
        let path = path.to_path_buf();
        if let Some(c) = raw.get("_class_name").and_then(Value::as_str)
            && c != "AutoencoderKL"
        {
            return Err(fail(&path, format!("_class_name {c} is not AutoencoderKL")));
        }
        let honoured = [
            "in_channels",
            "out_channels",
            "down_block_types",
            "up_block_types",
            "block_out_channels",
            "layers_per_block",
            "latent_channels",
            "norm_num_groups",
            "sample_size",
            "scaling_factor",
            "use_quant_conv",
            "use_post_quant_conv",
            "mid_block_add_attention",
            // Only says to run the VAE in f32 when the rest is f16; this VAE always is.
            "force_upcast",
        ];
        let fixed: &[(&str, Vec<Value>)] = &[
            ("act_fn", vec![Value::from("silu")]),
            ("shift_factor", vec![Value::Null, Value::from(0.0)]),
            ("latents_mean", vec![Value::Null]),
            ("latents_std", vec![Value::Null]),
        ];
        refuse_unsupported(&path, &raw, &honoured, fixed)?;
        let c: VaeConfig =
            serde_json::from_value(Value::Object(raw)).map_err(|e| fail(&path, e.to_string()))?;
        if c.block_out_channels.is_empty()
            || c.block_out_channels.len() != c.down_block_types.len()
            || c.block_out_channels.len() != c.up_block_types.len()
        {
            return Err(fail(
                &path,
                "block_out_channels, down_block_types and up_block_types must have one entry per level",
            ));
        }
        for t in &c.down_block_types {
            if t != "DownEncoderBlock2D" {
                return Err(fail(
                    &path,
                    format!("down block type {t} is not supported (DownEncoderBlock2D)"),
                ));
            }
        }
        for t in &c.up_block_types {
            if t != "UpDecoderBlock2D" {
                return Err(fail(
                    &path,
                    format!("up block type {t} is not supported (UpDecoderBlock2D)"),
                ));
            }
        }
        if let Some(ch) = c
            .block_out_channels
            .iter()
            .find(|ch| c.norm_num_groups == 0 || !ch.is_multiple_of(c.norm_num_groups))
        {
            return Err(fail(
                &path,
                format!(
                    "norm_num_groups {} does not divide {ch} channels",
                    c.norm_num_groups
                ),
            ));
        }
        if !(c.scaling_factor.is_finite() && c.scaling_factor > 0.0) {
            return Err(fail(
                &path,
                format!("scaling_factor {} must be positive", c.scaling_factor),
            ));
        }
        Ok(c)
    }

    /// How many pixels one latent spans per side: 2^(levels - 1).
    pub fn scale_factor(&self) -> usize {
        1 << (self.block_out_channels.len() - 1)
    }
}
