//! A trained model behind the core's Denoiser interface.

use burn::tensor::{Tensor, TensorData};
use diffuse_core::denoiser::{Denoiser, Level, Prediction, Target, check_dim};

use crate::model::Model;

/// A trained network (MLP or UNet) for a schedule of `steps` steps, asked for one condition (a
/// class, or a prompt's sentence embedding) or none, with classifier-free guidance of weight w:
/// eps = eps_none + w (eps_cond - eps_none) (seed 002; w = 0 unconditional, 1 conditional,
/// > 1 guided).
pub struct LearnedDenoiser {
    model: Model,
    dim: usize,
    steps: usize,
    classes: usize,
    /// The "no condition" row: the one-hot "none" slot, or a zero embedding.
    null: Option<Vec<f32>>,
    cond: Option<Vec<f32>>,
    guidance: f64,
    target: Target,
    clip: Option<(f64, f64)>,
}

impl LearnedDenoiser {
    /// Wraps a model (for inference: pass `model.valid()` of a trained one) with `classes`
    /// classes (0: unconditional), unconditioned.
    pub fn new(model: Model, dim: usize, steps: usize, classes: usize) -> Self {
        let null = (classes > 0).then(|| {
            let mut r = vec![0f32; classes + 1];
            r[classes] = 1.0;
            r
        });
        Self {
            model,
            dim,
            steps,
            classes,
            null,
            cond: None,
            guidance: 1.0,
            target: Target::Eps,
            clip: None,
        }
    }

    /// Wraps a prompt-conditioned model reading sentence embeddings of width `text`.
    pub fn with_text(model: Model, dim: usize, steps: usize, text: usize) -> Self {
        Self {
            null: Some(vec![0f32; text]),
            ..Self::new(model, dim, steps, 0)
        }
    }

    /// Declares what the model predicts (eps by default).
    pub fn predicting(mut self, target: Target) -> Self {
        self.target = target;
        self
    }

    /// Clips the predicted clean data x_0 to [lo, hi] (the data's range): the "clip_sample" of
    /// DDPM's reference code and of diffusers' DDPM and DDIM schedulers, which keeps guided
    /// samples of images from saturating.
    pub fn clipped(mut self, lo: f64, hi: f64) -> Self {
        self.clip = Some((lo, hi));
        self
    }

    /// Asks for `class` with guidance weight `guidance`.
    pub fn conditioned(mut self, class: usize, guidance: f64) -> Self {
        self.set_class(class, guidance);
        self
    }

    /// Asks for `class` with guidance weight `guidance` from now on.
    pub fn set_class(&mut self, class: usize, guidance: f64) {
        let mut r = vec![0f32; self.classes + 1];
        r[class.min(self.classes)] = 1.0;
        self.cond = Some(r);
        self.guidance = guidance;
    }

    /// Asks a prompt-conditioned model for the prompt whose sentence embedding is `embedding`,
    /// with guidance weight `guidance`.
    pub fn prompted(mut self, embedding: Vec<f32>, guidance: f64) -> crate::Result<Self> {
        self.set_prompt(embedding, guidance)?;
        Ok(self)
    }

    /// Asks for the prompt whose sentence embedding is `embedding` from now on.
    pub fn set_prompt(&mut self, embedding: Vec<f32>, guidance: f64) -> crate::Result<()> {
        match &self.null {
            Some(null) if null.len() == embedding.len() && self.classes == 0 => {}
            _ => {
                return Err(crate::NnError::Invalid(format!(
                    "the model does not read sentence embeddings of width {}",
                    embedding.len()
                )));
            }
        }
        self.cond = Some(embedding);
        self.guidance = guidance;
        Ok(())
    }
}

/// `row` repeated n times.
fn rows(row: &[f32], n: usize, device: &burn::tensor::Device) -> Tensor<2> {
    let data: Vec<f32> = (0..n).flat_map(|_| row.iter().copied()).collect();
    Tensor::from_data(TensorData::new(data, [n, row.len()]), device)
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
        let value = match (&self.null, &self.cond) {
            (None, _) => self.model.forward(x.clone(), t, None),
            (Some(null), None) => self
                .model
                .forward(x.clone(), t, Some(rows(null, n, &device))),
            (Some(_), Some(c)) if self.guidance == 1.0 => {
                self.model.forward(x.clone(), t, Some(rows(c, n, &device)))
            }
            (Some(null), Some(c)) => {
                let cond = self
                    .model
                    .forward(x.clone(), t.clone(), Some(rows(c, n, &device)));
                let uncond = self
                    .model
                    .forward(x.clone(), t, Some(rows(null, n, &device)));
                uncond.clone() + (cond - uncond) * self.guidance
            }
        };
        let pred = Prediction {
            target: self.target,
            value,
            x: x.clone(),
            level,
        };
        Ok(match self.clip {
            None => pred,
            Some((lo, hi)) => Prediction {
                target: Target::X0,
                value: pred.x0().clamp(lo, hi),
                x: x.clone(),
                level,
            },
        })
    }
}
