//! CLIP's text transformer (Radford et al. 2021) as transformers' `CLIPTextModel`: token and
//! position embeddings, causal pre-LayerNorm layers (self-attention, then an MLP with
//! `hidden_act`), a final LayerNorm; the last hidden state is what Stable Diffusion's UNet attends
//! to. SD 2.x's "penultimate layer" is its config's `num_hidden_layers: 23`, honoured as written.

use std::path::Path;

use burn::module::{Module, Param};
use burn::tensor::activation::sigmoid;
use burn::tensor::module::embedding;
use burn::tensor::{Device, Int, Tensor};
use serde::Deserialize;

use super::config::read_config;
use super::layers::{Attention, AttentionNames, LayerNorm, Linear};
use super::weights::Weights;
use crate::act::gelu;
use crate::{NnError, Result};

/// The keys of a transformers `CLIPTextConfig` the forward pass reads.
#[derive(Debug, Clone, Deserialize)]
pub struct ClipTextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub max_position_embeddings: usize,
    /// `quick_gelu` (x sigmoid(1.702 x), SD 1.x) or `gelu` (exact, SD 2.x).
    pub hidden_act: String,
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub architectures: Option<Vec<String>>,
}

impl ClipTextConfig {
    /// Reads `config.json` of a `text_encoder/` folder and refuses what is not a CLIP text model.
    pub fn read(dir: &Path) -> Result<Self> {
        let (path, config): (_, Self) = read_config(dir, "config.json")?;
        let bad = |m: String| {
            Err(NnError::Checkpoint {
                path: path.display().to_string(),
                message: m,
            })
        };
        if let Some(a) = &config.architectures
            && !a.iter().any(|a| a == "CLIPTextModel")
        {
            return bad(format!(
                "architectures {a:?}: only CLIPTextModel is supported as a text encoder"
            ));
        }
        if !matches!(config.hidden_act.as_str(), "quick_gelu" | "gelu") {
            return bad(format!(
                "hidden_act {:?} is not supported (quick_gelu or gelu)",
                config.hidden_act
            ));
        }
        if config.num_attention_heads == 0
            || !config
                .hidden_size
                .is_multiple_of(config.num_attention_heads)
        {
            return bad(format!(
                "num_attention_heads {} does not divide hidden_size {}",
                config.num_attention_heads, config.hidden_size
            ));
        }
        Ok(config)
    }
}

#[derive(Module, Debug)]
struct ClipLayer {
    norm1: LayerNorm,
    attention: Attention,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    #[module(skip)]
    quick_gelu: bool,
}

impl ClipLayer {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = x.clone() + self.attention.forward(self.norm1.forward(x), None);
        let h = self.fc1.forward(self.norm2.forward(x.clone()));
        let h = if self.quick_gelu {
            h.clone() * sigmoid(h * 1.702)
        } else {
            gelu(h)
        };
        x + self.fc2.forward(h)
    }
}

/// The text encoder with its weights.
#[derive(Module, Debug)]
pub struct ClipText {
    tokens: Param<Tensor<2>>,
    positions: Param<Tensor<2>>,
    layers: Vec<ClipLayer>,
    final_norm: LayerNorm,
}

impl ClipText {
    /// The model in a `text_encoder/` folder: `config.json` and `model[.fp16].safetensors`, with
    /// or without transformers' `text_model.` prefix.
    pub fn load(dir: &Path, device: &Device) -> Result<(Self, ClipTextConfig)> {
        let config = ClipTextConfig::read(dir)?;
        let w = Weights::open(dir, "model", device)?;
        let model = Self::from_weights(&w, &config)?;
        w.all_used()?;
        Ok((model, config))
    }

    /// Builds the model from weights already opened.
    pub fn from_weights(w: &Weights, c: &ClipTextConfig) -> Result<Self> {
        let root = if w.has("text_model.embeddings.token_embedding.weight") {
            "text_model."
        } else {
            ""
        };
        let d = c.hidden_size;
        let names = AttentionNames {
            q: "q_proj",
            k: "k_proj",
            v: "v_proj",
            out: "out_proj",
            qkv_bias: true,
            accept_1x1: false,
        };
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let p = |n: &str| format!("{root}encoder.layers.{i}.{n}");
            layers.push(ClipLayer {
                norm1: LayerNorm::load(w, &p("layer_norm1"), d, c.layer_norm_eps)?,
                attention: Attention::load(
                    w,
                    &p("self_attn"),
                    &names,
                    d,
                    d,
                    c.num_attention_heads,
                    true,
                )?,
                norm2: LayerNorm::load(w, &p("layer_norm2"), d, c.layer_norm_eps)?,
                fc1: Linear::load(w, &p("mlp.fc1"), d, c.intermediate_size, true)?,
                fc2: Linear::load(w, &p("mlp.fc2"), c.intermediate_size, d, true)?,
                quick_gelu: c.hidden_act == "quick_gelu",
            });
        }
        Ok(Self {
            tokens: w.param(
                &format!("{root}embeddings.token_embedding.weight"),
                [c.vocab_size, d],
            )?,
            positions: w.param(
                &format!("{root}embeddings.position_embedding.weight"),
                [c.max_position_embeddings, d],
            )?,
            layers,
            final_norm: LayerNorm::load(
                w,
                &format!("{root}final_layer_norm"),
                d,
                c.layer_norm_eps,
            )?,
        })
    }

    /// Token ids `[B, L]` -> the last hidden state `[B, L, hidden]`. Ids must be below the
    /// vocabulary size and L at most `max_position_embeddings` (the tokenizer guarantees both).
    pub fn forward(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let [_, l] = ids.dims();
        let x = embedding(self.tokens.val(), ids)
            + self.positions.val().narrow(0, 0, l).unsqueeze::<3>();
        let x = self.layers.iter().fold(x, |x, layer| layer.forward(x));
        self.final_norm.forward(x)
    }

    /// The device the weights live on.
    pub fn device(&self) -> Device {
        self.tokens.val().device()
    }

    /// The vocabulary size (ids must be below it).
    pub fn vocab_size(&self) -> usize {
        self.tokens.val().dims()[0]
    }

    /// The width of each token's state.
    pub fn hidden_size(&self) -> usize {
        self.tokens.val().dims()[1]
    }
}
