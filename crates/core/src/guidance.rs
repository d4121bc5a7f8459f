//! Conditioning and classifier-free guidance as denoiser combinators (k-diffusion's
//! `CFGDenoiser`): a conditional model answers for any [`Condition`]; [`Guided`] carries the
//! condition, the unconditional one and the scale with it and is a plain [`Denoiser`], so every
//! sampler runs it unchanged. [`Clipped`] keeps the predicted clean data in a range;
//! [`Stoppable`] lets a front end stop a run between steps.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::tensor::Tensor;

use crate::denoiser::{Denoiser, Level, Prediction, Target};
use crate::error::{CoreError, Result};

/// What a model is asked for.
#[derive(Debug, Clone)]
pub enum Condition {
    /// Nothing: the unconditional prediction (the "no class" slot, an empty prompt).
    None,
    /// A class, by its index.
    Class(usize),
    /// A pooled vector, such as a sentence embedding.
    Vector(Vec<f32>),
    /// A sequence of token states, as a cross-attention model reads them.
    Tokens(Box<TokenStates>),
}

/// The token states of a text encoder, with the mask of the real tokens.
#[derive(Debug, Clone)]
pub struct TokenStates {
    /// `[rows, L, d]`: one row for every sample (rows = 1: the same for all).
    pub states: Tensor<3>,
    /// `[rows, L]`: 1 for a token, 0 for padding.
    pub mask: Tensor<2>,
}

impl Condition {
    /// What kind of condition it is, for errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Condition::None => "no condition",
            Condition::Class(_) => "a class",
            Condition::Vector(_) => "a pooled vector",
            Condition::Tokens(_) => "token states",
        }
    }
}

/// A model that predicts under a condition.
pub trait ConditionalDenoiser {
    /// The dimension d of the data.
    fn dim(&self) -> usize;

    /// Predicts at `level` for a batch `x` of shape `[n, dim]`, asked for `condition`.
    fn predict_given(
        &self,
        x: &Tensor<2>,
        level: Level,
        condition: &Condition,
    ) -> Result<Prediction>;
}

/// Classifier-free guidance (Ho & Salimans 2022; seed 002): the model's output under
/// `uncond` plus `scale` times the difference that `cond` makes,
/// out = out(uncond) + w (out(cond) - out(uncond)); w = 0 is unconditional, 1 conditional
/// (one evaluation), > 1 guided. With no condition it is the model's unconditional output.
pub struct Guided<'a> {
    model: &'a dyn ConditionalDenoiser,
    cond: Condition,
    uncond: Condition,
    scale: f64,
}

impl<'a> Guided<'a> {
    /// `model` asked for `cond` with guidance `scale` against the unconditional output.
    pub fn new(model: &'a dyn ConditionalDenoiser, cond: Condition, scale: f64) -> Self {
        Self {
            model,
            cond,
            uncond: Condition::None,
            scale,
        }
    }

    /// `model` with no condition.
    pub fn unconditional(model: &'a dyn ConditionalDenoiser) -> Self {
        Self::new(model, Condition::None, 1.0)
    }

    /// Guides away from `uncond` instead of the unconditional output (a negative prompt).
    pub fn against(mut self, uncond: Condition) -> Self {
        self.uncond = uncond;
        self
    }
}

impl Denoiser for Guided<'_> {
    fn dim(&self) -> usize {
        self.model.dim()
    }

    fn predict(&self, x: &Tensor<2>, level: Level) -> Result<Prediction> {
        if matches!(self.cond, Condition::None) || self.scale == 1.0 {
            return self.model.predict_given(x, level, &self.cond);
        }
        let cond = self.model.predict_given(x, level, &self.cond)?;
        let uncond = self.model.predict_given(x, level, &self.uncond)?;
        if cond.target != uncond.target {
            return Err(CoreError::Invalid(format!(
                "guidance needs one prediction target, got {:?} and {:?}",
                cond.target, uncond.target
            )));
        }
        Ok(Prediction {
            value: uncond.value.clone() + (cond.value - uncond.value) * self.scale,
            ..uncond
        })
    }
}

/// A denoiser whose predicted clean data x_0 is clipped to [lo, hi] (the data's range): the
/// "clip_sample" of DDPM's reference code and of diffusers' DDPM and DDIM schedulers, which keeps
/// guided samples of images from saturating.
pub struct Clipped<D> {
    inner: D,
    lo: f64,
    hi: f64,
}

impl<D: Denoiser> Clipped<D> {
    /// `inner` with x_0 clipped to [lo, hi].
    pub fn new(inner: D, lo: f64, hi: f64) -> Self {
        Self { inner, lo, hi }
    }
}

impl<D: Denoiser> Denoiser for Clipped<D> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn predict(&self, x: &Tensor<2>, level: Level) -> Result<Prediction> {
        let pred = self.inner.predict(x, level)?;
        Ok(Prediction {
            target: Target::X0,
            value: pred.x0().clamp(self.lo, self.hi),
            x: x.clone(),
            level,
        })
    }
}

