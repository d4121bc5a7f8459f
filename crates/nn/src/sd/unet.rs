//! diffusers' `UNet2DConditionModel`, built from its `config.json`: a time embedding, down levels
//! of ResNet blocks (with spatial transformers where the level is `CrossAttn*`), a middle of
//! ResNet -> transformer -> ResNet, up levels that concatenate the skips, and an output conv. The
//! transformers attend to the prompt's token states (cross-attention).

use std::path::Path;

use burn::module::Module;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Bool, Device, Tensor};

use super::config::{UnetConfig, UnetLayout};
use super::layers::{
    Attention, AttentionNames, Conv, GegluFeedForward, GroupNorm, LayerNorm, Linear, ResnetBlock,
    ResnetSpec, timestep_embedding,
};
use super::weights::{ParamNames, Weights};
use crate::Result;
use crate::act::silu;
use crate::cpu::join::{add, cat_channels};

const UNET_ATTENTION: AttentionNames<'static> = AttentionNames {
    q: "to_q",
    k: "to_k",
    v: "to_v",
    out: "to_out.0",
    qkv_bias: false,
    accept_1x1: false,
};

/// Self-attention, cross-attention and a GEGLU feed-forward, each pre-LayerNorm and residual.
#[derive(Module, Debug)]
struct TransformerBlock {
    norm1: LayerNorm,
    attn1: Attention,
    norm2: LayerNorm,
    attn2: Attention,
    norm3: LayerNorm,
    ff: GegluFeedForward,
}

impl TransformerBlock {
    fn load(w: &Weights, p: &str, c: usize, heads: usize, context: usize) -> Result<Self> {
        let n = |s: &str| format!("{p}.{s}");
        Ok(Self {
            norm1: LayerNorm::load(w, &n("norm1"), c, 1e-5)?,
            attn1: Attention::load(w, &n("attn1"), &UNET_ATTENTION, c, c, heads, false)?,
            norm2: LayerNorm::load(w, &n("norm2"), c, 1e-5)?,
            attn2: Attention::load(w, &n("attn2"), &UNET_ATTENTION, c, context, heads, false)?,
            norm3: LayerNorm::load(w, &n("norm3"), c, 1e-5)?,
            ff: GegluFeedForward::load(w, &n("ff"), c, 4 * c)?,
        })
    }

    fn forward(
        &self,
        x: Tensor<3>,
        context: Tensor<3>,
        pad: Option<&Tensor<2, Bool>>,
    ) -> Tensor<3> {
        let x = add(x.clone(), self.attn1.forward(self.norm1.forward(x), None));
        let x = add(
            x.clone(),
            self.attn2
                .forward_masked(self.norm2.forward(x), Some(context), pad),
        );
        add(x.clone(), self.ff.forward(self.norm3.forward(x)))
    }
}

/// The projection in and out of token form: a 1x1 conv applied before flattening (SD 1.x) or a
/// linear layer after it (SD 2.x, `use_linear_projection`).
#[derive(Module, Debug)]
enum Projection {
    Conv(Conv),
    Linear(Linear),
}

/// diffusers' `Transformer2DModel`: GroupNorm (eps 1e-6), project in, transformer blocks over
/// the H x W tokens, project out, plus the input.
#[derive(Module, Debug)]
struct SpatialTransformer {
    norm: GroupNorm,
    proj_in: Projection,
    blocks: Vec<TransformerBlock>,
    proj_out: Projection,
}

impl SpatialTransformer {
    fn load(
        w: &Weights,
        p: &str,
        lay: &UnetLayout,
        c: usize,
        heads: usize,
        depth: usize,
    ) -> Result<Self> {
        let n = |s: &str| format!("{p}.{s}");
        let proj = |name: &str| -> Result<Projection> {
            Ok(if lay.config.use_linear_projection {
                Projection::Linear(Linear::load(w, &n(name), c, c, true)?)
            } else {
                Projection::Conv(Conv::k1(w, &n(name), c, c)?)
            })
        };
        Ok(Self {
            norm: GroupNorm::load(w, &n("norm"), lay.config.norm_num_groups, c, 1e-6)?,
            proj_in: proj("proj_in")?,
            blocks: (0..depth)
                .map(|k| {
                    TransformerBlock::load(
                        w,
                        &n(&format!("transformer_blocks.{k}")),
                        c,
                        heads,
                        lay.context_dim,
                    )
                })
                .collect::<Result<_>>()?,
            proj_out: proj("proj_out")?,
        })
    }

