//! Data-parallel training: every batch is split into shards, one per device of this process and
//! per process of the group; each shard's gradient is computed on its own replica of the model,
//! the gradients are summed (in shard order, then in rank order across processes), and the one
//! optimiser step every replica then takes is the step one device would take on the whole batch,
//! up to float32 summation order.
//!
//! Each shard's loss is its share of the whole batch's mean: the sum of its squared errors over
//! (batch x dim), so the summed gradient is the whole batch's. The gradients travel through the
//! host as float32 (a GPU-to-GPU all-reduce is burn's to give; 0.22 has it only for its CUDA
//! backend's own collectives).

use std::ops::Range;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};

use crate::collective::{Group, Peers};
use crate::model::Model;
use crate::{NnError, Result};

/// How each batch is shared out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parallel {
    /// Further devices of this process, beside the run's own, each taking an equal share of
    /// every batch with a replica of the model; the shards are computed side by side, one thread
    /// each (the same device may be named again: the CPU then shares its cores between the
    /// shards, which tests the arithmetic without a second device).
    pub extra_devices: Vec<Device>,
    /// Other processes that share every batch; None: this process alone.
    pub peers: Option<Peers>,
}

impl Parallel {
    /// One device, one process: nothing is shared.
    pub fn is_single(&self) -> bool {
        self.extra_devices.is_empty() && self.peers.is_none()
    }

    /// Shards per process.
    pub fn per_process(&self) -> usize {
        1 + self.extra_devices.len()
    }

    /// Shards in all.
    pub fn shards(&self) -> usize {
        self.per_process() * self.peers.as_ref().map_or(1, |p| p.nodes)
    }
}

/// One shard's inputs, built on the host: x_t, t / T, the target and the condition rows.
pub(crate) struct Inputs {
    pub n: usize,
    pub d: usize,
    pub xt: Vec<f32>,
    pub t_in: Vec<f32>,
    pub goal: Vec<f32>,
    /// Condition rows and their width.
    pub cond: Option<(Vec<f32>, usize)>,
}

impl Inputs {
    /// The model's squared errors on `device`: their mean (one device), or their sum over
    /// `whole` elements (a shard's share of the batch's mean).
    pub fn loss(self, model: &Model, device: &Device, whole: Option<usize>) -> Tensor<1> {
        let (n, d) = (self.n, self.d);
        let xt = Tensor::<2>::from_data(TensorData::new(self.xt, [n, d]), device);
        let t_in = Tensor::<2>::from_data(TensorData::new(self.t_in, [n, 1]), device);
        let target = Tensor::<2>::from_data(TensorData::new(self.goal, [n, d]), device);
        let cond = self
            .cond
            .map(|(c, w)| Tensor::<2>::from_data(TensorData::new(c, [n, w]), device));
        let err = (model.forward(xt, t_in, cond) - target).square();
        match whole {
            None => err.mean(),
            Some(m) => err.sum().div_scalar(m as f32),
        }
    }
}

/// The shards of a batch's global rows `rows` that this process computes (split as evenly as
/// the batch allows: shard g of G holds rows [g b / G, (g + 1) b / G)).
pub(crate) fn my_rows(parallel: &Parallel, rows: Range<u64>) -> Vec<Range<u64>> {
    let (b, g_all) = (rows.end - rows.start, parallel.shards() as u64);
    let per = parallel.per_process() as u64;
    let rank = parallel.peers.as_ref().map_or(0, |p| p.rank) as u64;
    (rank * per..(rank + 1) * per)
        .map(|g| rows.start + g * b / g_all..rows.start + (g + 1) * b / g_all)
        .collect()
}

/// A model's gradients as one float32 vector (in the module's visiting order), and per
/// parameter 1 if it has a gradient, else 0 (its entries are then zeros).
struct Flatten<'a> {
    grads: &'a mut GradientsParams,
    values: Vec<f32>,
    present: Vec<f32>,
    error: Option<String>,
}

impl ModuleVisitor for Flatten<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let n = param.val().shape().num_elements();
        match self.grads.remove::<D>(param.id) {
            Some(g) => match g.into_data().convert::<f32>().try_into_vec::<f32>() {
                Ok(v) => {
                    self.values.extend(v);
                    self.present.push(1.0);
                }
                Err(e) => {
                    self.error.get_or_insert(format!("a gradient: {e:?}"));
                    self.values.extend(std::iter::repeat_n(0.0, n));
                    self.present.push(0.0);
                }
            },
            None => {
                self.values.extend(std::iter::repeat_n(0.0, n));
                self.present.push(0.0);
            }
        }
    }
}

/// The inverse of [`Flatten`]: the gradients of the parameters that had one, on `device`.
struct Unflatten<'a> {
    values: &'a [f32],
    present: &'a [f32],
    at: usize,
    k: usize,
    device: &'a Device,
    out: GradientsParams,
}

