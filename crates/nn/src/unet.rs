//! A UNet for small grayscale images, in the image-diffusion tradition (Ho et al. 2020; the UNet
//! of seed 002): residual blocks with GroupNorm and SiLU that each take the time embedding,
//! a down path of strided convolutions, self-attention at the lowest resolution, an up path of
//! nearest upsampling with skip connections, and an optional condition projected and added to the
//! time embedding: a one-hot class (with a "no class" slot for classifier-free guidance) or a
//! sentence embedding from the text encoder (zeros for "no prompt"), as Imagen adds its pooled
//! text embedding to the time embedding.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::softmax;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::act::silu;
use crate::cpu::conv::conv2d_module as conv2d;
use crate::cpu::join::{add, add_per_channel, cat_channels};
use crate::cpu::norm::group_norm_module as group_norm;
use crate::mlp::sinusoidal;

/// The architecture: everything needed to rebuild the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UNetConfig {
    /// Image rows.
    pub height: usize,
    /// Image columns.
    pub width: usize,
    /// Channels of the first level.
    pub channels: usize,
    /// Channel multiplier of each level; the image is halved between levels.
    pub mults: Vec<usize>,
    /// GroupNorm groups (must divide every level's channels).
    pub groups: usize,
    /// Self-attention at the lowest resolution.
    pub attention: bool,
    /// Number of classes (0: unconditional).
    pub classes: usize,
    /// Width of the sentence embedding of a prompt-conditioned model (0: none; a model has
    /// classes or a prompt, not both).
    #[serde(default)]
    pub text: usize,
}

impl UNetConfig {
    /// A small UNet for `height x width` images: 32 channels, levels x1, x2, x2, 8 groups,
    /// attention at the bottom.
    pub fn small(height: usize, width: usize, classes: usize) -> Self {
        Self {
            height,
            width,
            channels: 32,
            mults: vec![1, 2, 2],
            groups: 8,
            attention: true,
            classes,
            text: 0,
        }
    }

    /// The width of the condition input: one-hot classes with a "none" slot, or a sentence
    /// embedding; 0 when unconditional.
    pub fn cond_width(&self) -> usize {
        if self.text > 0 {
            self.text
        } else if self.classes > 0 {
            self.classes + 1
        } else {
            0
        }
    }

    /// Checks that the image halves cleanly and the groups divide the channels.
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |m: String| Err(crate::NnError::Invalid(m));
        if self.mults.is_empty() || self.channels == 0 || self.groups == 0 {
            return bad("a UNet needs channels, groups and at least one level".into());
        }
        if self.text > 0 && self.classes > 0 {
            return bad("a UNet is conditioned on classes or on a prompt, not both".into());
        }
        let f = 1 << (self.mults.len() - 1);
        if self.height == 0
            || self.width == 0
            || !self.height.is_multiple_of(f)
            || !self.width.is_multiple_of(f)
        {
            return bad(format!(
                "{}x{} images cannot be halved {} times",
                self.height,
                self.width,
                self.mults.len() - 1
            ));
        }
        if let Some(m) = self
            .mults
            .iter()
            .find(|m| **m == 0 || !(self.channels * **m).is_multiple_of(self.groups))
        {
            return bad(format!(
                "{} groups do not divide {} channels",
                self.groups,
                self.channels * m
            ));
        }
        Ok(())
    }

    fn conv(&self, cin: usize, cout: usize, k: usize, stride: usize, device: &Device) -> Conv2d {
        let p = k / 2;
        Conv2dConfig::new([cin, cout], [k, k])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
            .init(device)
    }

    fn res(&self, cin: usize, cout: usize, device: &Device) -> ResBlock {
        let emb = 4 * self.channels;
        ResBlock {
            norm1: GroupNormConfig::new(self.groups, cin).init(device),
            conv1: self.conv(cin, cout, 3, 1, device),
            time: LinearConfig::new(emb, cout).init(device),
            norm2: GroupNormConfig::new(self.groups, cout).init(device),
            conv2: self.conv(cout, cout, 3, 1, device),
            skip: (cin != cout).then(|| self.conv(cin, cout, 1, 1, device)),
        }
    }

    /// The model, with burn's default initialisation (seeded through the device).
    pub fn init(&self, device: &Device) -> UNet {
        let c = self.channels;
        let level: Vec<usize> = self.mults.iter().map(|m| c * m).collect();
        let last = level[level.len() - 1];
        let mut down = vec![];
        let mut prev = c;
        for &cl in &level {
            down.push(self.res(prev, cl, device));
            prev = cl;
        }
        let downsample = level[..level.len() - 1]
            .iter()
            .map(|&cl| self.conv(cl, cl, 3, 2, device))
            .collect();
        let mut up = vec![];
        let mut cur = last;
        for &cl in level.iter().rev() {
            up.push(self.res(cur + cl, cl, device));
            cur = cl;
        }
        let upsample = level[1..]
            .iter()
            .rev()
            .map(|&cl| self.conv(cl, cl, 3, 1, device))
            .collect();
        UNet {
            time1: LinearConfig::new(c, 4 * c).init(device),
            time2: LinearConfig::new(4 * c, 4 * c).init(device),
            class: (self.cond_width() > 0).then(|| {
                LinearConfig::new(self.cond_width(), 4 * c)
                    .with_bias(false)
                    .init(device)
            }),
            input: self.conv(1, c, 3, 1, device),
            down,
            downsample,
            mid1: self.res(last, last, device),
            attention: self.attention.then(|| Attention {
                norm: GroupNormConfig::new(self.groups, last).init(device),
                qkv: self.conv(last, 3 * last, 1, 1, device),
                proj: self.conv(last, last, 1, 1, device),
            }),
            mid2: self.res(last, last, device),
            up,
            upsample,
            out_norm: GroupNormConfig::new(self.groups, c).init(device),
            out: self.conv(c, 1, 3, 1, device),
            height: self.height,
            width: self.width,
            time_features: c,
        }
    }
}

