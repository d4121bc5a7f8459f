//! GroupNorm with its affine parameters, optionally followed by SiLU, for training on the CPU: a
//! custom autodiff operation with one forward kernel ([`group_norm_f32_copy`]) and one backward
//! kernel, where burn records about a dozen tensor operations (mean, subtract, square, mean,
//! add, sqrt, divide, multiply, add, sigmoid, multiply), each with its own pass and allocation
//! forward and backward. Per (image, group) block of `m` elements, with `x̂ = (x - μ) / σ`,
//! `z = γ x̂ + β`, `y = silu(z)` (or `z`) and `g = ∂L/∂z = ∂L/∂y · silu'(z)`:
//!
//! `∂L/∂β_c = Σ g`, `∂L/∂γ_c = Σ g x̂` (over the images and positions of channel c), and
//! `∂L/∂x = (γ g - mean(γ g) - x̂ mean(γ g x̂)) / σ` (means over the block).
//!
//! The statistics are recomputed from the saved input in the backward pass (one read).

use burn::backend::Autodiff;
use burn::backend::Flex;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::norm::{group_norm_f32_copy, lane_sum};
use super::{FlexTensor, flex_dims, flex_f32, flex_from};

/// The operation's sizes and settings.
#[derive(Debug, Clone, Copy)]
struct Spec {
    groups: usize,
    eps: f64,
    silu: bool,
}

/// [`super::norm::group_norm`] with `gamma` and `beta` on an autodiff CPU device; the tensors
/// given back when they are not on that device.
pub(crate) fn group_norm(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    groups: usize,
    eps: f64,
    silu: bool,
) -> Result<Tensor<4>, Box<(Tensor<4>, Tensor<1>, Tensor<1>)>> {
    let spec = Spec { groups, eps, silu };
    match x.device().gradient_checkpointing_strategy() {
        Some(burn::backend::GradientCheckpointingStrategy::Balanced) => {
            group_norm_with::<BalancedCheckpointing>(x, gamma, beta, spec)
        }
        _ => group_norm_with::<NoCheckpointing>(x, gamma, beta, spec),
    }
}

fn group_norm_with<C: CheckpointStrategy>(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    spec: Spec,
) -> Result<Tensor<4>, Box<(Tensor<4>, Tensor<1>, Tensor<1>)>>
where
    burn::backend::DispatchTensor: burn::backend::DispatchKindConversion<Autodiff<Flex, C>>,
{
    let (xc, gc, bc) = (x.clone(), gamma.clone(), beta.clone());
    let (Ok(x), Ok(gamma), Ok(beta)) = (
        x.try_into_primitive::<Autodiff<Flex, C>>(),
        gamma.try_into_primitive::<Autodiff<Flex, C>>(),
        beta.try_into_primitive::<Autodiff<Flex, C>>(),
    ) else {
        return Err(Box::new((xc, gc, bc)));
    };
    drop((xc, gc, bc));
    let forward = |x: &FlexTensor, g: &FlexTensor, b: &FlexTensor| {
        let [n, c, h, w] = flex_dims::<4>(x);
        // The input is kept for the backward pass: normalise a copy.
        let (g, b) = (flex_f32(g), flex_f32(b));
        let v = group_norm_f32_copy(
            &flex_f32(x),
            c,
            h * w,
            spec.groups,
            spec.eps,
            Some((&g, &b)),
            spec.silu,
        );
        flex_from(v, [n, c, h, w])
    };
    let out = match GroupNormBackward
        .prepare::<C>([x.node(), gamma.node(), beta.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let state = (
                prep.checkpoint(&x),
                prep.checkpoint(&gamma),
                prep.checkpoint(&beta),
                spec,
            );
            let y = forward(x.primitive(), gamma.primitive(), beta.primitive());
            prep.finish(state, y)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(forward(x.primitive(), gamma.primitive(), beta.primitive()))
        }
    };
    Ok(Tensor::from_primitive::<Autodiff<Flex, C>>(out))
}

#[derive(Debug)]
struct GroupNormBackward;