impl ModuleVisitor for Unflatten<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let shape = param.val().shape();
        let n = shape.num_elements();
        if self.present.get(self.k).is_some_and(|p| *p > 0.0) {
            let v = self.values[self.at..self.at + n].to_vec();
            let g = Tensor::<D>::from_data(TensorData::new(v, shape), self.device);
            self.out.register::<D>(param.id, g);
        }
        self.at += n;
        self.k += 1;
    }
}

/// One shard: its loss (as a number) and its gradient, flattened.
fn shard(model: &Model, inputs: Inputs, device: &Device, whole: usize) -> Result<(f64, Vec<f32>)> {
    let loss = inputs.loss(model, device, Some(whole));
    let value = f64::from(loss.clone().into_scalar::<f32>());
    let mut grads = GradientsParams::from_grads(loss.backward(), model);
    let mut flat = Flatten {
        grads: &mut grads,
        values: vec![],
        present: vec![],
        error: None,
    };
    model.visit(&mut flat);
    if let Some(e) = flat.error {
        return Err(NnError::Invalid(e));
    }
    let mut values = flat.values;
    values.extend(flat.present);
    Ok((value, values))
}

/// The data-parallel side of a training run: the devices and the group.
pub(crate) struct Sharded {
    /// This process's devices, in autodiff form; the model lives on the first.
    devices: Vec<Device>,
    /// Where the summed gradients are put for the optimiser (the first device, plain).
    home: Device,
    group: Option<Group>,
    /// Elements in a whole batch (batch x dim).
    whole: usize,
}

impl Sharded {
    /// Joins the group, if any; `run` fingerprints the settings all ranks must share.
    pub fn new(
        home: &Device,
        parallel: &Parallel,
        batch: usize,
        dim: usize,
        run: u64,
    ) -> Result<Self> {
        if batch < parallel.shards() {
            return Err(NnError::Invalid(format!(
                "a batch of {batch} cannot be shared by {} devices: every device needs a sample",
                parallel.shards()
            )));
        }
        let group = match &parallel.peers {
            Some(p) => Some(Group::join(p, run)?),
            None => None,
        };
        let mut devices = vec![home.clone().autodiff()];
        devices.extend(parallel.extra_devices.iter().map(|d| d.clone().autodiff()));
        Ok(Self {
            devices,
            home: home.clone(),
            group,
            whole: batch * dim,
        })
    }

    /// One optimiser step of `model` on the shards `inputs` (one per device of this process).
    /// Returns the model and the whole batch's loss.
    pub fn step(
        &mut self,
        model: Model,
        inputs: Vec<Inputs>,
        optim: &mut ModuleOptimizer,
        lr: f64,
        step: usize,
    ) -> Result<(Model, f64)> {
        let replicas: Vec<Option<Model>> = self
            .devices
            .iter()
            .enumerate()
            .map(|(k, d)| (k > 0).then(|| model.clone().fork(d)))
            .collect();
        let whole = self.whole;
        let results: Vec<Result<(f64, Vec<f32>)>> = std::thread::scope(|s| {
            let running: Vec<_> = inputs
                .into_iter()
                .zip(&self.devices)
                .zip(&replicas)
                .map(|((inp, dev), rep)| {
                    let m = rep.as_ref().unwrap_or(&model);
                    s.spawn(move || shard(m, inp, dev, whole))
                })
                .collect();
            running
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(NnError::Invalid(format!(
                            "a device's share of step {step} failed"
                        )))
                    })
                })
                .collect()
        });
        drop(replicas);
        let mut loss = 0.0;
        let mut total: Vec<f32> = vec![];
        for r in results {
            let (l, g) = r?;
            loss += l;
            if total.is_empty() {
                total = g;
            } else {
                total.iter_mut().zip(&g).for_each(|(t, x)| *t += x);
            }
        }
        if let Some(group) = self.group.as_mut() {
            loss = group.all_reduce(step, &mut total, loss)?;
        }
        if !loss.is_finite() {
            return Err(NnError::Diverged { step, loss });
        }
        let params = model.num_params_tensors();
        let (values, present) = total.split_at(total.len() - params);
        let mut un = Unflatten {
            values,
            present,
            at: 0,
            k: 0,
            device: &self.home,
            out: GradientsParams::new(),
        };
        model.visit(&mut un);
        Ok((optim.step(lr, model, un.out), loss))
    }
}

/// The number of float parameter tensors of a model.
trait CountTensors {
    fn num_params_tensors(&self) -> usize;
}

impl CountTensors for Model {
    fn num_params_tensors(&self) -> usize {
        struct Count(usize);
        impl ModuleVisitor for Count {
            fn visit_float<const D: usize>(&mut self, _: &Param<Tensor<D>>) {
                self.0 += 1;
            }
        }
        let mut c = Count(0);
        self.visit(&mut c);
        c.0
    }
}