    fn forward(
        &self,
        x: Tensor<4>,
        context: Tensor<3>,
        pad: Option<&Tensor<2, Bool>>,
    ) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let tokens = |t: Tensor<4>| t.reshape([b, c, h * w]).swap_dims(1, 2);
        let image = |t: Tensor<3>| t.swap_dims(1, 2).reshape([b, c, h, w]);
        let normed = self.norm.forward(x.clone());
        let mut t = match &self.proj_in {
            Projection::Conv(conv) => tokens(conv.forward(normed)),
            Projection::Linear(lin) => lin.forward(tokens(normed)),
        };
        for block in &self.blocks {
            t = block.forward(t, context.clone(), pad);
        }
        let out = match &self.proj_out {
            Projection::Conv(conv) => conv.forward(image(t)),
            Projection::Linear(lin) => image(lin.forward(t)),
        };
        add(out, x)
    }
}

/// One level: ResNet blocks, each optionally followed by a spatial transformer, then an
/// optional resampler (a stride-2 conv down, or nearest x2 and a conv up).
#[derive(Module, Debug)]
struct Level {
    resnets: Vec<ResnetBlock>,
    attentions: Vec<SpatialTransformer>,
    resample: Option<Conv>,
}

/// diffusers' `UNet2DConditionModel` with its weights.
#[derive(Module, Debug)]
pub struct UNet2DCondition {
    conv_in: Conv,
    time_1: Linear,
    time_2: Linear,
    down: Vec<Level>,
    mid_resnets: Vec<ResnetBlock>,
    mid_attention: SpatialTransformer,
    up: Vec<Level>,
    norm_out: GroupNorm,
    conv_out: Conv,
    #[module(skip)]
    time_dim: usize,
    #[module(skip)]
    flip_sin_to_cos: bool,
    #[module(skip)]
    freq_shift: f64,
}

impl UNet2DCondition {
    /// The UNet in a `unet/` folder: `config.json` and its safetensors (any variant or shards).
    pub fn load(dir: &Path, device: &Device) -> Result<(Self, UnetLayout)> {
        let layout = UnetConfig::read(dir)?;
        let w = Weights::open(dir, "diffusion_pytorch_model", device)?;
        let unet = Self::from_weights(&w, &layout)?;
        w.all_used()?;
        Ok((unet, layout))
    }

    /// A new UNet of `lay` to train, PyTorch's default initialisation drawn from `seed`
    /// ([`Weights::fresh`]), with the diffusers names of its parameters for
    /// [`super::save_component`].
    pub fn fresh(lay: &UnetLayout, seed: u64, device: &Device) -> Result<(Self, ParamNames)> {
        let w = Weights::fresh(seed, device);
        let unet = Self::from_weights(&w, lay)?;
        Ok((unet, w.names()))
    }

    /// Builds the UNet from weights already opened.
    pub fn from_weights(w: &Weights, lay: &UnetLayout) -> Result<Self> {
        let c = &lay.config;
        let ch = &c.block_out_channels;
        let n = ch.len();
        let t_dim = 4 * ch[0];
        let spec = |c_in, c_out, scale| ResnetSpec {
            c_in,
            c_out,
            temb: Some(t_dim),
            groups: c.norm_num_groups,
            eps: c.norm_eps,
            output_scale: scale,
        };
        let mut down = Vec::with_capacity(n);
        for i in 0..n {
            let p = format!("down_blocks.{i}");
            let c_in = if i == 0 { ch[0] } else { ch[i - 1] };
            let mut resnets = Vec::new();
            let mut attentions = Vec::new();
            for j in 0..lay.layers[i] {
                let from = if j == 0 { c_in } else { ch[i] };
                resnets.push(ResnetBlock::load(
                    w,
                    &format!("{p}.resnets.{j}"),
                    &spec(from, ch[i], 1.0),
                )?);
                if lay.down_cross[i] {
                    attentions.push(SpatialTransformer::load(
                        w,
                        &format!("{p}.attentions.{j}"),
                        lay,
                        ch[i],
                        lay.heads[i],
                        lay.depth[i],
                    )?);
                }
            }
            let resample = if i + 1 < n {
                let pad = c.downsample_padding;
                // Padding 0 means diffusers' asymmetric pad of one row and column, right and bottom.
                let padding = if pad == 1 {
                    [(1, 1), (1, 1)]
                } else {
                    [(0, 1), (0, 1)]
                };
                Some(Conv::load(
                    w,
                    &format!("{p}.downsamplers.0.conv"),
                    ch[i],
                    ch[i],
                    3,
                    2,
                    padding,
                )?)
            } else {
                None
            };
            down.push(Level {
                resnets,
                attentions,
                resample,
            });
        }
        let top = ch[n - 1];
        let mid_spec = spec(top, top, c.mid_block_scale_factor);
        let mid_resnets = vec![
            ResnetBlock::load(w, "mid_block.resnets.0", &mid_spec)?,
            ResnetBlock::load(w, "mid_block.resnets.1", &mid_spec)?,
        ];
        let mid_attention = SpatialTransformer::load(
            w,
            "mid_block.attentions.0",
            lay,
            top,
            lay.heads[n - 1],
            lay.depth[n - 1],
        )?;
        let rev: Vec<usize> = ch.iter().rev().copied().collect();
        let mut up = Vec::with_capacity(n);
        for i in 0..n {
            let p = format!("up_blocks.{i}");
            let level = n - 1 - i;
            let prev = if i == 0 { rev[0] } else { rev[i - 1] };
            let out = rev[i];
            let input = rev[(i + 1).min(n - 1)];
            let count = lay.layers[level] + 1;
            let mut resnets = Vec::new();
            let mut attentions = Vec::new();
            for j in 0..count {
                let skip = if j + 1 == count { input } else { out };
                let from = if j == 0 { prev } else { out };
                resnets.push(ResnetBlock::load(
                    w,
                    &format!("{p}.resnets.{j}"),
                    &spec(from + skip, out, 1.0),
                )?);
                if lay.up_cross[i] {
                    attentions.push(SpatialTransformer::load(
                        w,
                        &format!("{p}.attentions.{j}"),
                        lay,
                        out,
                        lay.heads[level],
                        lay.depth[level],
                    )?);
                }
            }
            let resample = if i + 1 < n {
                Some(Conv::k3(w, &format!("{p}.upsamplers.0.conv"), out, out)?)
            } else {
                None
            };
            up.push(Level {
                resnets,
                attentions,
                resample,
            });
        }
        Ok(Self {
            conv_in: Conv::k3(w, "conv_in", c.in_channels, ch[0])?,
            time_1: Linear::load(w, "time_embedding.linear_1", ch[0], t_dim, true)?,
            time_2: Linear::load(w, "time_embedding.linear_2", t_dim, t_dim, true)?,
            down,
            mid_resnets,
            mid_attention,
            up,
            norm_out: GroupNorm::load(w, "conv_norm_out", c.norm_num_groups, ch[0], c.norm_eps)?,
            conv_out: Conv::k3(w, "conv_out", ch[0], c.out_channels)?,
            time_dim: ch[0],
            flip_sin_to_cos: c.flip_sin_to_cos,
            freq_shift: c.freq_shift,
        })
    }

