//! A trained model behind the core's conditional-denoiser interface: guidance and clipping are
//! the core's combinators ([`diffuse_core::Guided`], [`diffuse_core::Clipped`]) around it.

use burn::tensor::{Tensor, TensorData};
use diffuse_core::denoiser::{Denoiser, Level, Prediction, Target, check_dim};
use diffuse_core::{Condition, ConditionalDenoiser, CoreError};

use crate::model::Model;

/// How a model reads its condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reads {
    /// Nothing.
    Nothing,
    /// A one-hot row of `classes + 1` slots, the last "no class".
    Classes(usize),
    /// A sentence embedding of this width; zeros mean "no prompt".
    Embedding(usize),
}

/// A trained network (MLP or UNet) for a schedule of `steps` steps: unconditional, or reading a
/// class or a prompt's sentence embedding.
pub struct LearnedDenoiser {
    model: Model,
    dim: usize,
    steps: usize,
    reads: Reads,
    target: Target,
}

impl LearnedDenoiser {
    /// Wraps a model (for inference: pass `model.valid()` of a trained one) with `classes`
    /// classes (0: unconditional).
    pub fn new(model: Model, dim: usize, steps: usize, classes: usize) -> Self {
        Self {
            model,
            dim,
            steps,
            reads: if classes > 0 {
                Reads::Classes(classes)
            } else {
                Reads::Nothing
            },
            target: Target::Eps,
        }
    }

    /// Wraps a prompt-conditioned model reading sentence embeddings of width `text`.
    pub fn with_text(model: Model, dim: usize, steps: usize, text: usize) -> Self {
        Self {
            reads: Reads::Embedding(text),
            ..Self::new(model, dim, steps, 0)
        }
    }

    /// Declares what the model predicts (eps by default).
    pub fn predicting(mut self, target: Target) -> Self {
        self.target = target;
        self
    }

    /// The row the model reads for `condition`, or None for an unconditional model.
    fn row(&self, condition: &Condition) -> diffuse_core::Result<Option<Vec<f32>>> {
        let refuse = |what: String| Err(CoreError::Invalid(what));
        Ok(match (self.reads, condition) {
            (Reads::Nothing, Condition::None) => None,
            (Reads::Classes(k), Condition::None) => Some(one_hot_row(k, k)),
            (Reads::Classes(k), Condition::Class(i)) if *i < k => Some(one_hot_row(*i, k)),
            (Reads::Classes(k), Condition::Class(i)) => {
                return refuse(format!("class {i} is not one of the model's {k} classes"));
            }
            (Reads::Embedding(w), Condition::None) => Some(vec![0f32; w]),
            (Reads::Embedding(w), Condition::Vector(e)) if e.len() == w => Some(e.clone()),
            (Reads::Embedding(w), Condition::Vector(e)) => {
                return refuse(format!(
                    "the model reads sentence embeddings of width {w}, not {}",
                    e.len()
                ));
            }
            (reads, other) => {
                let model = match reads {
                    Reads::Nothing => "an unconditional model",
                    Reads::Classes(_) => "a class-conditioned model",
                    Reads::Embedding(_) => "a model conditioned on a sentence embedding",
                };
                return refuse(format!("{model} cannot be given {}", other.kind()));
            }
        })
    }
}

/// Slot `i` of a one-hot row of `classes + 1` slots (the last: no class).
fn one_hot_row(i: usize, classes: usize) -> Vec<f32> {
    let mut r = vec![0f32; classes + 1];
    r[i] = 1.0;
    r
}

/// `row` repeated n times.
fn rows(row: &[f32], n: usize, device: &burn::tensor::Device) -> Tensor<2> {
    let data: Vec<f32> = (0..n).flat_map(|_| row.iter().copied()).collect();
    Tensor::from_data(TensorData::new(data, [n, row.len()]), device)
}

impl ConditionalDenoiser for LearnedDenoiser {
    fn dim(&self) -> usize {
        self.dim
    }

    fn predict_given(
        &self,
        x: &Tensor<2>,
        level: Level,
        condition: &Condition,
    ) -> diffuse_core::Result<Prediction> {
        check_dim(x, self.dim)?;
        let row = self.row(condition)?;
        let n = x.dims()[0];
        let device = x.device();
        let t = Tensor::<2>::full([n, 1], level.t / self.steps as f64, &device);
        let cond = row.map(|r| rows(&r, n, &device));
        Ok(Prediction {
            target: self.target,
            value: self.model.forward(x.clone(), t, cond),
            x: x.clone(),
            level,
        })
    }
}

/// Unconditional: the model asked for nothing.
impl Denoiser for LearnedDenoiser {
    fn dim(&self) -> usize {
        self.dim
    }

    fn predict(&self, x: &Tensor<2>, level: Level) -> diffuse_core::Result<Prediction> {
        self.predict_given(x, level, &Condition::None)
    }
}
