//! An exponential moving average of a model's weights, used for sampling (as DDPM and most
//! diffusion codes do): w_ema <- decay w_ema + (1 - decay) w after every optimiser step. Any
//! burn module: the MLPs and pixel UNet, and the latent model's UNet2DCondition.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Tensor, TensorData};

/// The averaged weights, in the model's parameter order.
#[derive(Debug, Clone)]
pub struct Ema {
    decay: f64,
    shadow: Option<Vec<Vec<f32>>>,
}

struct Gather(Vec<Vec<f32>>);

impl ModuleVisitor for Gather {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(
            param
                .val()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap_or_default(),
        );
    }
}

struct Replace<'a> {
    values: &'a [Vec<f32>],
    next: usize,
}

impl ModuleMapper for Replace<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(v) = self.values.get(self.next) else {
            return param;
        };
        self.next += 1;
        let v = v.clone();
        param.map(|t| {
            let (shape, device) = (t.shape(), t.device());
            if shape.num_elements() == v.len() {
                Tensor::from_data(TensorData::new(v, shape), &device)
            } else {
                t
            }
        })
    }
}

fn weights<M: Module>(model: &M) -> Vec<Vec<f32>> {
    let mut g = Gather(vec![]);
    model.visit(&mut g);
    g.0
}

impl Ema {
    /// An average with the given decay (0.999 is usual), starting at the first update.
    pub fn new(decay: f64) -> Self {
        Self {
            decay,
            shadow: None,
        }
    }

    /// An average that starts from `model`'s weights (to resume a run).
    pub fn starting_at<M: Module>(decay: f64, model: &M) -> Self {
        Self {
            decay,
            shadow: Some(weights(model)),
        }
    }

    /// Folds the model's current weights into the average.
    pub fn update<M: Module>(&mut self, model: &M) {
        let current = weights(model);
        match &mut self.shadow {
            None => self.shadow = Some(current),
            Some(shadow) => {
                let (a, b) = (self.decay as f32, (1.0 - self.decay) as f32);
                for (s, c) in shadow.iter_mut().zip(&current) {
                    for (si, ci) in s.iter_mut().zip(c) {
                        *si = a * *si + b * ci;
                    }
                }
            }
        }
    }

    /// `model` with the averaged weights (unchanged before the first update).
    pub fn apply<M: Module>(&self, model: M) -> M {
        match &self.shadow {
            None => model,
            Some(values) => model.map(&mut Replace { values, next: 0 }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mlp::{Activation, MlpConfig, TimeEncoding};
    use crate::model::ModelConfig;
    use burn::tensor::Device;

    /// With decay d, after updates with weights w1 then w2 the average is d w1 + (1 - d) w2.
    #[test]
    fn the_average_is_the_closed_form() {
        let device = Device::flex();
        let cfg = ModelConfig::Mlp(MlpConfig {
            dim: 1,
            hidden: 4,
            depth: 1,
            activation: Activation::Relu,
            classes: 0,
            time: TimeEncoding::Appended,
        });
        device.seed(1);
        let m1 = cfg.init(&device);
        device.seed(2);
        let m2 = cfg.init(&device);
        let mut ema = Ema::new(0.9);
        ema.update(&m1);
        ema.update(&m2);
        let got = weights(&ema.apply(cfg.init(&device)));
        for ((g, a), b) in got
            .iter()
            .flatten()
            .zip(weights(&m1).iter().flatten())
            .zip(weights(&m2).iter().flatten())
        {
            assert!((g - (0.9 * a + 0.1 * b)).abs() < 1e-6);
        }
    }
}
