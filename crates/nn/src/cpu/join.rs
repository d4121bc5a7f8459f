//! The UNet's joins on the CPU: the residual sum `a + b`, the time embedding's sum per channel
//! and the skip connection's channel concatenation. burn-flex runs them on the calling thread
//! while the workers wait (`perf` by thread: a third of the UNet's serial time); here the
//! result is cut into blocks of [`BLOCK`] elements, one parallel task each, whatever the batch
//! (Stable Diffusion runs one or two images at a time), with the same arithmetic (an f32
//! addition per element, or a copy), so the same bits. For training the residual sum and the
//! concatenation are custom autodiff operations whose backward is burn's: the sum passes its
//! gradient to both terms, the concatenation splits it by channels. The time embedding's sum
//! stays burn's in training.

use burn::backend::Autodiff;
use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::{DType, Tensor};
use rayon::prelude::*;

use super::{FlexTensor, flex_dims, flex_f32, flex_from};

/// Elements per parallel task (128 KB of f32): small enough that one image of Stable
/// Diffusion's UNet is split across the threads, large enough that a task outweighs its
/// scheduling.
const BLOCK: usize = 1 << 15;

/// The size (elements) from which the inference sum runs in parallel blocks.
const SERIAL_ADD: usize = 1 << 21;

/// `a + b` for tensors of one shape `[n, ...]` (custom training operation for rank 4 only).
pub fn add<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
    add_in(a, b, BLOCK, SERIAL_ADD)
}

fn add_in<const D: usize>(a: Tensor<D>, b: Tensor<D>, block: usize, serial: usize) -> Tensor<D> {
    let device = a.device();
    let f32s = a.dtype() == DType::F32 && b.dtype() == DType::F32;
    if !f32s || a.dims() != b.dims() || b.device() != device || D == 0 {
        return a + b;
    }
    // Below `serial` elements burn's own sum (in place, vectorised, on the calling thread) is
    // faster than waking the workers (timed alone on 2 AVX2 cores, 400K-800K elements: 0.04-0.12
    // ms for burn's, up to twice that in blocks); above it the blocks win (2.6M elements, Stable
    // Diffusion's first level at batch 2: 0.41-0.60 ms against 0.62-0.64).
    if super::fast_path(&device, DType::F32) && a.shape().num_elements() >= serial {
        let Ok(b) = b.try_into_primitive::<Flex>() else {
            unreachable!("fast_path: a tensor on the inference CPU device is a Flex tensor")
        };
        let b = flex_f32(&b);
        return super::map_blocks(a, block, |i, v| add_block(v, &b[i * block..]));
    }
    if D == 4 && super::training_path(&device) {
        let dims = a.dims();
        let four = |t: Tensor<D>| t.reshape(to4(dims));
        return match with_strategy(&device, [four(a), four(b)], Join::Add, block) {
            Ok(y) => y.reshape(dims),
            Err(back) => {
                let [a, b] = *back;
                (a + b).reshape(dims)
            }
        };
    }
    a + b
}

/// `v += w`, element by element.
fn add_block(v: &mut [f32], w: &[f32]) {
    for (v, w) in v.iter_mut().zip(w) {
        *v += w;
    }
}

/// The dims of a rank-4 tensor as rank 4 (`D` is 4 where these are called).
fn to4<const D: usize>(d: [usize; D]) -> [usize; 4] {
    let mut out = [1; 4];
    out.copy_from_slice(&d[..4]);
    out
}

/// `h + t` per channel for NCHW `h` and `t` `[n, c]` (a UNet block's time embedding; any other
/// `t` broadcasts as `[.., .., 1, 1]`): whole planes in parallel tasks on an inference CPU
/// device, burn's broadcast sum elsewhere (in training its gradient, a sum over the pixels,
/// stays burn's).
pub fn add_per_channel(h: Tensor<4>, t: Tensor<2>) -> Tensor<4> {
    add_per_channel_in(h, t, BLOCK)
}

fn add_per_channel_in(h: Tensor<4>, t: Tensor<2>, block: usize) -> Tensor<4> {
    let [n, c, hh, ww] = h.dims();
    let device = h.device();
    if !(super::fast_path(&device, h.dtype())
        && super::fast_path(&t.device(), t.dtype())
        && t.dims() == [n, c])
    {
        return h + t.unsqueeze_dims::<4>(&[2, 3]);
    }
    let t = super::to_vec(t);
    // Plane p (image p / c, channel p % c) gets t[p]; a task takes `planes` whole planes.
    let plane = (hh * ww).max(1);
    let planes = (block / plane).max(1);
    super::map_blocks(h, planes * plane, |i, v| {
        for (p, &s) in v.chunks_mut(plane).zip(&t[i * planes..]) {
            p.iter_mut().for_each(|e| *e += s);
        }
    })
}

