//! GroupNorm, optionally followed by SiLU, for inference in one pass over each group: burn's
//! `GroupNorm` runs about seven tensor operations (mean, subtract, square, mean, add, sqrt,
//! divide, then the affine and SiLU), each a full pass over the activations with its own
//! allocation. Here each (image, group) block, contiguous in NCHW, is read once for its mean, once
//! for its variance, and written once.

use burn::nn::GroupNorm as BurnGroupNorm;
use burn::tensor::{DType, Tensor};

/// `silu(norm.forward(x))` (or `norm.forward(x)` when `silu` is false) for burn's module.
pub fn group_norm_module(norm: &BurnGroupNorm, x: Tensor<4>, silu: bool) -> Tensor<4> {
    let affine = norm.affine.then(|| {
        let (Some(g), Some(b)) = (&norm.gamma, &norm.beta) else {
            unreachable!("burn's GroupNorm with affine has gamma and beta")
        };
        (g.val(), b.val())
    });
    let device = x.device();
    if !super::fast_path(&device, x.dtype()) && !super::training_path(&device) {
        let y = norm.forward(x);
        return if silu { crate::act::silu(y) } else { y };
    }
    group_norm(x, affine, norm.num_groups, norm.epsilon, silu)
}

/// GroupNorm of `[B, C, H, W]` over `groups` groups of channels and all positions, biased
/// variance plus `eps` (as PyTorch and burn), then `gamma`, `beta` per channel and, if `silu`,
/// x sigmoid(x). On an inference CPU device in one fused kernel; elsewhere with tensor operations.
pub fn group_norm(
    x: Tensor<4>,
    affine: Option<(Tensor<1>, Tensor<1>)>,
    groups: usize,
    eps: f64,
    silu: bool,
) -> Tensor<4> {
    let device = x.device();
    let [b, c, h, w] = x.dims();
    let f32_cpu = |d: DType| d == DType::F32;
    if super::training_path(&device)
        && f32_cpu(x.dtype())
        && groups > 0
        && c.is_multiple_of(groups)
        && let Some((g, be)) = &affine
        && g.dims() == [c]
        && be.dims() == [c]
        && f32_cpu(g.dtype())
        && f32_cpu(be.dtype())
    {
        let (g, be) = (g.clone(), be.clone());
        match super::norm_grad::group_norm(x, g, be, groups, eps, silu) {
            Ok(y) => return y,
            Err(back) => return group_norm_tensors(back.0, affine, groups, eps, silu),
        }
    }
    if !super::fast_path(&device, x.dtype())
        || groups == 0
        || !c.is_multiple_of(groups)
        || affine.as_ref().is_some_and(|(g, be)| {
            g.dims() != [c] || be.dims() != [c] || !super::fast_path(&device, g.dtype())
        })
    {
        return group_norm_tensors(x, affine, groups, eps, silu);
    }
    let affine = affine.map(|(g, be)| (super::to_vec(g), super::to_vec(be)));
    let affine = affine.as_ref().map(|(g, be)| (g.as_slice(), be.as_slice()));
    let (per_group, hw) = (c / groups, h * w);
    if b * c * hw == 0 {
        return x;
    }
    super::map_blocks(x, per_group * hw, |task, v| {
        norm_block(v, (task % groups) * per_group, hw, eps, affine, silu)
    })
}

/// [`group_norm`] as burn tensor operations (any device, any dtype, gradients recorded).
fn group_norm_tensors(
    x: Tensor<4>,
    affine: Option<(Tensor<1>, Tensor<1>)>,
    groups: usize,
    eps: f64,
    silu: bool,
) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let grouped = x.reshape([b, groups, (c / groups.max(1)) * h * w]);
    let mean = grouped.clone().mean_dim(2);
    let centred = grouped - mean;
    let var = centred.clone().square().mean_dim(2);
    let mut y = (centred / (var + eps).sqrt()).reshape([b, c, h, w]);
    if let Some((g, be)) = affine {
        y = y * g.reshape([1, c, 1, 1]) + be.reshape([1, c, 1, 1]);
    }
    if silu { crate::act::silu(y) } else { y }
}

/// [`group_norm`] of NCHW images `x` of `c` channels of `hw` positions, into a new buffer (`x`
/// stays as it is: training keeps it for the backward pass). Statistics are summed in f64; each
/// element is then `(x - mean) (gamma / sqrt(var + eps)) + beta`. Each (image, group) block is
/// copied by the task that normalises it.
pub fn group_norm_f32_copy(
    x: &[f32],
    c: usize,
    hw: usize,
    groups: usize,
    eps: f64,
    affine: Option<(&[f32], &[f32])>,
    silu: bool,
) -> Vec<f32> {
    let per_group = c / groups;
    let block = per_group * hw;
    if block == 0 {
        return x.to_vec();
    }
    super::copy_blocks(x, block, |task, v| {
        norm_block(v, (task % groups) * per_group, hw, eps, affine, silu)
    })
}

