//! A BERT encoder (Devlin et al. 2019) for inference, read from a Hugging Face `model.safetensors`:
//! token + position + segment embeddings, then post-LayerNorm transformer layers of multi-head
//! self-attention and a GELU feed-forward block. Weights are plain tensors: nothing here trains.

use burn::tensor::activation::{gelu, softmax};
use burn::tensor::module::layer_norm;
use burn::tensor::{Device, Int, Tensor, TensorData};
use safetensors::SafeTensors;
use serde::Deserialize;

use crate::{Result, TextError};

/// The fields of a Hugging Face BERT `config.json` that the forward pass needs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BertConfig {
    /// Width of every token vector (384 for MiniLM-L6).
    pub hidden_size: usize,
    /// Transformer layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    pub num_attention_heads: usize,
    /// Width of the feed-forward block.
    pub intermediate_size: usize,
    /// Longest input the position table covers.
    pub max_position_embeddings: usize,
    /// LayerNorm's epsilon.
    pub layer_norm_eps: f64,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// The feed-forward activation; only "gelu" (the erf form) is supported.
    pub hidden_act: String,
}

/// y = x W^T + b, with W stored as PyTorch does, `[out, in]` (kept transposed: `[in, out]`).
struct Dense {
    w: Tensor<2>,
    b: Tensor<1>,
}

impl Dense {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        x.matmul(self.w.clone()) + self.b.clone().unsqueeze::<2>()
    }
}

struct Norm {
    gamma: Tensor<1>,
    beta: Tensor<1>,
}

struct Layer {
    query: Dense,
    key: Dense,
    value: Dense,
    attention_out: Dense,
    attention_norm: Norm,
    intermediate: Dense,
    output: Dense,
    output_norm: Norm,
}

/// The encoder with its weights.
pub struct Bert {
    config: BertConfig,
    words: Tensor<2>,
    positions: Tensor<2>,
    segments: Tensor<2>,
    embedding_norm: Norm,
    layers: Vec<Layer>,
}

/// Reads one float32 tensor of the expected shape.
fn tensor<const D: usize>(
    st: &SafeTensors,
    name: &str,
    shape: [usize; D],
    device: &Device,
) -> Result<Tensor<D>> {
    let view = st
        .tensor(name)
        .map_err(|e| TextError::Weights(format!("{name}: {e}")))?;
    if view.dtype() != safetensors::Dtype::F32 || view.shape() != shape {
        return Err(TextError::Weights(format!(
            "{name}: expected float32 {shape:?}, found {:?} {:?}",
            view.dtype(),
            view.shape()
        )));
    }
    let values: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok(Tensor::from_data(TensorData::new(values, shape), device))
}

impl Bert {
    /// The encoder from the bytes of `model.safetensors` and its `config.json`.
    pub fn from_safetensors(bytes: &[u8], config: BertConfig, device: &Device) -> Result<Self> {
        if config.hidden_act != "gelu" {
            return Err(TextError::Weights(format!(
                "activation '{}' is not supported (only gelu)",
                config.hidden_act
            )));
        }
        let (h, ff) = (config.hidden_size, config.intermediate_size);
        if config.num_attention_heads == 0 || !h.is_multiple_of(config.num_attention_heads) {
            return Err(TextError::Weights(format!(
                "{} heads do not divide the width {h}",
                config.num_attention_heads
            )));
        }
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| TextError::Weights(format!("not a safetensors file: {e}")))?;
        let dense = |name: &str, i: usize, o: usize| -> Result<Dense> {
            Ok(Dense {
                w: tensor(&st, &format!("{name}.weight"), [o, i], device)?.transpose(),
                b: tensor(&st, &format!("{name}.bias"), [o], device)?,
            })
        };
        let norm = |name: &str| -> Result<Norm> {
            Ok(Norm {
                gamma: tensor(&st, &format!("{name}.weight"), [h], device)?,
                beta: tensor(&st, &format!("{name}.bias"), [h], device)?,
            })
        };
        let layers = (0..config.num_hidden_layers)
            .map(|l| {
                let p = format!("encoder.layer.{l}");
                Ok(Layer {
                    query: dense(&format!("{p}.attention.self.query"), h, h)?,
                    key: dense(&format!("{p}.attention.self.key"), h, h)?,
                    value: dense(&format!("{p}.attention.self.value"), h, h)?,
                    attention_out: dense(&format!("{p}.attention.output.dense"), h, h)?,
                    attention_norm: norm(&format!("{p}.attention.output.LayerNorm"))?,
                    intermediate: dense(&format!("{p}.intermediate.dense"), h, ff)?,
                    output: dense(&format!("{p}.output.dense"), ff, h)?,
                    output_norm: norm(&format!("{p}.output.LayerNorm"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            words: tensor(
                &st,
                "embeddings.word_embeddings.weight",
                [config.vocab_size, h],
                device,
            )?,
            positions: tensor(
                &st,
                "embeddings.position_embeddings.weight",
                [config.max_position_embeddings, h],
                device,
            )?,
            segments: tensor(
                &st,
                "embeddings.token_type_embeddings.weight",
                [2, h],
                device,
            )?,
            embedding_norm: norm("embeddings.LayerNorm")?,
            layers,
            config,
        })
    }

    /// The width of a token vector.
    pub fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    /// The longest token sequence the position table covers.
    pub fn max_tokens(&self) -> usize {
        self.config.max_position_embeddings
    }

    /// The last layer's token vectors `[L, hidden]` for one sequence of token ids (segment 0, no
    /// padding, so no attention mask).
    pub fn forward(&self, ids: &[u32]) -> Result<Tensor<2>> {
        let (l, h) = (ids.len(), self.config.hidden_size);
        if l == 0 || l > self.max_tokens() {
            return Err(TextError::Input(format!(
                "{l} tokens: the encoder reads 1 to {}",
                self.max_tokens()
            )));
        }
        if let Some(bad) = ids.iter().find(|i| **i as usize >= self.config.vocab_size) {
            return Err(TextError::Input(format!(
                "token id {bad} is outside the vocabulary"
            )));
        }
        let device = self.words.device();
        let ids: Vec<i64> = ids.iter().map(|i| i64::from(*i)).collect();
        let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [l]), &device);
        let eps = self.config.layer_norm_eps;
        let ln = |x: Tensor<2>, n: &Norm| layer_norm(x, n.gamma.clone(), Some(n.beta.clone()), eps);
        // Embeddings: word + absolute position + segment 0, then LayerNorm.
        let mut x = self.words.clone().select(0, ids)
            + self.positions.clone().narrow(0, 0, l)
            + self.segments.clone().narrow(0, 0, 1);
        x = ln(x, &self.embedding_norm);
        let heads = self.config.num_attention_heads;
        let dh = h / heads;
        let split = |t: Tensor<2>| t.reshape([l, heads, dh]).swap_dims(0, 1); // [heads, L, dh]
        for layer in &self.layers {
            // softmax(Q K^T / sqrt(d_head)) V per head (Vaswani et al. 2017, eq. 1).
            let q = split(layer.query.forward(x.clone()));
            let k = split(layer.key.forward(x.clone()));
            let v = split(layer.value.forward(x.clone()));
            let att = softmax(q.matmul(k.swap_dims(1, 2)) / (dh as f64).sqrt(), 2);
            let ctx = att.matmul(v).swap_dims(0, 1).reshape([l, h]);
            x = ln(layer.attention_out.forward(ctx) + x, &layer.attention_norm);
            let f = layer
                .output
                .forward(gelu(layer.intermediate.forward(x.clone())));
            x = ln(f + x, &layer.output_norm);
        }
        Ok(x)
    }
}