/// A denoiser that refuses to evaluate once `stop` is set: a sampler then returns
/// [`CoreError::Stopped`] at its next step, so that a front end can stop a run between steps
/// (a cancel button) without the samplers knowing about it.
pub struct Stoppable<D> {
    inner: D,
    stop: Arc<AtomicBool>,
}

impl<D: Denoiser> Stoppable<D> {
    /// `inner`, until `stop` is set.
    pub fn new(inner: D, stop: Arc<AtomicBool>) -> Self {
        Self { inner, stop }
    }
}

impl<D: Denoiser> Denoiser for Stoppable<D> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn predict(&self, x: &Tensor<2>, level: Level) -> Result<Prediction> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(CoreError::Stopped);
        }
        self.inner.predict(x, level)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::{from_rows, to_vec};

    /// Predicts eps = x * (1 + c), c the class index (0 without one): linear in the condition,
    /// so guidance has a closed form.
    struct Affine;

    impl ConditionalDenoiser for Affine {
        fn dim(&self) -> usize {
            1
        }
        fn predict_given(&self, x: &Tensor<2>, level: Level, c: &Condition) -> Result<Prediction> {
            let k = match c {
                Condition::None => 0.0,
                Condition::Class(i) => *i as f64,
                other => return Err(CoreError::Invalid(other.kind().into())),
            };
            Ok(Prediction {
                target: Target::Eps,
                value: x.clone() * (1.0 + k),
                x: x.clone(),
                level,
            })
        }
    }

    const LEVEL: Level = Level {
        t: 5.0,
        alpha_bar: 0.25,
    };

    fn eps(d: &dyn Denoiser, x: f64) -> f64 {
        let x = from_rows(&[vec![x]], &crate::device::cpu());
        to_vec(&d.predict(&x, LEVEL).unwrap().eps()).unwrap()[0]
    }

    #[test]
    fn guidance_is_the_unconditional_output_plus_w_times_the_difference() {
        // eps(none) = x, eps(class 2) = 3x: guided eps = x + w (3x - x) = (1 + 2w) x.
        for w in [0.0, 1.0, 2.5, 7.0] {
            let g = Guided::new(&Affine, Condition::Class(2), w);
            assert!(
                (eps(&g, 0.5) - (1.0 + 2.0 * w) * 0.5).abs() < 1e-6,
                "w = {w}"
            );
        }
        // Against another condition (a negative prompt): class 1 gives 2x; 2x + w (3x - 2x).
        let g = Guided::new(&Affine, Condition::Class(2), 4.0).against(Condition::Class(1));
        assert!((eps(&g, 0.5) - (2.0 + 4.0) * 0.5).abs() < 1e-6);
        // No condition: the unconditional output, whatever the scale.
        let g = Guided::new(&Affine, Condition::None, 3.0);
        assert!((eps(&g, 0.5) - 0.5).abs() < 1e-6);
        // A condition the model does not read is an error, not a silent default.
        let g = Guided::new(&Affine, Condition::Vector(vec![1.0]), 3.0);
        let x = from_rows(&[vec![0.5]], &crate::device::cpu());
        assert!(g.predict(&x, LEVEL).is_err());
    }

    #[test]
    fn clipping_bounds_the_predicted_clean_data() {
        // alpha-bar 0.25: x0 = (x - sqrt(0.75) eps) / 0.5 with eps = 3x.
        let g = Clipped::new(Guided::new(&Affine, Condition::Class(2), 1.0), -1.0, 1.0);
        for x in [-2.0, -0.1, 0.0, 0.3, 5.0] {
            let x0 = ((x - 0.75f64.sqrt() * 3.0 * x) / 0.5).clamp(-1.0, 1.0);
            let t = from_rows(&[vec![x]], &crate::device::cpu());
            let got = to_vec(&g.predict(&t, LEVEL).unwrap().x0()).unwrap()[0];
            assert!((got - x0).abs() < 1e-6, "x = {x}: {got} vs {x0}");
        }
    }

    #[test]
    fn a_stopped_denoiser_refuses_the_next_evaluation() {
        use crate::denoiser::Level;
        struct Zero;
        impl Denoiser for Zero {
            fn dim(&self) -> usize {
                1
            }
            fn predict(&self, x: &Tensor<2>, level: Level) -> Result<Prediction> {
                Ok(Prediction {
                    target: Target::Eps,
                    value: x.clone() * 0.0,
                    x: x.clone(),
                    level,
                })
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let den = Stoppable::new(Zero, stop.clone());
        let x = from_rows(&[vec![0.5]], &crate::device::cpu());
        let level = Level {
            t: 1.0,
            alpha_bar: 0.5,
        };
        assert!(den.predict(&x, level).is_ok());
        stop.store(true, Ordering::Relaxed);
        assert_eq!(den.predict(&x, level).err(), Some(CoreError::Stopped));
    }
}
