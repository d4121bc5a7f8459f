//! A trained model behind the core's Denoiser interface.

use burn::tensor::Tensor;
use diffuse_core::denoiser::{Denoiser, Level, Prediction, Target, check_dim};

use crate::mlp::one_hot;
use crate::model::Model;

/// A trained network (MLP or UNet) for a schedule of `steps` steps, asked for one class (or
/// none) with classifier-free guidance of weight w: eps = eps_none + w (eps_class - eps_none)
/// (seed 002; w = 0 unconditional, 1 conditional, > 1 guided).
pub struct LearnedDenoiser {
    model: Model,
    dim: usize,
    steps: usize,
    classes: usize,
    class: Option<usize>,
    guidance: f64,
    target: Target,
}

impl LearnedDenoiser {
    /// Wraps a model (for inference: pass `model.valid()` of a trained one) with `classes`
    /// classes (0: unconditional), unconditioned.
    pub fn new(model: Model, dim: usize, steps: usize, classes: usize) -> Self {
        Self {
            model,
            dim,
            steps,
            classes,
            class: None,
            guidance: 1.0,
            target: Target::Eps,
        }
    }

    /// Declares what the model predicts (eps by default).
    pub fn predicting(mut self, target: Target) -> Self {
        self.target = target;
        self
    }

    /// Asks for `class` with guidance weight `guidance`.
    pub fn conditioned(mut self, class: usize, guidance: f64) -> Self {
        self.class = Some(class);
        self.guidance = guidance;
        self
    }
}

impl Denoiser for LearnedDenoiser {
    fn dim(&self) -> usize {
        self.dim
    }

    fn predict(&self, x: &Tensor<2>, level: Level) -> diffuse_core::Result<Prediction> {
        check_dim(x, self.dim)?;
        let n = x.dims()[0];
        let device = x.device();
        let t = Tensor::<2>::full([n, 1], level.t / self.steps as f64, &device);
        let value = if self.classes == 0 {
            self.model.forward(x.clone(), t, None)
        } else {
            let none = one_hot(&vec![self.classes; n], self.classes, &device);
            match self.class {
                None => self.model.forward(x.clone(), t, Some(none)),
                Some(c) if self.guidance == 1.0 => self.model.forward(
                    x.clone(),
                    t,
                    Some(one_hot(&vec![c; n], self.classes, &device)),
                ),
                Some(c) => {
                    let cond = self.model.forward(
                        x.clone(),
                        t.clone(),
                        Some(one_hot(&vec![c; n], self.classes, &device)),
                    );
                    let uncond = self.model.forward(x.clone(), t, Some(none));
                    uncond.clone() + (cond - uncond) * self.guidance
                }
            }
        };
        Ok(Prediction {
            target: self.target,
            value,
            x: x.clone(),
            level,
        })
    }
}
