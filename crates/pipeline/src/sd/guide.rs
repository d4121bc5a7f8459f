//! Seed 002's loss-guided sampling: every P steps the predicted clean latents are decoded through
//! the VAE with gradients, a loss on the image is taken, and its gradient with respect to the
//! latents moves the prediction by `-sigma^2 * k * grad`.
//!
//! The seed moves the latents themselves (`l -= grad * sigma^2`, with the gradient taken through
//! the predicted clean latents `l - sigma * eps`, whose derivative in `l` is the identity). Here
//! the same correction is made to the denoiser's estimate of the clean latents, the classifier-
//! guidance form (the score gains `-k grad L`), so that it rides every sampler, multistep ones
//! included, without the sampler knowing; for a first-order step from sigma to sigma' the latents
//! move by `(1 - sigma'/sigma)` of the seed's nudge.

use std::cell::{Cell, RefCell};

use anyhow::{Result, bail};
use burn::tensor::{Device, Tensor};
use diffuse_core::denoiser::{Denoiser, Level, Prediction, Target};
use diffuse_nn::sd::AutoencoderKl;

/// A loss on decoded images `[n, 3, H, W]` in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ImageLoss {
    /// Seed 002's `blue_loss`: the mean of |blue - target| (the seed's target is 0.9).
    Blue { target: f64 },
}

impl ImageLoss {
    /// `blue` (seed 002's, towards 0.9) or `blue:T` (towards T in [0, 1]; `blue:0` drains blue).
    pub fn parse(s: &str) -> Result<Self> {
        let (name, arg) = s.split_once(':').unwrap_or((s, ""));
        match name {
            "blue" => {
                let target = if arg.is_empty() {
                    0.9
                } else {
                    arg.parse::<f64>()
                        .ok()
                        .filter(|t| (0.0..=1.0).contains(t))
                        .ok_or_else(|| {
                            anyhow::anyhow!(
                                "--loss {s}: the blue target must be a number in [0, 1]"
                            )
                        })?
                };
                Ok(Self::Blue { target })
            }
            _ => bail!("--loss {s}: unknown loss; the one there is is blue[:TARGET]"),
        }
    }

    /// Per-image losses `[n]` (each the mean over its pixels).
    pub fn per_image(&self, images: Tensor<4>) -> Tensor<1> {
        let [n, _, h, w] = images.dims();
        match self {
            Self::Blue { target } => {
                let blue = images.narrow(1, 2, 1).reshape([n, h * w]);
                (blue - *target).abs().mean_dim(1).reshape([n])
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Blue { target } => format!("blue:{target}"),
        }
    }
}

/// What loss guidance does and how often.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossGuide {
    pub loss: ImageLoss,
    /// The seed's k (75 for the octopus).
    pub scale: f64,
    /// Guide at steps P, 2P, ... (the seed's periodicity, 5).
    pub every: usize,
}

/// A denoiser whose estimate of the clean latents is pulled down the gradient of an image loss
/// at every `every`-th new noise level.
pub(super) struct LossGuided<'a> {
    pub inner: &'a dyn Denoiser,
    /// The VAE on an autodiff device.
    pub vae: &'a AutoencoderKl,
    pub scaling: f64,
    pub shape: [usize; 3],
    pub guide: LossGuide,
    /// The last noise level seen and the step count (0-based, as the seed's i).
    step: Cell<(f64, usize)>,
    /// (step, mean loss over the batch before the correction), for the summary.
    pub losses: RefCell<Vec<(usize, f64)>>,
}

impl<'a> LossGuided<'a> {
    pub fn new(
        inner: &'a dyn Denoiser,
        vae: &'a AutoencoderKl,
        scaling: f64,
        shape: [usize; 3],
        guide: LossGuide,
    ) -> Self {
        Self {
            inner,
            vae,
            scaling,
            shape,
            guide,
            step: Cell::new((f64::NAN, usize::MAX)),
            losses: RefCell::new(vec![]),
        }
    }

    /// k times the gradient of each image's loss with respect to its clean latents `x0` (one
    /// image at a time: its own gradient, the same bytes whatever the batch), and the mean loss.
    fn gradient(&self, x0: &Tensor<2>) -> Result<(Tensor<2>, f64)> {
        let [c, h, w] = self.shape;
        let n = x0.dims()[0];
        let ad: Device = self.vae.device();
        let home = x0.device();
        let (mut grads_out, mut total) = (Vec::with_capacity(n), 0.0);
        for i in 0..n {
            let row = x0.clone().narrow(0, i, 1);
            let z = Tensor::<2>::from_data(row.into_data(), &ad).require_grad();
            let image = (self
                .vae
                .decode(z.clone().reshape([1, c, h, w]) / self.scaling)
                / 2.0
                + 0.5)
                .clamp(0.0, 1.0);
            let loss = self.guide.loss.per_image(image);
            total += f64::from(loss.clone().into_scalar::<f32>());
            let grads = (loss.sum() * self.guide.scale).backward();
            let Some(g) = z.grad(&grads) else {
                bail!("loss guidance: no gradient reached the latents");
            };
            grads_out.push(Tensor::<2>::from_data(g.into_data(), &home));
        }
        Ok((Tensor::cat(grads_out, 0), total / n as f64))
    }
}

impl Denoiser for LossGuided<'_> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn predict(&self, x: &Tensor<2>, level: Level) -> diffuse_core::Result<Prediction> {
        let p = self.inner.predict(x, level)?;
        let (last, i) = self.step.get();
        let i = if i == usize::MAX {
            0
        } else if level.t != last {
            i + 1
        } else {
            i
        };
        self.step.set((level.t, i));
        if i == 0 || !i.is_multiple_of(self.guide.every) {
            return Ok(p);
        }
        let x0 = p.x0();
        let (g, loss) = self
            .gradient(&x0)
            .map_err(|e| diffuse_core::CoreError::Invalid(format!("{e:#}")))?;
        self.losses.borrow_mut().push((i, loss));
        let sigma = level.sigma();
        Ok(Prediction {
            target: Target::X0,
            value: x0 - g * (sigma * sigma),
            x: x.clone(),
            level,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn losses_parse_and_refuse() {
        assert_eq!(
            ImageLoss::parse("blue").unwrap(),
            ImageLoss::Blue { target: 0.9 }
        );
        assert_eq!(
            ImageLoss::parse("blue:0").unwrap(),
            ImageLoss::Blue { target: 0.0 }
        );
        for bad in ["red", "blue:2", "blue:-1", "blue:x"] {
            assert!(ImageLoss::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_blue_loss_is_the_mean_distance_of_blue_from_its_target() {
        let device = diffuse_core::device::cpu();
        // Two 1x2 images: blue 0.5, 1.0 and 0.9, 0.9.
        let v = vec![
            0.0f32, 0.0, 0.0, 0.0, 0.5, 1.0, //
            0.0, 0.0, 0.0, 0.0, 0.9, 0.9,
        ];
        let images = Tensor::<4>::from_data(TensorData::new(v, [2, 3, 1, 2]), &device);
        let l: Vec<f32> = ImageLoss::Blue { target: 0.9 }
            .per_image(images)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        assert!((l[0] - 0.25).abs() < 1e-6 && l[1].abs() < 1e-6, "{l:?}");
    }
}