/// GroupNorm, SiLU, 3x3 conv; plus the projected time embedding; GroupNorm, SiLU, 3x3 conv;
/// plus the input (through a 1x1 conv when the channels change).
#[derive(Module, Debug)]
pub struct ResBlock {
    norm1: GroupNorm,
    conv1: Conv2d,
    time: Linear,
    norm2: GroupNorm,
    conv2: Conv2d,
    skip: Option<Conv2d>,
}

impl ResBlock {
    fn forward(&self, x: Tensor<4>, emb: &Tensor<2>) -> Tensor<4> {
        let h = conv2d(&self.conv1, group_norm(&self.norm1, x.clone(), true));
        let h = add_per_channel(h, self.time.forward(silu(emb.clone())));
        let h = conv2d(&self.conv2, group_norm(&self.norm2, h, true));
        match &self.skip {
            Some(s) => add(conv2d(s, x), h),
            None => add(x, h),
        }
    }
}

/// Single-head self-attention over the pixels of a feature map, with a residual connection.
#[derive(Module, Debug)]
pub struct Attention {
    norm: GroupNorm,
    qkv: Conv2d,
    proj: Conv2d,
}

impl Attention {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [n, c, h, w] = x.dims();
        let qkv = conv2d(&self.qkv, group_norm(&self.norm, x.clone(), false));
        let flat = |t: Tensor<4>| t.reshape([n, c, h * w]);
        let q = flat(qkv.clone().narrow(1, 0, c)).swap_dims(1, 2); // [n, hw, c]
        let k = flat(qkv.clone().narrow(1, c, c)); // [n, c, hw]
        let v = flat(qkv.narrow(1, 2 * c, c)).swap_dims(1, 2); // [n, hw, c]
        let att = softmax(q.matmul(k) / (c as f64).sqrt(), 2); // [n, hw, hw]
        let out = att.matmul(v).swap_dims(1, 2).reshape([n, c, h, w]);
        add(x, conv2d(&self.proj, out))
    }
}

/// The UNet denoiser: flattened images `[n, height * width]` in, the prediction out.
#[derive(Module, Debug)]
pub struct UNet {
    time1: Linear,
    time2: Linear,
    class: Option<Linear>,
    input: Conv2d,
    down: Vec<ResBlock>,
    downsample: Vec<Conv2d>,
    mid1: ResBlock,
    attention: Option<Attention>,
    mid2: ResBlock,
    up: Vec<ResBlock>,
    upsample: Vec<Conv2d>,
    out_norm: GroupNorm,
    out: Conv2d,
    #[module(skip)]
    height: usize,
    #[module(skip)]
    width: usize,
    #[module(skip)]
    time_features: usize,
}

