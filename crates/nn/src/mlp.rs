//! MLP denoisers for low-dimensional data, differing in how they see the time:
//! - appended (seeds 000, 003, 004): [x, t/T] -> hidden layers -> eps;
//! - sinusoidal: [x, sin/cos features of t] (the transformer embedding, the usual modern choice);
//! - per step (seed 001's `ConditionalLinear`): each hidden layer's output is multiplied by a
//!   learned vector gamma_t of its step, interpolated linearly between whole steps.

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{elu, relu, softplus};

use crate::act::silu;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
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

/// How the model is told the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TimeEncoding {
    /// t / T as one more input (seeds 000, 003, 004).
    #[default]
    Appended,
    /// `features` inputs sin(1000 t/T w_k), cos(1000 t/T w_k), w_k = 10000^(-k / (features/2)).
    Sinusoidal {
        /// Number of features (even).
        features: usize,
    },
    /// A learned scale per step and hidden unit (seed 001), for a schedule of `steps` steps.
    PerStep {
        /// T.
        steps: usize,
    },
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
    /// How the time enters.
    #[serde(default)]
    pub time: TimeEncoding,
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
            time: TimeEncoding::Appended,
        }
    }
}

impl MlpConfig {
    /// The model, with burn's default initialisation (seeded through the device); seed 001's
    /// per-step scales start uniform on [0, 1].
    pub fn init(&self, device: &Device) -> Mlp {
        let cond = if self.classes > 0 {
            self.classes + 1
        } else {
            0
        };
        let time_inputs = match self.time {
            TimeEncoding::Appended => 1,
            TimeEncoding::Sinusoidal { features } => features,
            TimeEncoding::PerStep { .. } => 0,
        };
        let mut layers =
            vec![LinearConfig::new(self.dim + time_inputs + cond, self.hidden).init(device)];
        for _ in 1..self.depth {
            layers.push(LinearConfig::new(self.hidden, self.hidden).init(device));
        }
        layers.push(LinearConfig::new(self.hidden, self.dim).init(device));
        let gammas = match self.time {
            TimeEncoding::PerStep { steps } => (0..self.depth)
                .map(|_| {
                    Param::from_tensor(Tensor::random(
                        [steps, self.hidden],
                        Distribution::Uniform(0.0, 1.0),
                        device,
                    ))
                })
                .collect(),
            _ => vec![],
        };
        Mlp {
            layers,
            gammas,
            activation: self.activation,
            time: self.time,
        }
    }

    /// Checks the settings a model cannot be built without.
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |m: &str| Err(crate::NnError::Invalid(m.into()));
        if self.dim == 0 || self.hidden == 0 || self.depth == 0 {
            return bad("a model needs dim, hidden and depth of at least 1");
        }
        match self.time {
            TimeEncoding::Sinusoidal { features } if features == 0 || features % 2 == 1 => {
                bad("sinusoidal time features must be a positive even number")
            }
            TimeEncoding::PerStep { steps: 0 } => bad("a per-step model needs T >= 1"),
            _ => Ok(()),
        }
    }
}

/// An MLP denoiser: x_t, the time (as its [`TimeEncoding`] says) and an optional class in,
/// eps-hat (or the model's target) out.
#[derive(Module, Debug)]
pub struct Mlp {
    layers: Vec<Linear>,
    /// Per-step scales gamma `[T, hidden]` of each hidden layer (seed 001), else empty.
    gammas: Vec<Param<Tensor<2>>>,
    #[module(skip)]
    activation: Activation,
    #[module(skip)]
    time: TimeEncoding,
}

/// Sinusoidal features `[n, features]` of times `t_over_t` `[n, 1]` in [0, 1].
pub(crate) fn sinusoidal(t_over_t: Tensor<2>, features: usize) -> Tensor<2> {
    let half = features / 2;
    let w: Vec<f32> = (0..half)
        .map(|k| (-(10_000f64.ln()) * k as f64 / half as f64).exp() as f32)
        .collect();
    let w = Tensor::<2>::from_data(TensorData::new(w, [1, half]), &t_over_t.device());
    let arg = (t_over_t * 1000.0).matmul(w);
    Tensor::cat(vec![arg.clone().sin(), arg.cos()], 1)
}

