//! The UNet's joins on the CPU: the residual sum `a + b`, the time embedding's sum per channel
//! and the skip connection's channel concatenation. burn-flex runs them on the calling thread
//! while the workers wait (`perf` by thread: a third of the UNet's serial time); here each
//! image's block is one parallel task with the same arithmetic (an f32 addition per element, or
//! a copy), so the same bits. For training the residual sum and the concatenation are custom
//! autodiff operations whose backward is burn's: the sum passes its gradient to both terms, the
//! concatenation splits it by channels. The time embedding's sum stays burn's in training.

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

/// `a + b` for tensors of one shape `[n, ...]` (custom training operation for rank 4 only).
pub fn add<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
    let device = a.device();
    let f32s = a.dtype() == DType::F32 && b.dtype() == DType::F32;
    if !f32s || a.dims() != b.dims() || b.device() != device || D == 0 {
        return a + b;
    }
    if super::fast_path(&device, DType::F32) {
        let block = a.dims()[1..].iter().product::<usize>();
        let Ok(b) = b.try_into_primitive::<Flex>() else {
            unreachable!("fast_path: a tensor on the inference CPU device is a Flex tensor")
        };
        let b = flex_f32(&b);
        return super::map_blocks(a, block, |i, v| {
            for (v, w) in v.iter_mut().zip(&b[i * block..]) {
                *v += w;
            }
        });
    }
    if D == 4 && super::training_path(&device) {
        let dims = a.dims();
        let four = |t: Tensor<D>| t.reshape(to4(dims));
        return match with_strategy(&device, [four(a), four(b)], Join::Add) {
            Ok(y) => y.reshape(dims),
            Err(back) => {
                let [a, b] = *back;
                (a + b).reshape(dims)
            }
        };
    }
    a + b
}

/// The dims of a rank-4 tensor as rank 4 (`D` is 4 where these are called).
fn to4<const D: usize>(d: [usize; D]) -> [usize; 4] {
    let mut out = [1; 4];
    out.copy_from_slice(&d[..4]);
    out
}

/// `h + t` per channel for NCHW `h` and `t` `[n, c]` (a UNet block's time embedding; any other
/// `t` broadcasts as `[.., .., 1, 1]`): each image's planes in a parallel task on an inference
/// CPU device, burn's broadcast sum elsewhere (in training its gradient, a sum over the pixels,
/// stays burn's).
pub fn add_per_channel(h: Tensor<4>, t: Tensor<2>) -> Tensor<4> {
    let [n, c, hh, ww] = h.dims();
    let device = h.device();
    if !(super::fast_path(&device, h.dtype())
        && super::fast_path(&t.device(), t.dtype())
        && t.dims() == [n, c])
    {
        return h + t.unsqueeze_dims::<4>(&[2, 3]);
    }
    let t = super::to_vec(t);
    let plane = hh * ww;
    super::map_blocks(h, c * plane, |i, v| {
        for (p, &s) in v.chunks_mut(plane.max(1)).zip(&t[i * c..(i + 1) * c]) {
            p.iter_mut().for_each(|e| *e += s);
        }
    })
}