impl Backward<Flex, 3> for GroupNormBackward {
    type State = (NodeId, NodeId, NodeId, Spec);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_g, node_b] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (x_state, g_state, b_state, spec) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state);
        let gamma = checkpointer.retrieve_node_output::<FlexTensor>(g_state);
        let beta = checkpointer.retrieve_node_output::<FlexTensor>(b_state);
        let [n, c, h, w] = flex_dims::<4>(&x);
        let (dx, dgamma, dbeta) = group_norm_backward_f32(
            &flex_f32(&x),
            &flex_f32(&dy),
            c,
            h * w,
            &flex_f32(&gamma),
            &flex_f32(&beta),
            spec,
        );
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, flex_from(dx, [n, c, h, w]));
        }
        if let Some(node) = node_g {
            grads.register::<Flex>(node.id, flex_from(dgamma, [c]));
        }
        if let Some(node) = node_b {
            grads.register::<Flex>(node.id, flex_from(dbeta, [c]));
        }
    }
}

/// The gradients `(∂L/∂x, ∂L/∂γ, ∂L/∂β)` of GroupNorm (+ SiLU) on NCHW images `x` of `c`
/// channels of `hw` positions, given `dy = ∂L/∂y`. Sums in f64; each (image, group) block is one
/// task and the per-channel sums are added over the images in order, so the bytes do not
/// depend on scheduling.
fn group_norm_backward_f32(
    x: &[f32],
    dy: &[f32],
    c: usize,
    hw: usize,
    gamma: &[f32],
    beta: &[f32],
    spec: Spec,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let groups = spec.groups;
    let per_group = c / groups;
    let block = per_group * hw;
    assert_eq!(dy.len(), x.len(), "group norm backward: gradient size");
    if block == 0 {
        return (vec![0.0; x.len()], vec![0.0; c], vec![0.0; c]);
    }
    // Per task: (Σ g x̂, Σ g) for each of its channels. Each task starts its block of dx as a
    // copy of dy (block_backward writes every element; a serial zeroing of the whole cost the
    // waiting threads).
    let mut dx: Vec<f32> = Vec::with_capacity(x.len());
    let sums: Vec<Vec<(f64, f64)>> = dx.spare_capacity_mut()[..x.len()]
        .par_chunks_mut(block)
        .zip(x.par_chunks(block))
        .zip(dy.par_chunks(block))
        .enumerate()
        .map(|(task, ((dx, x), dy))| {
            for (d, s) in dx.iter_mut().zip(dy) {
                d.write(*s);
            }
            // SAFETY: every element of the block has just been written.
            let dx =
                unsafe { std::slice::from_raw_parts_mut(dx.as_mut_ptr().cast::<f32>(), dx.len()) };
            let first = (task % groups) * per_group;
            let affine = (
                &gamma[first..first + per_group],
                &beta[first..first + per_group],
            );
            block_backward(dx, x, dy, hw, affine, spec)
        })
        .collect();
    // SAFETY: the blocks cover all x.len() elements, each written above.
    unsafe { dx.set_len(x.len()) };
    let (mut dgamma, mut dbeta) = (vec![0f64; c], vec![0f64; c]);
    for (task, channel) in sums.iter().enumerate() {
        let first = (task % groups) * per_group;
        for (k, &(sgx, sg)) in channel.iter().enumerate() {
            dgamma[first + k] += sgx;
            dbeta[first + k] += sg;
        }
    }
    let to32 = |v: Vec<f64>| v.into_iter().map(|e| e as f32).collect();
    (dx, to32(dgamma), to32(dbeta))
}

/// One (image, group) block of [`group_norm_backward_f32`]: `dx` gets `∂L/∂x`, and the block's
/// `(Σ g x̂, Σ g)` per channel are returned. Compiled for the CPU's widest vectors (the same
/// operations in the same order, so the same bits as the baseline).
fn block_backward(
    dx: &mut [f32],
    x: &[f32],
    dy: &[f32],
    hw: usize,
    affine: (&[f32], &[f32]),
    spec: Spec,
) -> Vec<(f64, f64)> {
    super::isa::widest(
        #[inline(always)]
        || block_backward_scalar(dx, x, dy, hw, affine, spec),
    )
}

