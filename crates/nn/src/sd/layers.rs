//! The building blocks Stable Diffusion's networks share, each read from PyTorch-named weights:
//! linear and convolution layers, group and layer norms with their epsilon set per site, the
//! multi-head attention of the UNet, the VAE and CLIP (`cpu::attention`, else burn's), the
//! ResNet block with its time embedding, and the sinusoidal timestep embedding.

use burn::module::{Module, Param};
use burn::tensor::module::{layer_norm, linear};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Bool, Device, Tensor};

use super::weights::Weights;
use crate::Result;
use crate::act::geglu;
use crate::cpu::attention::attention;
use crate::cpu::conv::conv2d;
use crate::cpu::join::{add, add_per_channel};
use crate::cpu::norm::group_norm;

/// y = x W^T + b (W stored `[out, in]` by PyTorch, kept here as `[in, out]`).
#[derive(Module, Debug)]
pub struct Linear {
    weight: Param<Tensor<2>>,
    bias: Option<Param<Tensor<1>>>,
}

impl Linear {
    /// `{name}.weight` `[d_out, d_in]` and, when `bias`, `{name}.bias`.
    pub fn load(w: &Weights, name: &str, d_in: usize, d_out: usize, bias: bool) -> Result<Self> {
        let weight = w.tensor(&format!("{name}.weight"), [d_out, d_in])?;
        Self::with(w, name, weight, bias)
    }

    /// As [`Linear::load`], also accepting the weight stored as a 1x1 convolution
    /// `[d_out, d_in, 1, 1]`, as some old VAE files store their attention.
    pub fn load_1x1(
        w: &Weights,
        name: &str,
        d_in: usize,
        d_out: usize,
        bias: bool,
    ) -> Result<Self> {
        let wname = format!("{name}.weight");
        if w.shape(&wname) == Some(&[d_out, d_in, 1, 1][..]) {
            let weight = w
                .tensor(&wname, [d_out, d_in, 1, 1])?
                .reshape([d_out, d_in]);
            Self::with(w, name, weight, bias)
        } else {
            Self::load(w, name, d_in, d_out, bias)
        }
    }

    fn with(w: &Weights, name: &str, weight: Tensor<2>, bias: bool) -> Result<Self> {
        let d_out = weight.dims()[0];
        let weight = w.param_of(&format!("{name}.weight"), weight.transpose(), true);
        let bias = if bias {
            Some(w.param(&format!("{name}.bias"), [d_out])?)
        } else {
            None
        };
        Ok(Self { weight, bias })
    }

    /// Applies the layer to the last dimension.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        linear(x, self.weight.val(), self.bias.as_ref().map(|b| b.val()))
    }
}

/// A 2-D convolution with PyTorch's `[out, in, k, k]` weight and a bias.
#[derive(Module, Debug)]
pub struct Conv {
    weight: Param<Tensor<4>>,
    bias: Param<Tensor<1>>,
    #[module(skip)]
    stride: usize,
    #[module(skip)]
    padding: [(usize, usize); 2],
}

impl Conv {
    /// A k x k convolution with symmetric padding `k / 2`, or the given padding.
    pub fn load(
        w: &Weights,
        name: &str,
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        padding: [(usize, usize); 2],
    ) -> Result<Self> {
        Ok(Self {
            weight: w.param(&format!("{name}.weight"), [c_out, c_in, k, k])?,
            bias: w.param(&format!("{name}.bias"), [c_out])?,
            stride,
            padding,
        })
    }

    /// A 3x3 convolution, stride 1, padding 1.
    pub fn k3(w: &Weights, name: &str, c_in: usize, c_out: usize) -> Result<Self> {
        Self::load(w, name, c_in, c_out, 3, 1, [(1, 1), (1, 1)])
    }

    /// A 1x1 convolution.
    pub fn k1(w: &Weights, name: &str, c_in: usize, c_out: usize) -> Result<Self> {
        Self::load(w, name, c_in, c_out, 1, 1, [(0, 0), (0, 0)])
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        conv2d(
            x,
            self.weight.val(),
            Some(self.bias.val()),
            ConvOptions {
                stride: [self.stride; 2],
                padding: self.padding,
                dilation: [1, 1],
                groups: 1,
            },
        )
    }
}

/// GroupNorm (biased variance, as PyTorch) with an affine part and its own epsilon.
#[derive(Module, Debug)]
pub struct GroupNorm {
    gamma: Param<Tensor<1>>,
    beta: Param<Tensor<1>>,
    #[module(skip)]
    groups: usize,
    #[module(skip)]
    eps: f64,
}