/// `Tensor::cat(vec![a, b], 1)` for NCHW tensors of the same batch and size.
pub fn cat_channels(a: Tensor<4>, b: Tensor<4>) -> Tensor<4> {
    cat_channels_in(a, b, BLOCK)
}

fn cat_channels_in(a: Tensor<4>, b: Tensor<4>, block: usize) -> Tensor<4> {
    let device = a.device();
    let ([n, ca, h, w], [nb, cb, hb, wb]) = (a.dims(), b.dims());
    let f32s = a.dtype() == DType::F32 && b.dtype() == DType::F32;
    // (Empty operands go to burn's cat, which knows their gradients' shapes.)
    let empty = ca == 0 || cb == 0 || n * h * w == 0;
    if !f32s || empty || [n, h, w] != [nb, hb, wb] || b.device() != device {
        return Tensor::cat(vec![a, b], 1);
    }
    if super::fast_path(&device, DType::F32) {
        let (Ok(pa), Ok(pb)) = (
            a.try_into_primitive::<Flex>(),
            b.try_into_primitive::<Flex>(),
        ) else {
            unreachable!("fast_path: a tensor on the inference CPU device is a Flex tensor")
        };
        let y = cat_f32(
            &flex_f32(&pa),
            &flex_f32(&pb),
            ca * h * w,
            cb * h * w,
            block,
        );
        return Tensor::from_primitive::<Flex>(flex_from(y, [n, ca + cb, h, w]));
    }
    if super::training_path(&device) {
        return match with_strategy(&device, [a, b], Join::Cat, block) {
            Ok(y) => y,
            Err(back) => {
                let [a, b] = *back;
                Tensor::cat(vec![a, b], 1)
            }
        };
    }
    Tensor::cat(vec![a, b], 1)
}

/// Image `i` of the result is image `i` of `a` (`la` elements) then image `i` of `b` (`lb`),
/// written in blocks of `block` elements in parallel.
fn cat_f32(a: &[f32], b: &[f32], la: usize, lb: usize, block: usize) -> Vec<f32> {
    let (per, len, block) = (la + lb, a.len() + b.len(), block.max(1));
    let mut y: Vec<f32> = Vec::with_capacity(len);
    y.spare_capacity_mut()[..len]
        .par_chunks_mut(block)
        .enumerate()
        .for_each(|(k, mut d)| {
            let mut pos = k * block;
            // Each run lies in one image's part of `a` or of `b`, and is never empty:
            // r < la leaves la - r >= 1 elements, else r - la < lb leaves lb - (r - la) >= 1.
            while !d.is_empty() {
                let (i, r) = (pos / per, pos % per);
                let src = if r < la {
                    &a[i * la + r..(i + 1) * la]
                } else {
                    &b[i * lb + r - la..(i + 1) * lb]
                };
                let (run, rest) = d.split_at_mut(src.len().min(d.len()));
                for (d, s) in run.iter_mut().zip(src) {
                    d.write(*s);
                }
                pos += run.len();
                d = rest;
            }
        });
    // SAFETY: the chunks cover the first `len` elements and each was written whole above.
    unsafe { y.set_len(len) };
    y
}

/// Image `i`'s first `la` elements of `y` go to the first result, the other `lb` to the second,
/// each written in blocks of `block` elements in parallel.
fn split_f32(y: &[f32], la: usize, lb: usize, block: usize) -> (Vec<f32>, Vec<f32>) {
    let per = la + lb;
    let n = y.len().checked_div(per).unwrap_or(0);
    (
        strided_gather(y, n * la, la, per, 0, block),
        strided_gather(y, n * lb, lb, per, la, block),
    )
}

/// `len` elements, element `k` being `src[(k / width) * stride + offset + k % width]`: rows of
/// `width` taken at `offset` from rows of `stride`, in blocks of `block` elements in parallel.
fn strided_gather(
    src: &[f32],
    len: usize,
    width: usize,
    stride: usize,
    offset: usize,
    block: usize,
) -> Vec<f32> {
    let block = block.max(1);
    let mut out: Vec<f32> = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(block)
        .enumerate()
        .for_each(|(k, mut d)| {
            let mut pos = k * block;
            // width >= 1 here (len > 0), so each run has r < width: at least one element.
            while !d.is_empty() {
                let (i, r) = (pos / width, pos % width);
                let start = i * stride + offset + r;
                let src = &src[start..start + (width - r).min(d.len())];
                let (run, rest) = d.split_at_mut(src.len());
                for (d, s) in run.iter_mut().zip(src) {
                    d.write(*s);
                }
                pos += run.len();
                d = rest;
            }
        });
    // SAFETY: the chunks cover the first `len` elements and each was written whole above.
    unsafe { out.set_len(len) };
    out
}