/// Rows `[n, T]` that pick gamma at step t = T t_over_t, interpolating linearly between whole
/// steps (row k of gamma belongs to step k + 1, as seed 001's index t belongs to alpha-bar[t]).
fn step_weights(t_over_t: &Tensor<2>, steps: usize) -> Tensor<2> {
    let ts = diffuse_core::tensor::to_vec(t_over_t).unwrap_or_default();
    let mut w = vec![0f32; ts.len() * steps];
    for (i, t) in ts.iter().enumerate() {
        let pos = (t * steps as f64 - 1.0).clamp(0.0, (steps - 1) as f64);
        let k = (pos.floor() as usize).min(steps - 1);
        let frac = pos - k as f64;
        w[i * steps + k] = (1.0 - frac) as f32;
        if frac > 0.0 && k + 1 < steps {
            w[i * steps + k + 1] = frac as f32;
        }
    }
    Tensor::from_data(TensorData::new(w, [ts.len(), steps]), &t_over_t.device())
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
    /// eps-hat for x `[n, d]` at times `t_over_t` `[n, 1]` (t / T), with the one-hot class
    /// `[n, C + 1]` of a conditional model.
    pub fn forward(
        &self,
        x: Tensor<2>,
        t_over_t: Tensor<2>,
        class: Option<Tensor<2>>,
    ) -> Tensor<2> {
        let mut inputs = vec![x];
        let mut scales = None;
        match self.time {
            TimeEncoding::Appended => inputs.push(t_over_t),
            TimeEncoding::Sinusoidal { features } => inputs.push(sinusoidal(t_over_t, features)),
            TimeEncoding::PerStep { steps } => scales = Some(step_weights(&t_over_t, steps)),
        }
        inputs.extend(class);
        let mut h = Tensor::cat(inputs, 1);
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            h = crate::cpu::linear::linear(layer, h);
            if i < last {
                if let Some(w) = &scales {
                    // ConditionalLinear: out = gamma_t * (W x + b).
                    h = h * w.clone().matmul(self.gammas[i].val());
                }
                h = self.activation.apply(h);
            }
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diffuse_core::tensor::to_vec;

    fn column(values: &[f64]) -> Tensor<2> {
        diffuse_core::tensor::from_flat(values, values.len(), 1, &Device::flex())
    }

    /// Whole steps pick their own row of gamma (step t -> row t - 1, as seed 001 indexes
    /// alpha-bar); times between steps mix the two neighbours linearly; the ends are clamped.
    #[test]
    fn step_weights_pick_and_interpolate_rows() {
        let t = 10;
        let w = to_vec(&step_weights(&column(&[0.1, 0.35, 1.0, 0.0]), t)).unwrap();
        let row = |i: usize| &w[i * t..(i + 1) * t];
        assert_eq!(row(0)[0], 1.0); // t = 1
        assert!((row(1)[2] - 0.5).abs() < 1e-6 && (row(1)[3] - 0.5).abs() < 1e-6); // t = 3.5
        assert_eq!(row(2)[9], 1.0); // t = T
        assert_eq!(row(3)[0], 1.0); // t = 0 clamps to the first step
        for i in 0..4 {
            assert!((row(i).iter().sum::<f64>() - 1.0).abs() < 1e-6);
        }
    }

    /// sin/cos of 1000 t/T times 10000^(-k/half), in that order.
    #[test]
    fn sinusoidal_features_are_the_transformer_embedding() {
        let f = to_vec(&sinusoidal(column(&[0.25]), 4)).unwrap();
        let arg = [250.0f64, 250.0 / 100.0];
        let want = [arg[0].sin(), arg[1].sin(), arg[0].cos(), arg[1].cos()];
        for (g, w) in f.iter().zip(want) {
            assert!((g - w).abs() < 1e-3, "{f:?} against {want:?}");
        }
    }

    /// The per-step model is seed 001's ConditionalModel: with every gamma row of a step set to
    /// 2, its output equals the plain MLP with each hidden pre-activation doubled.
    #[test]
    fn the_per_step_model_scales_each_hidden_layer_by_its_step_vector() {
        let device = Device::flex();
        device.seed(4);
        let cfg = MlpConfig {
            dim: 2,
            hidden: 8,
            depth: 2,
            activation: Activation::Relu,
            classes: 0,
            time: TimeEncoding::PerStep { steps: 5 },
        };
        let mut m = cfg.init(&device);
        assert!(cfg.validate().is_ok());
        // Set every gamma to 2: the output must equal layers applied by hand with h <- relu(2 h).
        m.gammas = m
            .gammas
            .iter()
            .map(|g| Param::from_tensor(g.val().ones_like() * 2.0))
            .collect();
        let x = diffuse_core::tensor::from_flat(&[0.3, -0.7, 1.1, 0.2], 2, 2, &device);
        let got = to_vec(&m.forward(x.clone(), column(&[0.6, 0.6]), None)).unwrap();
        let mut h = x;
        for (i, layer) in m.layers.iter().enumerate() {
            h = layer.forward(h);
            if i + 1 < m.layers.len() {
                h = relu(h * 2.0);
            }
        }
        let want = to_vec(&h).unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "{got:?} against {want:?}");
        }
        let bad = MlpConfig {
            time: TimeEncoding::Sinusoidal { features: 3 },
            ..cfg
        };
        assert!(bad.validate().is_err());
    }
}