/// `Tensor::cat(vec![a, b], 1)` for NCHW tensors of the same batch and size.
pub fn cat_channels(a: Tensor<4>, b: Tensor<4>) -> Tensor<4> {
    let device = a.device();
    let ([n, ca, h, w], [nb, cb, hb, wb]) = (a.dims(), b.dims());
    let f32s = a.dtype() == DType::F32 && b.dtype() == DType::F32;
    // (Empty operands go to burn: the per-image blocks below have a length on each side.)
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
        let y = cat_f32(&flex_f32(&pa), &flex_f32(&pb), n, ca * h * w, cb * h * w);
        return Tensor::from_primitive::<Flex>(flex_from(y, [n, ca + cb, h, w]));
    }
    if super::training_path(&device) {
        return match with_strategy(&device, [a, b], Join::Cat) {
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
/// `la + lb` not 0.
fn cat_f32(a: &[f32], b: &[f32], n: usize, la: usize, lb: usize) -> Vec<f32> {
    let mut y = vec![0f32; 0];
    y.reserve_exact(n * (la + lb));
    y.spare_capacity_mut()[..n * (la + lb)]
        .par_chunks_mut(la + lb)
        .enumerate()
        .for_each(|(i, d)| {
            let (da, db) = d.split_at_mut(la);
            for (d, s) in da.iter_mut().zip(&a[i * la..(i + 1) * la]) {
                d.write(*s);
            }
            for (d, s) in db.iter_mut().zip(&b[i * lb..(i + 1) * lb]) {
                d.write(*s);
            }
        });
    // SAFETY: each of the n chunks of la + lb elements was written whole above.
    unsafe { y.set_len(n * (la + lb)) };
    y
}

/// Image `i`'s first `la` elements of `y` go to the first result, the other `lb` to the second
/// (`la` and `lb` not 0).
fn split_f32(y: &[f32], n: usize, la: usize, lb: usize) -> (Vec<f32>, Vec<f32>) {
    let (mut a, mut b) = (vec![0f32; n * la], vec![0f32; n * lb]);
    a.par_chunks_mut(la)
        .zip(b.par_chunks_mut(lb))
        .zip(y.par_chunks(la + lb))
        .for_each(|((a, b), y)| {
            a.copy_from_slice(&y[..la]);
            b.copy_from_slice(&y[la..]);
        });
    (a, b)
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
) -> Result<Tensor<4>, Pair> {
    match device.gradient_checkpointing_strategy() {
        Some(burn::backend::GradientCheckpointingStrategy::Balanced) => {
            join_with::<BalancedCheckpointing>(t, join)
        }
        _ => join_with::<NoCheckpointing>(t, join),
    }
}

fn join_with<C: CheckpointStrategy>([a, b]: [Tensor<4>; 2], join: Join) -> Result<Tensor<4>, Pair>
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
                let block = da[1..].iter().product::<usize>();
                let y = super::copy_blocks(&a, block, |i, v| {
                    for (v, w) in v.iter_mut().zip(&b[i * block..]) {
                        *v += w;
                    }
                });
                flex_from(y, da)
            }
            Join::Cat => {
                let per = da[2] * da[3];
                let y = cat_f32(&a, &b, da[0], da[1] * per, db[1] * per);
                flex_from(y, [da[0], da[1] + db[1], da[2], da[3]])
            }
        }
    };
    let state = JoinState { join, a: da, b: db };
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
        let JoinState { join, a, b } = ops.state;
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
                let (ga, gb) = split_f32(&flex_f32(&grad), a[0], a[1] * per, b[1] * per);
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
                    let (x, y) = (grad(a.clone()), grad(other.clone()));
                    let got = match what {
                        "cat" => cat_channels(x.clone(), y.clone()),
                        _ => add(x.clone(), y.clone()),
                    };
                    assert_eq!(values(got.clone()), values(want), "{what} {n}x{ca}x{h}x{w}");
                    if !device.is_autodiff() {
                        continue;
                    }
                    let (xr, yr) = (a.clone().require_grad(), other.require_grad());
                    let reference = match what {
                        "cat" => Tensor::cat(vec![xr.clone(), yr.clone()], 1),
                        _ => xr.clone() + yr.clone(),
                    };
                    let g = (got * weight.clone()).sum().backward();
                    let gr = (reference * weight).sum().backward();
                    for (t, tr) in [(&x, &xr), (&y, &yr)] {
                        let (Some(d), Some(dr)) = (t.grad(&g), tr.grad(&gr)) else {
                            panic!("{what}: a gradient is missing")
                        };
                        assert_eq!(values(d), values(dr), "{what} gradient {n}x{ca}x{h}x{w}");
                    }
                }
            }
        }
        // The time embedding's broadcast sum, on odd shapes.
        let device = diffuse_core::device::cpu();
        for (n, c, h, w) in [(1, 1, 1, 1), (2, 3, 7, 5), (3, 16, 4, 9)] {
            let x = Tensor::<4>::random([n, c, h, w], Distribution::Normal(0.0, 1.0), &device);
            let t = Tensor::<2>::random([n, c], Distribution::Normal(0.0, 1.0), &device);
            let want = x.clone() + t.clone().reshape([n, c, 1, 1]);
            assert_eq!(
                values(add_per_channel(x, t)),
                values(want),
                "{n}x{c}x{h}x{w}"
            );
        }
        // Rank 3 (a transformer block's tokens), on both devices.
        for device in [
            diffuse_core::device::cpu(),
            diffuse_core::device::cpu().autodiff(),
        ] {
            let draw = || Tensor::<3>::random([2, 5, 3], Distribution::Normal(0.0, 1.0), &device);
            let (a, b) = (draw(), draw());
            assert_eq!(values(add(a.clone(), b.clone())), values(a + b));
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
}