impl GroupNorm {
    pub fn load(w: &Weights, name: &str, groups: usize, channels: usize, eps: f64) -> Result<Self> {
        if groups == 0 || !channels.is_multiple_of(groups) {
            return Err(crate::NnError::Invalid(format!(
                "{name}: {groups} groups do not divide {channels} channels"
            )));
        }
        Ok(Self {
            gamma: w.param(&format!("{name}.weight"), [channels])?,
            beta: w.param(&format!("{name}.bias"), [channels])?,
            groups,
            eps,
        })
    }

    /// Normalises `[B, C, H, W]` over each group of channels and all positions.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.run(x, false)
    }

    /// `silu(self.forward(x))`, fused on the CPU.
    pub fn forward_silu(&self, x: Tensor<4>) -> Tensor<4> {
        self.run(x, true)
    }

    fn run(&self, x: Tensor<4>, silu: bool) -> Tensor<4> {
        let affine = Some((self.gamma.val(), self.beta.val()));
        group_norm(x, affine, self.groups, self.eps, silu)
    }
}

/// LayerNorm over the last dimension.
#[derive(Module, Debug)]
pub struct LayerNorm {
    gamma: Param<Tensor<1>>,
    beta: Param<Tensor<1>>,
    #[module(skip)]
    eps: f64,
}

impl LayerNorm {
    pub fn load(w: &Weights, name: &str, dim: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            gamma: w.param(&format!("{name}.weight"), [dim])?,
            beta: w.param(&format!("{name}.bias"), [dim])?,
            eps,
        })
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        layer_norm(x, self.gamma.val(), Some(self.beta.val()), self.eps)
    }
}

/// Multi-head attention: queries from `x`, keys and values from a context (itself for
/// self-attention), through [`crate::cpu::attention`] (burn's fused kernel off the CPU or
/// with a gradient to keep).
#[derive(Module, Debug)]
pub struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    #[module(skip)]
    heads: usize,
    #[module(skip)]
    causal: bool,
}

/// The weight names and biases of an attention layer as its source writes them.
pub struct AttentionNames<'a> {
    pub q: &'a str,
    pub k: &'a str,
    pub v: &'a str,
    pub out: &'a str,
    /// Whether q, k and v carry a bias (the output always does).
    pub qkv_bias: bool,
    /// Whether weights stored as 1x1 convolutions are accepted.
    pub accept_1x1: bool,
}

impl Attention {
    /// An attention layer of `dim`-wide queries over `context_dim`-wide keys.
    pub fn load(
        w: &Weights,
        prefix: &str,
        names: &AttentionNames,
        dim: usize,
        context_dim: usize,
        heads: usize,
        causal: bool,
    ) -> Result<Self> {
        if heads == 0 || !dim.is_multiple_of(heads) {
            return Err(crate::NnError::Invalid(format!(
                "{prefix}: {heads} heads do not divide width {dim}"
            )));
        }
        let p = |n: &str| format!("{prefix}.{n}");
        let lin = if names.accept_1x1 {
            Linear::load_1x1
        } else {
            Linear::load
        };
        Ok(Self {
            q: lin(w, &p(names.q), dim, dim, names.qkv_bias)?,
            k: lin(w, &p(names.k), context_dim, dim, names.qkv_bias)?,
            v: lin(w, &p(names.v), context_dim, dim, names.qkv_bias)?,
            out: lin(w, &p(names.out), dim, dim, true)?,
            heads,
            causal,
        })
    }

    /// `x` `[B, L, dim]`, `context` `[B, S, context_dim]` -> `[B, L, dim]`.
    pub fn forward(&self, x: Tensor<3>, context: Option<Tensor<3>>) -> Tensor<3> {
        self.forward_masked(x, context, None)
    }

    /// As [`Attention::forward`], the context's positions where `pad` `[B, S]` is true left out.
    pub fn forward_masked(
        &self,
        x: Tensor<3>,
        context: Option<Tensor<3>>,
        pad: Option<&Tensor<2, Bool>>,
    ) -> Tensor<3> {
        let context = context.unwrap_or_else(|| x.clone());
        let q = self.q.forward(x);
        let k = self.k.forward(context.clone());
        let v = self.v.forward(context);
        let a = attention(q, k, v, self.heads, self.causal, pad);
        self.out.forward(a)
    }
}

/// GEGLU feed-forward: `proj` gives 2 x inner features; the first half times the exact-erf GELU
/// of the second, then back to `dim`.
#[derive(Module, Debug)]
pub struct GegluFeedForward {
    proj: Linear,
    out: Linear,
}