/// Element-wise passes with no running sum across elements (so they vectorise), and the sums
/// in eight f64 lanes ([`lane_sum`], [`lane_dot`]).
#[inline(always)]
fn block_backward_scalar(
    dx: &mut [f32],
    x: &[f32],
    dy: &[f32],
    hw: usize,
    (gamma, beta): (&[f32], &[f32]),
    spec: Spec,
) -> Vec<(f64, f64)> {
    let m = x.len() as f64;
    let mean = lane_sum(x, |e| e) / m;
    let var = lane_sum(x, |e| (e - mean) * (e - mean)) / m;
    let inv = 1.0 / (var + spec.eps).sqrt();
    let (mean32, inv32) = (mean as f32, inv as f32);
    let mut channel = Vec::with_capacity(gamma.len());
    // Σ γ g and Σ γ g x̂ over the block.
    let (mut s1, mut s2) = (0f64, 0f64);
    for (k, ((dx, x), dy)) in dx
        .chunks_exact_mut(hw)
        .zip(x.chunks_exact(hw))
        .zip(dy.chunks_exact(hw))
        .enumerate()
    {
        let (gk, bk) = (gamma[k], beta[k]);
        // g = ∂L/∂z into dx.
        if spec.silu {
            for ((d, &xe), &dye) in dx.iter_mut().zip(x).zip(dy) {
                let z = gk * ((xe - mean32) * inv32) + bk;
                let s = 1.0 / (1.0 + crate::act::exp_neg(z));
                *d = dye * (s * (1.0 + z * (1.0 - s)));
            }
        } else {
            dx.copy_from_slice(dy);
        }
        let sg = lane_sum(dx, |e| e);
        let sgx = lane_dot(dx, x, |g, xe| g * ((xe - mean32) * inv32));
        channel.push((sgx, sg));
        s1 += f64::from(gk) * sg;
        s2 += f64::from(gk) * sgx;
    }
    let (a, b) = ((s1 / m) as f32, (s2 / m) as f32);
    for (k, (dx, x)) in dx.chunks_exact_mut(hw).zip(x.chunks_exact(hw)).enumerate() {
        let gk = gamma[k];
        for (d, &xe) in dx.iter_mut().zip(x) {
            let xh = (xe - mean32) * inv32;
            *d = (gk * *d - a - xh * b) * inv32;
        }
    }
    channel
}

