//! diffusers' `AutoencoderKL` (Rombach et al. 2022), built from `vae/config.json`: an encoder of
//! ResNet levels with stride-2 convs (padded right and bottom only), a middle with one-head
//! self-attention, and a Gaussian posterior (mean, log-variance clamped to [-30, 20]); a decoder
//! that mirrors it with nearest x2 upsampling. Every norm here has epsilon 1e-6.

use std::path::Path;

use burn::module::Module;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor};

use super::config::VaeConfig;
use super::layers::{Attention, AttentionNames, Conv, GroupNorm, ResnetBlock, ResnetSpec};
use super::weights::{ParamNames, Weights};
use crate::Result;
use crate::cpu::join::add;

const EPS: f64 = 1e-6;

/// GroupNorm, one-head self-attention over the H x W positions, plus the input.
#[derive(Module, Debug)]
struct MidAttention {
    norm: GroupNorm,
    attention: Attention,
}

impl MidAttention {
    fn load(w: &Weights, p: &str, c: usize, groups: usize) -> Result<Self> {
        // Files saved before diffusers' 2023 attention refactor use the old names.
        let old = w.has(&format!("{p}.query.weight"));
        let names = if old {
            AttentionNames {
                q: "query",
                k: "key",
                v: "value",
                out: "proj_attn",
                qkv_bias: true,
                accept_1x1: true,
            }
        } else {
            AttentionNames {
                q: "to_q",
                k: "to_k",
                v: "to_v",
                out: "to_out.0",
                qkv_bias: true,
                accept_1x1: true,
            }
        };
        Ok(Self {
            norm: GroupNorm::load(w, &format!("{p}.group_norm"), groups, c, EPS)?,
            attention: Attention::load(w, p, &names, c, c, 1, false)?,
        })
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let t = self
            .norm
            .forward(x.clone())
            .reshape([b, c, h * w])
            .swap_dims(1, 2);
        let t = self.attention.forward(t, None);
        add(t.swap_dims(1, 2).reshape([b, c, h, w]), x)
    }
}

/// ResNet -> attention (unless `mid_block_add_attention` is false) -> ResNet.
#[derive(Module, Debug)]
struct Middle {
    resnets: Vec<ResnetBlock>,
    attention: Option<MidAttention>,
}

impl Middle {
    fn load(w: &Weights, p: &str, c: usize, cfg: &VaeConfig) -> Result<Self> {
        let spec = spec(c, c, cfg);
        Ok(Self {
            resnets: vec![
                ResnetBlock::load(w, &format!("{p}.resnets.0"), &spec)?,
                ResnetBlock::load(w, &format!("{p}.resnets.1"), &spec)?,
            ],
            attention: if cfg.mid_block_add_attention {
                Some(MidAttention::load(
                    w,
                    &format!("{p}.attentions.0"),
                    c,
                    cfg.norm_num_groups,
                )?)
            } else {
                None
            },
        })
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut x = self.resnets[0].forward(x, None);
        if let Some(a) = &self.attention {
            x = a.forward(x);
        }
        self.resnets[1].forward(x, None)
    }
}

fn spec(c_in: usize, c_out: usize, cfg: &VaeConfig) -> ResnetSpec {
    ResnetSpec {
        c_in,
        c_out,
        temb: None,
        groups: cfg.norm_num_groups,
        eps: EPS,
        output_scale: 1.0,
    }
}

#[derive(Module, Debug)]
struct Level {
    resnets: Vec<ResnetBlock>,
    resample: Option<Conv>,
}

/// The encoder: image `[B, 3, H, W]` in [-1, 1] -> the posterior's mean and log-variance.
#[derive(Module, Debug)]
struct Encoder {
    conv_in: Conv,
    levels: Vec<Level>,
    middle: Middle,
    norm_out: GroupNorm,
    conv_out: Conv,
    quant: Option<Conv>,
}

/// The decoder: latents (already divided by the scaling factor) -> image in about [-1, 1].
#[derive(Module, Debug)]
struct Decoder {
    post_quant: Option<Conv>,
    conv_in: Conv,
    middle: Middle,
    levels: Vec<Level>,
    norm_out: GroupNorm,
    conv_out: Conv,
}

/// diffusers' `AutoencoderKL` with its weights.
#[derive(Module, Debug)]
pub struct AutoencoderKl {
    encoder: Encoder,
    decoder: Decoder,
    #[module(skip)]
    latent_channels: usize,
}

impl AutoencoderKl {
    /// The autoencoder in a `vae/` folder.
    pub fn load(dir: &Path, device: &Device) -> Result<(Self, VaeConfig)> {
        let config = VaeConfig::read(dir)?;
        let w = Weights::open(dir, "diffusion_pytorch_model", device)?;
        let vae = Self::from_weights(&w, &config)?;
        w.all_used()?;
        Ok((vae, config))
    }

    /// A new autoencoder of `cfg` to train, PyTorch's default initialisation drawn from
    /// `seed` ([`Weights::fresh`]), with the diffusers names of its parameters for
    /// [`super::save_component`].
    pub fn fresh(cfg: &VaeConfig, seed: u64, device: &Device) -> Result<(Self, ParamNames)> {
        let w = Weights::fresh(seed, device);
        let vae = Self::from_weights(&w, cfg)?;
        Ok((vae, w.names()))
    }

