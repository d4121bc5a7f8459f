//! A trained model behind the core's Denoiser interface.

use burn::tensor::Tensor;
use diffuse_core::denoiser::{Denoiser, Level, Prediction, Target, check_dim};

use crate::mlp::Mlp;

/// A trained epsilon-predicting MLP for a schedule of `steps` steps.
pub struct LearnedDenoiser {
    model: Mlp,
    dim: usize,
    steps: usize,
}

impl LearnedDenoiser {
    /// Wraps a model (for inference: pass `model.valid()` of a trained one).
    pub fn new(model: Mlp, dim: usize, steps: usize) -> Self {
        Self { model, dim, steps }
    }
}

impl Denoiser for LearnedDenoiser {
    fn dim(&self) -> usize {
        self.dim
    }

    fn predict(&self, x: &Tensor<2>, level: Level) -> diffuse_core::Result<Prediction> {
        check_dim(x, self.dim)?;
        let n = x.dims()[0];
        let t = Tensor::<2>::full([n, 1], level.t / self.steps as f64, &x.device());
        let value = self.model.forward(x.clone(), t);
        Ok(Prediction {
            target: Target::Eps,
            value,
            x: x.clone(),
            level,
        })
    }
}