/// The sum of `f(a, b)` (an f32 product) over pairs of `a` and `b`, in eight f64 lanes.
#[inline(always)]
fn lane_dot(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f64 {
    let mut lanes = [0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| f64::from(f(x, y)))
        .sum();
    for (ca, cb) in ca.zip(cb) {
        for ((l, &x), &y) in lanes.iter_mut().zip(ca).zip(cb) {
            *l += f64::from(f(x, y));
        }
    }
    lanes.iter().sum::<f64>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::GroupNormConfig;
    use burn::tensor::Distribution;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        super::super::to_vec(t)
    }

    /// Output and the three gradients of our operation against burn's autodiff GroupNorm (and
    /// burn's SiLU), for the loss `sum(y * r)` with a random `r`.
    fn compare(n: usize, c: usize, groups: usize, [h, w]: [usize; 2], scale: f64, offset: f64) {
        let device = diffuse_core::device::cpu().autodiff();
        let normal = |mean, std| Distribution::Normal(mean, std);
        let x = Tensor::<4>::random([n, c, h, w], normal(offset, scale), &device);
        let gamma = Tensor::<1>::random([c], Distribution::Uniform(0.5, 2.0), &device);
        let beta = Tensor::<1>::random([c], normal(0.0, 1.0), &device);
        let r = Tensor::<4>::random([n, c, h, w], normal(0.0, 1.0), &device);
        for silu in [false, true] {
            let run = |ours: bool| {
                let x = x.clone().detach().require_grad();
                let mut norm = GroupNormConfig::new(groups, c).init(&device);
                norm.gamma = norm
                    .gamma
                    .map(|p| p.map(|_| gamma.clone().detach().require_grad()));
                norm.beta = norm
                    .beta
                    .map(|p| p.map(|_| beta.clone().detach().require_grad()));
                let (Some(gp), Some(bp)) = (&norm.gamma, &norm.beta) else {
                    unreachable!("affine by default")
                };
                let y = if ours {
                    let Ok(y) =
                        group_norm(x.clone(), gp.val(), bp.val(), groups, norm.epsilon, silu)
                    else {
                        panic!("the custom operation did not take an autodiff CPU tensor")
                    };
                    y
                } else {
                    let y = norm.forward(x.clone());
                    if silu {
                        burn::tensor::activation::silu(y)
                    } else {
                        y
                    }
                };
                let grads = (y.clone() * r.clone()).sum().backward();
                (
                    values(y.inner()),
                    values(x.grad(&grads).expect("x gradient")),
                    values(gp.val().grad(&grads).expect("gamma gradient")),
                    values(bp.val().grad(&grads).expect("beta gradient")),
                )
            };
            let want = run(false);
            let got = run(true);
            let m = (c / groups * h * w) as f32;
            let what =
                format!("{n}x{c}x{h}x{w}, {groups} groups, silu {silu}, N({offset}, {scale})");
            // Sums over a block of m terms in another order; the output and its input gradient
            // are scaled by 1/σ, which round-off in the statistics carries as (1 + |μ|/σ).
            let cond = (1.0 + offset.abs() / scale) as f32;
            let tol = |terms: f32, b: f32| {
                8.0 * f32::EPSILON * terms.sqrt() * cond * (terms.sqrt() + b.abs())
            };
            // The input gradient is a difference of terms of size |γ g| / σ (γ <= 2, |silu'|
            // < 1.1): when they cancel, its round-off follows them, not the small result, and a
            // block of a few elements can draw a σ well below the distribution's.
            let (xs, rs) = (values(x.clone()), values(r.clone()));
            let block = xs.len() / (n * groups).max(1);
            let anchor: Vec<f32> = xs
                .chunks(block.max(1))
                .zip(rs.chunks(block.max(1)))
                .map(|(xb, rb)| {
                    let k = xb.len() as f64;
                    let mu = xb.iter().map(|&v| v as f64).sum::<f64>() / k;
                    let var = xb.iter().map(|&v| (v as f64 - mu).powi(2)).sum::<f64>() / k;
                    let sigma = (var + 1e-5).sqrt() as f32;
                    let r_max = rb.iter().fold(0f32, |a, v| a.max(v.abs()));
                    2.0 * 1.1 * r_max / sigma
                })
                .collect();
            for (name, g, w, terms) in [
                ("output", &got.0, &want.0, 1.0),
                ("input gradient", &got.1, &want.1, m),
                (
                    "gamma gradient",
                    &got.2,
                    &want.2,
                    n as f32 * h as f32 * w as f32,
                ),
                (
                    "beta gradient",
                    &got.3,
                    &want.3,
                    n as f32 * h as f32 * w as f32,
                ),
            ] {
                assert_eq!(g.len(), w.len(), "{name} {what}");
                for (i, (a, b)) in g.iter().zip(w.iter()).enumerate() {
                    let t = if name == "input gradient" {
                        tol(terms.max(m), b.abs() + anchor[i / block.max(1)])
                    } else {
                        tol(terms.max(m), *b)
                    };
                    assert!(
                        (a - b).abs() <= t,
                        "{name} {i}: {a} vs burn {b} (tol {t}) {what}"
                    );
                }
            }
        }
    }

    #[test]
    fn gradients_match_burns_on_odd_shapes() {
        // The UNet's 32 channels in 8 groups at 28x28; batch 1; one channel per group; one
        // group; prime sizes; a small variance where eps matters; a mean far from 0.
        compare(3, 32, 8, [28, 28], 1.0, 0.0);
        compare(1, 6, 6, [5, 7], 1.0, 0.0);
        compare(2, 5, 1, [3, 11], 1.0, 0.0);
        compare(2, 12, 4, [1, 1], 1.0, 0.0);
        compare(1, 4, 2, [13, 3], 1e-2, 0.0);
        compare(2, 8, 4, [7, 7], 0.5, 3.0);
    }
}
