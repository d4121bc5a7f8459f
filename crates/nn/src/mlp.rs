//! The time-appended MLP (seeds 000, 003, 004): [x, t/T] -> hidden layers -> eps.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{elu, relu, silu, softplus};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// The nonlinearity between layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// max(0, x) (seed 003).
    Relu,
    /// ELU (seed 004).
    Elu,
    /// x sigmoid(x).
    Silu,
    /// ln(1 + e^x) (seed 001).
    Softplus,
}

impl Activation {
    fn apply(&self, x: Tensor<2>) -> Tensor<2> {
        match self {
            Activation::Relu => relu(x),
            Activation::Elu => elu(x, 1.0),
            Activation::Silu => silu(x),
            Activation::Softplus => softplus(x, 1.0),
        }
    }
}

/// The architecture: everything needed to rebuild the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpConfig {
    /// Data dimension d.
    pub dim: usize,
    /// Width of the hidden layers.
    pub hidden: usize,
    /// Number of hidden layers.
    pub depth: usize,
    /// The nonlinearity.
    pub activation: Activation,
    /// Number of classes it is conditioned on (0: unconditional). A conditional model sees a
    /// one-hot of the class, with one more slot for "no class" (classifier-free guidance).
    #[serde(default)]
    pub classes: usize,
}

impl Default for MlpConfig {
    /// Seed 003's model: three hidden layers of 256, ReLU.
    fn default() -> Self {
        Self {
            dim: 1,
            hidden: 256,
            depth: 3,
            activation: Activation::Relu,
            classes: 0,
        }
    }
}

impl MlpConfig {
    /// The model, with burn's default initialisation (seeded through the device).
    pub fn init(&self, device: &Device) -> Mlp {
        let cond = if self.classes > 0 {
            self.classes + 1
        } else {
            0
        };
        let mut layers = vec![LinearConfig::new(self.dim + 1 + cond, self.hidden).init(device)];
        for _ in 1..self.depth {
            layers.push(LinearConfig::new(self.hidden, self.hidden).init(device));
        }
        layers.push(LinearConfig::new(self.hidden, self.dim).init(device));
        Mlp {
            layers,
            activation: self.activation,
        }
    }
}

/// An MLP that sees x_t with the time appended as one more input, t / T in [0, 1].
#[derive(Module, Debug)]
pub struct Mlp {
    layers: Vec<Linear>,
    #[module(skip)]
    activation: Activation,
}

/// One-hot rows `[n, classes + 1]` for class indices (index `classes` is "no class").
pub fn one_hot(labels: &[usize], classes: usize, device: &Device) -> Tensor<2> {
    let width = classes + 1;
    let mut v = vec![0f32; labels.len() * width];
    for (i, l) in labels.iter().enumerate() {
        v[i * width + (*l).min(classes)] = 1.0;
    }
    Tensor::from_data(
        burn::tensor::TensorData::new(v, [labels.len(), width]),
        device,
    )
}

impl Mlp {
    /// eps-hat for x `[n, d]` at times `t_over_t` `[n, 1]`, with the one-hot class `[n, C + 1]`
    /// of a conditional model.
    pub fn forward(
        &self,
        x: Tensor<2>,
        t_over_t: Tensor<2>,
        class: Option<Tensor<2>>,
    ) -> Tensor<2> {
        let mut inputs = vec![x, t_over_t];
        inputs.extend(class);
        let mut h = Tensor::cat(inputs, 1);
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(h);
            if i < last {
                h = self.activation.apply(h);
            }
        }
        h
    }
}