/// Which join a custom operation computes.
#[derive(Debug, Clone, Copy)]
enum Join {
    Add,
    Cat,
}

type Pair = Box<[Tensor<4>; 2]>;

fn with_strategy(
    device: &burn::tensor::Device,
    t: [Tensor<4>; 2],
    join: Join,
    block: usize,
) -> Result<Tensor<4>, Pair> {
    match device.gradient_checkpointing_strategy() {
        Some(burn::backend::GradientCheckpointingStrategy::Balanced) => {
            join_with::<BalancedCheckpointing>(t, join, block)
        }
        _ => join_with::<NoCheckpointing>(t, join, block),
    }
}

fn join_with<C: CheckpointStrategy>(
    [a, b]: [Tensor<4>; 2],
    join: Join,
    block: usize,
) -> Result<Tensor<4>, Pair>
where
    burn::backend::DispatchTensor: burn::backend::DispatchKindConversion<Autodiff<Flex, C>>,
{
    let (ac, bc) = (a.clone(), b.clone());
    let (Ok(a), Ok(b)) = (
        a.try_into_primitive::<Autodiff<Flex, C>>(),
        b.try_into_primitive::<Autodiff<Flex, C>>(),
    ) else {
        return Err(Box::new([ac, bc]));
    };
    drop((ac, bc));
    let (da, db) = (flex_dims::<4>(a.primitive()), flex_dims::<4>(b.primitive()));
    let forward = |a: &FlexTensor, b: &FlexTensor| {
        let (a, b) = (flex_f32(a), flex_f32(b));
        match join {
            Join::Add => {
                let y = super::copy_blocks(&a, block, |i, v| add_block(v, &b[i * block..]));
                flex_from(y, da)
            }
            Join::Cat => {
                let per = da[2] * da[3];
                let y = cat_f32(&a, &b, da[1] * per, db[1] * per, block);
                flex_from(y, [da[0], da[1] + db[1], da[2], da[3]])
            }
        }
    };
    let state = JoinState {
        join,
        a: da,
        b: db,
        block,
    };
    let out = match JoinBackward
        .prepare::<C>([a.node(), b.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(state, forward(a.primitive(), b.primitive())),
        OpsKind::UnTracked(prep) => prep.finish(forward(a.primitive(), b.primitive())),
    };
    Ok(Tensor::from_primitive::<Autodiff<Flex, C>>(out))
}

#[derive(Debug, Clone)]
struct JoinState {
    join: Join,
    a: [usize; 4],
    b: [usize; 4],
    block: usize,
}

#[derive(Debug)]
struct JoinBackward;

impl Backward<Flex, 2> for JoinBackward {
    type State = JoinState;

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_a, node_b] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let JoinState { join, a, b, block } = ops.state;
        match join {
            Join::Add => {
                if let Some(node) = node_a {
                    grads.register::<Flex>(node.id, grad.clone());
                }
                if let Some(node) = node_b {
                    grads.register::<Flex>(node.id, grad);
                }
            }
            Join::Cat => {
                let per = a[2] * a[3];
                let (ga, gb) = split_f32(&flex_f32(&grad), a[1] * per, b[1] * per, block);
                if let Some(node) = node_a {
                    grads.register::<Flex>(node.id, flex_from(ga, a));
                }
                if let Some(node) = node_b {
                    grads.register::<Flex>(node.id, flex_from(gb, b));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, TensorData};

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap()
    }

    /// Forward and both gradients equal burn's (bit for bit: the same additions and copies) on
    /// odd shapes, on the inference and the training device, with a weighted sum as the loss.
    #[test]
    fn joins_match_burns_add_and_cat_with_their_gradients() {
        for (n, ca, cb, h, w) in [(1, 1, 1, 1, 1), (2, 3, 5, 7, 1), (3, 16, 13, 5, 11)] {
            for device in [
                diffuse_core::device::cpu(),
                diffuse_core::device::cpu().autodiff(),
            ] {
                let draw = |c: usize| {
                    Tensor::<4>::random([n, c, h, w], Distribution::Normal(0.0, 1.0), &device)
                };
                let (a, b, b2) = (draw(ca), draw(cb), draw(ca));
                let r = Tensor::<4>::random(
                    [n, ca + cb, h, w],
                    Distribution::Normal(0.0, 1.0),
                    &device,
                );
                let ra = r.clone().narrow(1, 0, ca);
                let cases: [(&str, Tensor<4>, Tensor<4>, Tensor<4>); 2] = [
                    (
                        "cat",
                        b.clone(),
                        Tensor::cat(vec![a.clone(), b.clone()], 1),
                        r.clone(),
                    ),
                    ("add", b2.clone(), a.clone() + b2.clone(), ra.clone()),
                ];
                for (what, other, want, weight) in cases {
                    let grad = |t: Tensor<4>| {
                        if device.is_autodiff() {
                            t.require_grad()
                        } else {
                            t
                        }
                    };
                    // The blocks as shipped (one per tensor here), and blocks that cut
                    // images and operands at every place.
                    for block in [BLOCK, 1, 7] {
                        let (x, y) = (grad(a.clone()), grad(other.clone()));
                        let got = match what {
                            "cat" => cat_channels_in(x.clone(), y.clone(), block),
                            _ => add_in(x.clone(), y.clone(), block, 0),
                        };
                        let shape = format!("{n}x{ca}x{h}x{w}, block {block}");
                        assert_eq!(values(got.clone()), values(want.clone()), "{what} {shape}");
                        if !device.is_autodiff() {
                            continue;
                        }
                        let (xr, yr) = (a.clone().require_grad(), other.clone().require_grad());
                        let reference = match what {
                            "cat" => Tensor::cat(vec![xr.clone(), yr.clone()], 1),
                            _ => xr.clone() + yr.clone(),
                        };
                        let g = (got * weight.clone()).sum().backward();
                        let gr = (reference * weight.clone()).sum().backward();
                        for (t, tr) in [(&x, &xr), (&y, &yr)] {
                            let (Some(d), Some(dr)) = (t.grad(&g), tr.grad(&gr)) else {
                                panic!("{what}: a gradient is missing")
                            };
                            assert_eq!(values(d), values(dr), "{what} gradient {shape}");
                        }
                    }
                }
            }
        }
        // The time embedding's broadcast sum, on odd shapes.
        let device = diffuse_core::device::cpu();
        for (n, c, h, w) in [(1, 1, 1, 1), (2, 3, 7, 5), (3, 16, 4, 9)] {
            let x = Tensor::<4>::random([n, c, h, w], Distribution::Normal(0.0, 1.0), &device);
            let t = Tensor::<2>::random([n, c], Distribution::Normal(0.0, 1.0), &device);
            let want = values(x.clone() + t.clone().reshape([n, c, 1, 1]));
            for block in [BLOCK, 1, 7, 40] {
                let got = add_per_channel_in(x.clone(), t.clone(), block);
                assert_eq!(values(got), want, "{n}x{c}x{h}x{w}, block {block}");
            }
        }
        // Rank 3 (a transformer block's tokens), on both devices.
        for device in [
            diffuse_core::device::cpu(),
            diffuse_core::device::cpu().autodiff(),
        ] {
            let draw = || Tensor::<3>::random([2, 5, 3], Distribution::Normal(0.0, 1.0), &device);
            let (a, b) = (draw(), draw());
            let want = values(a.clone() + b.clone());
            for block in [BLOCK, 1, 4] {
                assert_eq!(values(add_in(a.clone(), b.clone(), block, 0)), want);
            }
        }
        // An operand without channels goes to burn's cat, on both devices.
        for device in [
            diffuse_core::device::cpu(),
            diffuse_core::device::cpu().autodiff(),
        ] {
            let a =
                Tensor::<4>::from_data(TensorData::new(Vec::<f32>::new(), [2, 0, 2, 2]), &device);
            let b = Tensor::<4>::from_data(TensorData::new(vec![2f32; 8], [2, 1, 2, 2]), &device);
            assert_eq!(values(cat_channels(a.clone(), b.clone())), [2.0; 8]);
            assert_eq!(values(cat_channels(b, a)), [2.0; 8]);
        }
    }

    /// The concatenation's copy and its gradient's split against the plain per-image loops, for
    /// blocks that start and end anywhere, sides of length zero included.
    #[test]
    fn blocks_cut_anywhere_copy_the_same_elements() {
        for (n, la, lb) in [
            (1, 1, 1),
            (3, 2, 5),
            (4, 7, 3),
            (2, 0, 3),
            (3, 4, 0),
            (5, 1, 13),
        ] {
            let a: Vec<f32> = (0..n * la).map(|v| v as f32).collect();
            let b: Vec<f32> = (0..n * lb).map(|v| -1.0 - v as f32).collect();
            let want: Vec<f32> = (0..n)
                .flat_map(|i| {
                    let (a, b) = (&a[i * la..(i + 1) * la], &b[i * lb..(i + 1) * lb]);
                    a.iter().chain(b).copied()
                })
                .collect();
            for block in [1, 2, 3, 5, 8, 64, BLOCK] {
                let y = cat_f32(&a, &b, la, lb, block);
                assert_eq!(y, want, "cat {n}x({la}+{lb}), block {block}");
                let (ga, gb) = split_f32(&y, la, lb, block);
                assert_eq!((&ga, &gb), (&a, &b), "split {n}x({la}+{lb}), block {block}");
            }
        }
    }
}