impl GegluFeedForward {
    pub fn load(w: &Weights, prefix: &str, dim: usize, inner: usize) -> Result<Self> {
        Ok(Self {
            proj: Linear::load(w, &format!("{prefix}.net.0.proj"), dim, 2 * inner, true)?,
            out: Linear::load(w, &format!("{prefix}.net.2"), inner, dim, true)?,
        })
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.out.forward(geglu(self.proj.forward(x)))
    }
}

/// ResNet block: norm1 -> SiLU -> conv1 (+ the projected time embedding) -> norm2 -> SiLU ->
/// conv2, plus the input (through a 1x1 conv when the width changes), over `output_scale_factor`.
#[derive(Module, Debug)]
pub struct ResnetBlock {
    norm1: GroupNorm,
    conv1: Conv,
    time_emb_proj: Option<Linear>,
    norm2: GroupNorm,
    conv2: Conv,
    conv_shortcut: Option<Conv>,
    #[module(skip)]
    output_scale: f64,
}

/// What a ResNet block is built from.
pub struct ResnetSpec {
    pub c_in: usize,
    pub c_out: usize,
    /// Width of the time embedding (None in the VAE, which has none).
    pub temb: Option<usize>,
    pub groups: usize,
    pub eps: f64,
    pub output_scale: f64,
}

impl ResnetBlock {
    pub fn load(w: &Weights, prefix: &str, s: &ResnetSpec) -> Result<Self> {
        let p = |n: &str| format!("{prefix}.{n}");
        Ok(Self {
            norm1: GroupNorm::load(w, &p("norm1"), s.groups, s.c_in, s.eps)?,
            conv1: Conv::k3(w, &p("conv1"), s.c_in, s.c_out)?,
            time_emb_proj: match s.temb {
                Some(t) => Some(Linear::load(w, &p("time_emb_proj"), t, s.c_out, true)?),
                None => None,
            },
            norm2: GroupNorm::load(w, &p("norm2"), s.groups, s.c_out, s.eps)?,
            conv2: Conv::k3(w, &p("conv2"), s.c_out, s.c_out)?,
            conv_shortcut: if s.c_in != s.c_out {
                Some(Conv::k1(w, &p("conv_shortcut"), s.c_in, s.c_out)?)
            } else {
                None
            },
            output_scale: s.output_scale,
        })
    }

    /// `x` `[B, C, H, W]`; `temb` `[B, T]` already through SiLU.
    pub fn forward(&self, x: Tensor<4>, temb: Option<Tensor<2>>) -> Tensor<4> {
        let mut h = self.conv1.forward(self.norm1.forward_silu(x.clone()));
        if let (Some(proj), Some(t)) = (&self.time_emb_proj, temb) {
            h = add_per_channel(h, proj.forward(t));
        }
        h = self.conv2.forward(self.norm2.forward_silu(h));
        let skip = match &self.conv_shortcut {
            Some(c) => c.forward(x),
            None => x,
        };
        let y = add(skip, h);
        if self.output_scale == 1.0 {
            y
        } else {
            y / self.output_scale
        }
    }
}

/// The sinusoidal embedding of (fractional) timesteps, `[B] -> [B, dim]`: frequencies
/// exp(-ln(10000) i / (half - shift)), `[sin, cos]` or, flipped, `[cos, sin]`.
pub fn timestep_embedding(
    t: Tensor<1>,
    dim: usize,
    flip_sin_to_cos: bool,
    shift: f64,
) -> Tensor<2> {
    let device: Device = t.device();
    let half = dim / 2;
    let freqs: Vec<f32> = (0..half)
        // In f32 step by step, as diffusers computes it, so that the arguments (up to 1000 x
        // frequency) round the same way.
        .map(|i| ((-(10000f64.ln() as f32) * i as f32) / (half as f64 - shift) as f32).exp())
        .collect();
    let freqs = Tensor::<1>::from_floats(freqs.as_slice(), &device).unsqueeze::<2>();
    let args = t.unsqueeze_dim::<2>(1) * freqs;
    let (sin, cos) = (args.clone().sin(), args.cos());
    let e = if flip_sin_to_cos {
        Tensor::cat(vec![cos, sin], 1)
    } else {
        Tensor::cat(vec![sin, cos], 1)
    };
    if dim % 2 == 1 {
        let b = e.dims()[0];
        Tensor::cat(vec![e, Tensor::zeros([b, 1], &device)], 1)
    } else {
        e
    }
}