    /// Builds the autoencoder from weights already opened.
    pub fn from_weights(w: &Weights, cfg: &VaeConfig) -> Result<Self> {
        let ch = &cfg.block_out_channels;
        let n = ch.len();
        let lat = cfg.latent_channels;
        let groups = cfg.norm_num_groups;
        let mut levels = Vec::with_capacity(n);
        for i in 0..n {
            let p = format!("encoder.down_blocks.{i}");
            let c_in = if i == 0 { ch[0] } else { ch[i - 1] };
            let resnets = (0..cfg.layers_per_block)
                .map(|j| {
                    let from = if j == 0 { c_in } else { ch[i] };
                    ResnetBlock::load(w, &format!("{p}.resnets.{j}"), &spec(from, ch[i], cfg))
                })
                .collect::<Result<_>>()?;
            let resample = if i + 1 < n {
                let name = format!("{p}.downsamplers.0.conv");
                Some(Conv::load(w, &name, ch[i], ch[i], 3, 2, [(0, 1), (0, 1)])?)
            } else {
                None
            };
            levels.push(Level { resnets, resample });
        }
        let top = ch[n - 1];
        let encoder = Encoder {
            conv_in: Conv::k3(w, "encoder.conv_in", cfg.in_channels, ch[0])?,
            levels,
            middle: Middle::load(w, "encoder.mid_block", top, cfg)?,
            norm_out: GroupNorm::load(w, "encoder.conv_norm_out", groups, top, EPS)?,
            conv_out: Conv::k3(w, "encoder.conv_out", top, 2 * lat)?,
            quant: if cfg.use_quant_conv {
                Some(Conv::k1(w, "quant_conv", 2 * lat, 2 * lat)?)
            } else {
                None
            },
        };
        let rev: Vec<usize> = ch.iter().rev().copied().collect();
        let mut levels = Vec::with_capacity(n);
        for i in 0..n {
            let p = format!("decoder.up_blocks.{i}");
            let prev = if i == 0 { rev[0] } else { rev[i - 1] };
            let resnets = (0..cfg.layers_per_block + 1)
                .map(|j| {
                    let from = if j == 0 { prev } else { rev[i] };
                    ResnetBlock::load(w, &format!("{p}.resnets.{j}"), &spec(from, rev[i], cfg))
                })
                .collect::<Result<_>>()?;
            let resample = if i + 1 < n {
                Some(Conv::k3(
                    w,
                    &format!("{p}.upsamplers.0.conv"),
                    rev[i],
                    rev[i],
                )?)
            } else {
                None
            };
            levels.push(Level { resnets, resample });
        }
        let decoder = Decoder {
            post_quant: if cfg.use_post_quant_conv {
                Some(Conv::k1(w, "post_quant_conv", lat, lat)?)
            } else {
                None
            },
            conv_in: Conv::k3(w, "decoder.conv_in", lat, top)?,
            middle: Middle::load(w, "decoder.mid_block", top, cfg)?,
            levels,
            norm_out: GroupNorm::load(w, "decoder.conv_norm_out", groups, ch[0], EPS)?,
            conv_out: Conv::k3(w, "decoder.conv_out", ch[0], cfg.out_channels)?,
        };
        Ok(Self {
            encoder,
            decoder,
            latent_channels: lat,
        })
    }

    /// Channels of its latents.
    pub fn latent_channels(&self) -> usize {
        self.latent_channels
    }

    /// How many pixels one latent spans per side: 2^(levels - 1).
    pub fn scale_factor(&self) -> usize {
        1 << (self.encoder.levels.len() - 1)
    }

    /// The device its weights are on.
    pub fn device(&self) -> Device {
        use burn::module::Module;
        self.devices()
            .into_iter()
            .next()
            .unwrap_or_else(diffuse_core::device::cpu)
    }

    /// The posterior of images `[B, C, H, W]` in [-1, 1]: its mean and log-variance (clamped to
    /// [-30, 20] as diffusers does), each `[B, latent_channels, H / f, W / f]`, unscaled.
    pub fn encode(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let e = &self.encoder;
        let mut x = e.conv_in.forward(x);
        for level in &e.levels {
            for r in &level.resnets {
                x = r.forward(x, None);
            }
            if let Some(conv) = &level.resample {
                x = conv.forward(x);
            }
        }
        x = e.middle.forward(x);
        x = e.conv_out.forward(e.norm_out.forward_silu(x));
        if let Some(q) = &e.quant {
            x = q.forward(x);
        }
        let l = self.latent_channels;
        let mean = x.clone().narrow(1, 0, l);
        let logvar = x.narrow(1, l, l).clamp(-30.0, 20.0);
        (mean, logvar)
    }

    /// Latents `[B, latent_channels, h, w]` (already divided by the scaling factor) -> images
    /// `[B, C, h f, w f]`, about [-1, 1], not clamped.
    pub fn decode(&self, z: Tensor<4>) -> Tensor<4> {
        let d = &self.decoder;
        let mut x = match &d.post_quant {
            Some(q) => q.forward(z),
            None => z,
        };
        x = d.conv_in.forward(x);
        x = d.middle.forward(x);
        for level in &d.levels {
            for r in &level.resnets {
                x = r.forward(x, None);
            }
            if let Some(conv) = &level.resample {
                let [_, _, h, w] = x.dims();
                let mut options = InterpolateOptions::new(InterpolateMode::Nearest);
                options.align_corners = false;
                options.output_size = Some([2 * h, 2 * w]);
                x = conv.forward(interpolate(x, options));
            }
        }
        d.conv_out.forward(d.norm_out.forward_silu(x))
    }
}