/// One (image, group) block `v` of planes of `hw` positions, its first channel `first`, in place,
/// at the CPU's widest vectors (the same operations, so the same bits, on every x86-64 CPU).
fn norm_block(
    v: &mut [f32],
    first: usize,
    hw: usize,
    eps: f64,
    affine: Option<(&[f32], &[f32])>,
    silu: bool,
) {
    super::isa::widest(
        #[inline(always)]
        || {
            let n = v.len() as f64;
            let mean = lane_sum(v, |e| e) / n;
            let var = lane_sum(v, |e| (e - mean) * (e - mean)) / n;
            let inv = 1.0 / (var + eps).sqrt();
            let mean = mean as f32;
            for (k, plane) in v.chunks_exact_mut(hw).enumerate() {
                let (scale, shift) = match affine {
                    Some((g, be)) => ((g[first + k] as f64 * inv) as f32, be[first + k]),
                    None => (inv as f32, 0.0),
                };
                for e in plane.iter_mut() {
                    *e = (*e - mean) * scale + shift;
                }
                if silu {
                    crate::act::silu_scalar(plane);
                }
            }
        },
    )
}

/// The sum of `f(x)` over `v` in f64, in eight independent running sums (one chain of
/// dependent additions would cost an addition's latency per element).
#[inline(always)]
pub(crate) fn lane_sum(v: &[f32], f: impl Fn(f64) -> f64) -> f64 {
    let mut lanes = [0f64; 8];
    let chunks = v.chunks_exact(8);
    let tail: f64 = chunks.remainder().iter().map(|&e| f(e as f64)).sum();
    for chunk in chunks {
        for (l, &e) in lanes.iter_mut().zip(chunk) {
            *l += f(e as f64);
        }
    }
    lanes.iter().sum::<f64>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::GroupNormConfig;
    use burn::tensor::Distribution;

    /// The fused kernel against burn's GroupNorm (and burn's SiLU after it).
    fn compare(n: usize, c: usize, groups: usize, [h, w]: [usize; 2], scale: f64, offset: f64) {
        let device = diffuse_core::device::cpu();
        let mut norm = GroupNormConfig::new(groups, c).init(&device);
        // Affine parameters away from 1 and 0, so that a missing or misplaced one shows.
        norm.gamma = norm
            .gamma
            .map(|p| p.map(|_| Tensor::random([c], Distribution::Uniform(0.5, 2.0), &device)));
        norm.beta = norm
            .beta
            .map(|p| p.map(|_| Tensor::random([c], Distribution::Normal(0.0, 1.0), &device)));
        let x = Tensor::<4>::random([n, c, h, w], Distribution::Normal(offset, scale), &device);
        for silu in [false, true] {
            let want = norm.forward(x.clone());
            let want = if silu {
                burn::tensor::activation::silu(want)
            } else {
                want
            };
            // x shared (the kernel works on a copy) and a tensor of its own (in place).
            let shared = group_norm_module(&norm, x.clone(), silu);
            let alone = group_norm_module(&norm, x.clone().mul_scalar(1.0), silu);
            assert_eq!(shared.dims(), want.dims());
            let got: Vec<f32> = shared.into_data().try_to_vec().unwrap();
            let got_alone: Vec<f32> = alone.into_data().try_to_vec().unwrap();
            assert_eq!(got, got_alone, "in place and on a copy");
            let want: Vec<f32> = want.into_data().try_to_vec().unwrap();
            // burn sums each group's (c / groups) h w terms in f32: its mean and variance carry
            // round-off growing like the square root of that count (times |offset| / scale for
            // the centring); ours are summed in f64.
            let terms = ((c / groups) * h * w) as f32;
            let tol = 8.0 * terms.sqrt() * f32::EPSILON * (1.0 + (offset / scale) as f32);
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (a - b).abs() <= tol * (1.0 + b.abs()),
                    "element {i}: {a} vs burn {b} ({n}x{c}x{h}x{w}, {groups} groups, silu {silu})"
                );
            }
        }
    }

    #[test]
    fn matches_burns_group_norm_and_silu_on_odd_shapes() {
        compare(3, 16, 8, [28, 28], 1.0, 0.0); // the UNet's first level
        compare(1, 1, 1, [1, 3], 1.0, 0.0); // batch 1, one channel (burn refuses <= 2 elements)
        compare(1, 7, 7, [5, 3], 1.0, 0.0); // a channel per group
        compare(2, 12, 1, [13, 1], 1.0, 0.0); // one group over everything
        compare(2, 6, 3, [11, 7], 0.01, 0.0); // variance 1e-4: eps 1e-5 matters
        compare(2, 6, 2, [9, 9], 0.5, 3.0); // a mean far from zero
    }

    #[test]
    fn one_element_groups_give_beta() {
        // A group of one element has variance 0: x - mean = 0 whatever eps, so y = beta.
        let y = group_norm_f32_copy(
            &[5.0f32, -3.0],
            2,
            1,
            2,
            1e-5,
            Some((&[2.0, 3.0], &[0.25, -1.5])),
            false,
        );
        assert_eq!(y, [0.25, -1.5]);
    }

    #[test]
    fn gradients_reach_the_input_through_the_module() {
        let device = diffuse_core::device::cpu().autodiff();
        let norm = GroupNormConfig::new(2, 4).init(&device);
        let x = Tensor::<4>::random([1, 4, 3, 3], Distribution::Normal(0.0, 1.0), &device)
            .require_grad();
        let grads = group_norm_module(&norm, x.clone(), true).sum().backward();
        assert!(x.grad(&grads).is_some());
    }
}