impl UNet {
    /// The prediction for flattened images x `[n, h w]` at times `t_over_t` `[n, 1]` (t / T),
    /// with the condition rows `[n, cond_width]` of a conditional model (one-hot classes or
    /// sentence embeddings).
    pub fn forward(
        &self,
        x: Tensor<2>,
        t_over_t: Tensor<2>,
        class: Option<Tensor<2>>,
    ) -> Tensor<2> {
        let n = x.dims()[0];
        let (hh, ww) = (self.height, self.width);
        let mut emb = self.time2.forward(silu(
            self.time1.forward(sinusoidal(t_over_t, self.time_features)),
        ));
        if let (Some(project), Some(cond)) = (&self.class, class) {
            emb = emb + project.forward(cond);
        }
        let mut h = conv2d(&self.input, x.reshape([n, 1, hh, ww]));
        let mut skips = vec![];
        for (l, block) in self.down.iter().enumerate() {
            h = block.forward(h, &emb);
            skips.push(h.clone());
            if let Some(d) = self.downsample.get(l) {
                h = conv2d(d, h);
            }
        }
        h = self.mid1.forward(h, &emb);
        if let Some(a) = &self.attention {
            h = a.forward(h);
        }
        h = self.mid2.forward(h, &emb);
        for (l, block) in self.up.iter().enumerate() {
            let skip = skips.pop().expect("one skip per level");
            h = block.forward(cat_channels(h, skip), &emb);
            if let Some(u) = self.upsample.get(l) {
                let [_, _, sh, sw] = h.dims();
                let mut opts = InterpolateOptions::new(InterpolateMode::Nearest);
                opts.output_size = Some([2 * sh, 2 * sw]);
                h = conv2d(u, interpolate(h, opts));
            }
        }
        conv2d(&self.out, group_norm(&self.out_norm, h, true)).reshape([n, hh * ww])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diffuse_core::tensor::{from_flat, to_vec};

    /// Shapes through the levels (28 -> 14 -> 7 and back), and each input matters: the time, the
    /// class and every pixel region change the output.
    #[test]
    fn a_unet_maps_images_to_images_and_sees_time_class_and_pixels() {
        let device = Device::flex();
        device.seed(1);
        let cfg = UNetConfig::small(28, 28, 3);
        cfg.validate().unwrap();
        let net = cfg.init(&device);
        let n = 2;
        let x: Vec<f64> = (0..n * 784)
            .map(|i| ((i * 37) % 101) as f64 / 50.0 - 1.0)
            .collect();
        let x = from_flat(&x, n, 784, &device);
        let t = from_flat(&[0.3, 0.3], n, 1, &device);
        let none = crate::mlp::one_hot(&[3, 3], 3, &device);
        let y = net.forward(x.clone(), t.clone(), Some(none.clone()));
        assert_eq!(y.dims(), [n, 784]);
        let base = to_vec(&y).unwrap();
        assert!(base.iter().all(|v| v.is_finite()));
        let differs = |other: Tensor<2>| {
            let o = to_vec(&other).unwrap();
            o.iter()
                .zip(&base)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max)
                > 1e-6
        };
        let t2 = from_flat(&[0.9, 0.9], n, 1, &device);
        assert!(differs(net.forward(x.clone(), t2, Some(none.clone()))));
        let class0 = crate::mlp::one_hot(&[0, 0], 3, &device);
        assert!(differs(net.forward(x.clone(), t.clone(), Some(class0))));
        // A change in one corner reaches the output (the receptive field is the whole image at 7x7).
        let mut x2 = to_vec(&x).unwrap();
        x2[0] += 1.0;
        let x2 = from_flat(&x2, n, 784, &device);
        let y2 = to_vec(&net.forward(x2, t, Some(none))).unwrap();
        assert!(
            y2[783] != base[783],
            "the far corner did not see the change"
        );
        // Rows are independent: the second image's output does not depend on the first.
        assert!((y2[784..].iter().zip(&base[784..])).all(|(a, b)| (a - b).abs() < 1e-5));
    }

    #[test]
    fn bad_unet_configs_are_refused() {
        assert!(UNetConfig::small(8, 8, 0).validate().is_ok());
        assert!(UNetConfig::small(10, 10, 0).validate().is_err()); // 10 -> 5 -> 2.5
        let mut c = UNetConfig::small(8, 8, 0);
        c.groups = 5;
        assert!(c.validate().is_err());
    }
}