    /// The noise prediction (or v, or whatever the model was trained for) of latents `x`
    /// `[B, C, H, W]` at (fractional) timesteps `t` `[B]`, attending to `context` `[B, L, d]`.
    pub fn forward(&self, x: Tensor<4>, t: Tensor<1>, context: Tensor<3>) -> Tensor<4> {
        self.forward_masked(x, t, context, None)
    }

    /// [`UNet2DCondition::forward`] where the context's rows are padded to one length: `pad`
    /// `[B, L]` is true at padding, which cross-attention then ignores (a text encoder whose
    /// sentences have their own lengths, as MiniLM's token states).
    pub fn forward_masked(
        &self,
        x: Tensor<4>,
        t: Tensor<1>,
        context: Tensor<3>,
        pad: Option<Tensor<2, Bool>>,
    ) -> Tensor<4> {
        let pad = pad.as_ref();
        let emb = timestep_embedding(t, self.time_dim, self.flip_sin_to_cos, self.freq_shift);
        let temb = self.time_2.forward(silu(self.time_1.forward(emb)));
        // Every ResNet block takes SiLU(temb) through its own projection.
        let temb = silu(temb);

        let mut x = self.conv_in.forward(x);
        let mut skips = vec![x.clone()];
        for level in &self.down {
            for (j, resnet) in level.resnets.iter().enumerate() {
                x = resnet.forward(x, Some(temb.clone()));
                if let Some(attn) = level.attentions.get(j) {
                    x = attn.forward(x, context.clone(), pad);
                }
                skips.push(x.clone());
            }
            if let Some(conv) = &level.resample {
                x = conv.forward(x);
                skips.push(x.clone());
            }
        }
        x = self.mid_resnets[0].forward(x, Some(temb.clone()));
        x = self.mid_attention.forward(x, context.clone(), pad);
        x = self.mid_resnets[1].forward(x, Some(temb.clone()));
        for level in &self.up {
            for (j, resnet) in level.resnets.iter().enumerate() {
                let skip = skips
                    .pop()
                    .unwrap_or_else(|| unreachable!("one skip per up resnet"));
                x = resnet.forward(cat_channels(x, skip), Some(temb.clone()));
                if let Some(attn) = level.attentions.get(j) {
                    x = attn.forward(x, context.clone(), pad);
                }
            }
            if let Some(conv) = &level.resample {
                // Nearest to the size of the skip that comes next (twice, unless that level's
                // size was odd), then a conv.
                let [_, _, h, w] = skips.last().map(|s| s.dims()).unwrap_or_else(|| x.dims());
                let mut options = InterpolateOptions::new(InterpolateMode::Nearest);
                options.align_corners = false;
                options.output_size = Some([h, w]);
                x = conv.forward(interpolate(x, options));
            }
        }
        let x = self.norm_out.forward_silu(x);
        self.conv_out.forward(x)
    }
}
