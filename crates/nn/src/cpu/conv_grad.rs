//! 2-D convolution for training on the CPU: a custom autodiff operation whose forward is
//! [`conv2d_f32`] and whose backward, for stride 1 and dilation 1 (the 3x3 and 1x1 convolutions
//! that are most of a UNet), reuses the same shifted planes:
//!
//! - the input gradient is the convolution of the output gradient, padded by `k - 1 - pad` on
//!   each side, with the kernel flipped in space and its channel axes swapped;
//! - the weight gradient of kernel row `i` is `G · E_iᵀ`, where `G` is the output gradient on the
//!   padded width (zero in the wrapped columns) and `E_i` the forward's shifted planes read from
//!   offset `i wp`: one gemm per kernel row and image, of depth the image's pixels.
//!
//! burn's own backward (`conv2d_x_backward`, `conv2d_weight_backward`) builds a transposed
//! convolution and an im2col per call; strided or dilated convolutions still use it.

use burn::backend::Autodiff;
use burn::backend::Flex;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ops::ModuleOps;
use burn::tensor::Tensor;
use burn::tensor::ops::ConvOptions;
use rayon::prelude::*;

use super::conv::{COL_BUDGET, Geometry, conv2d_f32, shifted_planes};
use super::{FlexTensor, flex_dims, flex_f32, flex_from};

/// burn's `module::conv2d` on an autodiff CPU device, through the custom operation; `None`
/// (with the tensors given back) when the tensors are not on that device.
pub(crate) fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Tensor<1>,
    options: ConvOptions<2>,
) -> Result<Tensor<4>, Box<(Tensor<4>, Tensor<4>, Tensor<1>)>> {
    match x.device().gradient_checkpointing_strategy() {
        Some(burn::backend::GradientCheckpointingStrategy::Balanced) => {
            conv2d_with::<BalancedCheckpointing>(x, weight, bias, options)
        }
        _ => conv2d_with::<NoCheckpointing>(x, weight, bias, options),
    }
}

fn conv2d_with<C: CheckpointStrategy>(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Tensor<1>,
    options: ConvOptions<2>,
) -> Result<Tensor<4>, Box<(Tensor<4>, Tensor<4>, Tensor<1>)>>
where
    burn::backend::DispatchTensor: burn::backend::DispatchKindConversion<Autodiff<Flex, C>>,
{
    let (xc, wc, bc) = (x.clone(), weight.clone(), bias.clone());
    let (Ok(x), Ok(weight), Ok(bias)) = (
        x.try_into_primitive::<Autodiff<Flex, C>>(),
        weight.try_into_primitive::<Autodiff<Flex, C>>(),
        bias.try_into_primitive::<Autodiff<Flex, C>>(),
    ) else {
        return Err(Box::new((xc, wc, bc)));
    };
    drop((xc, wc, bc));
    let forward = |x: &FlexTensor, w: &FlexTensor, b: &FlexTensor| {
        forward_f32(x.clone(), w.clone(), Some(b.clone()), &options)
    };
    let out = match Conv2dBackward
        .prepare::<C>([x.node(), weight.node(), bias.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let x_state = prep.checkpoint(&x);
            let w_state = prep.checkpoint(&weight);
            let y = forward(x.primitive(), weight.primitive(), bias.primitive());
            prep.finish((x_state, w_state, options.clone()), y)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(forward(x.primitive(), weight.primitive(), bias.primitive()))
        }
    };
    Ok(Tensor::from_primitive::<Autodiff<Flex, C>>(out))
}

/// The sizes of a convolution of `x` `[n, ci, h, w]` with `weight` `[co, ci, kh, kw]`.
fn geometry(x: &[usize; 4], w: &[usize; 4], options: &ConvOptions<2>) -> Geometry {
    let [(top, bottom), (left, right)] = options.padding;
    Geometry {
        ci: x[1],
        h: x[2],
        w: x[3],
        co: w[0],
        kh: w[2],
        kw: w[3],
        stride: options.stride,
        dilation: options.dilation,
        pad: [top, bottom, left, right],
    }
}

fn forward_f32(
    x: FlexTensor,
    w: FlexTensor,
    b: Option<FlexTensor>,
    options: &ConvOptions<2>,
) -> FlexTensor {
    let (xd, wd) = (flex_dims::<4>(&x), flex_dims::<4>(&w));
    let g = geometry(&xd, &wd, options);
    let (oh, ow) = (g.out_h().unwrap_or(0), g.out_w().unwrap_or(0));
    let b = b.as_ref().map(flex_f32);
    let y = conv2d_f32(&flex_f32(&x), xd[0], &flex_f32(&w), b.as_deref(), &g);
    flex_from(y, [xd[0], g.co, oh, ow])
}

#[derive(Debug)]
struct Conv2dBackward;

impl Backward<Flex, 3> for Conv2dBackward {
    type State = (NodeId, NodeId, ConvOptions<2>);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_w, node_b] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x_state, w_state, options) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state);
        let w = checkpointer.retrieve_node_output::<FlexTensor>(w_state);
        let simple = options.stride == [1, 1] && options.dilation == [1, 1];
        let (xd, wd, gd) = (
            flex_dims::<4>(&x),
            flex_dims::<4>(&w),
            flex_dims::<4>(&grad),
        );
        let g = geometry(&xd, &wd, &options);
        let gv = flex_f32(&grad);
        if let Some(node) = node_x {
            let [(top, bottom), (left, right)] = options.padding;
            let dx = if simple && top < g.kh && bottom < g.kh && left < g.kw && right < g.kw {
                // dx = conv(pad(grad, k - 1 - p), flip(w) with ci and co swapped), stride 1.
                let (ci, co, kh, kw) = (g.ci, g.co, g.kh, g.kw);
                let wv = flex_f32(&w);
                let mut w_flip = vec![0f32; wv.len()];
                for (o, w_o) in wv.chunks_exact(ci * kh * kw).enumerate() {
                    for (c, w_oc) in w_o.chunks_exact(kh * kw).enumerate() {
                        for (i, w_oci) in w_oc.chunks_exact(kw).enumerate() {
                            let at = ((c * co + o) * kh + kh - 1 - i) * kw;
                            for (d, &v) in w_flip[at..at + kw].iter_mut().rev().zip(w_oci) {
                                *d = v;
                            }
                        }
                    }
                }
                let gt = geometry(
                    &gd,
                    &[ci, co, kh, kw],
                    &ConvOptions {
                        stride: [1, 1],
                        padding: [
                            (kh - 1 - top, kh - 1 - bottom),
                            (kw - 1 - left, kw - 1 - right),
                        ],
                        dilation: [1, 1],
                        groups: 1,
                    },
                );
                flex_from(conv2d_f32(&gv, gd[0], &w_flip, None, &gt), xd)
            } else {
                Flex::conv2d_x_backward(x.clone(), w.clone(), grad.clone(), options.clone())
            };
            grads.register::<Flex>(node.id, dx);
        }
        if let Some(node) = node_w {
            let dw = if simple {
                flex_from(conv2d_weight_grad_f32(&flex_f32(&x), xd[0], &gv, &g), wd)
            } else {
                Flex::conv2d_weight_backward(x, w, grad.clone(), options)
            };
            grads.register::<Flex>(node.id, dw);
        }
        if let Some(node) = node_b {
            // db[o] = sum over images (in order) of the sum of grad[b, o], one channel per task.
            let (plane, co) = (gd[2] * gd[3], g.co);
            let db: Vec<f32> = (0..co)
                .into_par_iter()
                .map(|o| {
                    (0..gd[0])
                        .map(|b| super::norm::lane_sum(&gv[(b * co + o) * plane..][..plane], |v| v))
                        .fold(0.0, |acc, v| acc + v) as f32
                })
                .collect();
            grads.register::<Flex>(node.id, flex_from(db, [g.co]));
        }
    }
}

/// The gradient `[co, ci, kh, kw]` of a stride-1, dilation-1 convolution's weight, given its
/// `n` NCHW input images `x` and the gradient `grad` `[n, co, oh, ow]` of its output:
/// `dw[o, c, i, j] = Σ_{b, y, x} grad[b, o, y, x] pad[b, c, y + i, x + j]`. Per band of output
/// rows, with `E` the band's shifted planes (as in the forward) and `G` the band's gradient on
/// the padded width (zero in the wrapped columns), kernel row i's block `[co, (c, j)]` is
/// `G E_iᵀ` with `E_i` read from offset `i wp`. The bands are split in a fixed way between the
/// threads and their sums added in order, so the result does not depend on scheduling.
pub(crate) fn conv2d_weight_grad_f32(x: &[f32], n: usize, grad: &[f32], g: &Geometry) -> Vec<f32> {
    assert!(
        g.stride == [1, 1] && g.dilation == [1, 1],
        "conv2d_weight_grad_f32: stride 1 and dilation 1 only"
    );
    let wp = g.padded_width();
    let (oh, ow) = (g.out_h().unwrap_or(0), g.out_w().unwrap_or(0));
    let (ci, co, kh, kw) = (g.ci, g.co, g.kh, g.kw);
    let depth = ci * kw;
    let plane_in = ci * g.h * g.w;
    let plane_out = oh * ow;
    assert_eq!(x.len(), n * plane_in, "conv2d weight grad: input size");
    assert_eq!(
        grad.len(),
        n * co * plane_out,
        "conv2d weight grad: grad size"
    );
    let block = co * depth;
    if n * plane_out == 0 || block * kh == 0 {
        return vec![0.0; co * ci * kh * kw];
    }
    let per_row = (depth + co) * wp;
    let band = (COL_BUDGET.saturating_sub(depth * (kh - 1) * wp) / per_row.max(1)).clamp(1, oh);
    let bands = oh.div_ceil(band);
    let tasks = n * bands;
    let threads = rayon::current_num_threads().clamp(1, tasks);
    let parallelism = if threads == 1 {
        gemm::Parallelism::Rayon(rayon::current_num_threads())
    } else {
        gemm::Parallelism::None
    };
    // acc[i] [(c, j), co] summed over the tasks of one chunk.
    let chunk_sum = |chunk: usize| {
        let mut acc = vec![0f32; kh * block];
        let (mut e, mut gp) = (Vec::new(), Vec::new());
        for task in (chunk * tasks / threads)..((chunk + 1) * tasks / threads) {
            let (b, y0) = (task / bands, (task % bands) * band);
            let rows = band.min(oh - y0);
            let cols = rows * wp;
            let len = (rows + kh - 1) * wp;
            e.resize(depth * len, 0.0);
            shifted_planes(
                &x[b * plane_in..(b + 1) * plane_in],
                g,
                y0,
                rows + kh - 1,
                len,
                g.kw,
                &mut e,
            );
            // G transposed, [cols, co]: gemm's m side (the output channels) at unit stride, so
            // neither operand is packed. With E_i as the m side instead (its rows are len
            // apart), gemm copied all of E into panels for every kernel row: 6% of training.
            gp.resize(cols * co, 0.0);
            let image = &grad[b * co * plane_out..(b + 1) * co * plane_out];
            gradient_by_pixel(image, co, [plane_out, ow, wp], y0, &mut gp[..cols * co]);
            for i in 0..kh {
                // acc_i [(c, j), o] += (G [co, cols] . E_i^T [cols, depth])^T, G[o, q] =
                // gp[q co + o], E_i^T[q, r] = e[r len + i wp + q].
                // SAFETY: acc_i holds depth x co; gp holds cols x co; E's rows hold
                // len >= i wp + cols floats each, with row stride len.
                unsafe {
                    gemm::gemm(
                        co,
                        depth,
                        cols,
                        acc[i * block..].as_mut_ptr(),
                        co as isize,
                        1,
                        true,
                        gp.as_ptr(),
                        co as isize,
                        1,
                        e[i * wp..].as_ptr(),
                        len as isize,
                        1,
                        1.0,
                        1.0,
                        false,
                        false,
                        false,
                        parallelism,
                    );
                }
            }
        }
        acc
    };
    let partial: Vec<Vec<f32>> = (0..threads).into_par_iter().map(chunk_sum).collect();
    let mut dw = vec![0f32; co * ci * kh * kw];
    for acc in &partial {
        // acc[i][(c, j)][o] -> dw[o][c][i][j], by nested loops (divisions per element cost).
        for (i, acc_i) in acc.chunks_exact(block).enumerate() {
            for (cj, acc_icj) in acc_i.chunks_exact(co).enumerate() {
                let (c, j) = (cj / kw, cj % kw);
                for (o, v) in acc_icj.iter().enumerate() {
                    dw[((o * ci + c) * kh + i) * kw + j] += v;
                }
            }
        }
    }
    dw
}

/// Output rows `y0..` of one image's gradient `image` `[co, plane]` (rows of `ow`), transposed
/// into `gp` `[rows wp, co]`: `gp[(yy wp + x) co + o] = image[o plane + (y0 + yy) ow + x]`, and
/// zero in the wrapped columns `ow..wp`. In 8 x 8 blocks transposed in AVX registers where the
/// CPU has AVX (one strided scalar store per element was 3% of a training step).
fn gradient_by_pixel(
    image: &[f32],
    co: usize,
    [plane, ow, wp]: [usize; 3],
    y0: usize,
    gp: &mut [f32],
) {
    let rows = gp.len() / (wp * co).max(1);
    for yy in 0..rows {
        let row = &mut gp[yy * wp * co..(yy + 1) * wp * co];
        row[ow * co..].fill(0.0);
        let src = &image[(y0 + yy) * ow..];
        let mut done = [0, 0];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx") && co >= 8 && ow >= 8 {
            // SAFETY: the CPU has just been asked for AVX.
            done = unsafe { transpose_blocks_avx(src, co, plane, ow, row) };
        }
        // What the blocks left: output channels from done[0], and columns from done[1] of all.
        for x in 0..ow {
            let from = if x < done[1] { done[0] } else { 0 };
            for o in from..co {
                row[x * co + o] = src[o * plane + x];
            }
        }
    }
}

/// The 8 x 8 blocks of [`gradient_by_pixel`]'s row: `row[x co + o] = src[o plane + x]` for `o`
/// and `x` below the returned multiples of 8 (of `co` and `ow`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn transpose_blocks_avx(
    src: &[f32],
    co: usize,
    plane: usize,
    ow: usize,
    row: &mut [f32],
) -> [usize; 2] {
    use std::arch::x86_64::*;
    let (o_end, x_end) = (co / 8 * 8, ow / 8 * 8);
    assert!(src.len() >= (co - 1) * plane + ow && row.len() >= ow * co);
    for o0 in (0..o_end).step_by(8) {
        for x0 in (0..x_end).step_by(8) {
            // SAFETY: rows o0..o0 + 8 < co hold ow >= x0 + 8 floats from o plane (asserted
            // above), and row holds (x0 + 8) co >= (x0 + 7) co + o0 + 8 floats.
            unsafe {
                let at = |k: usize| src.as_ptr().add((o0 + k) * plane + x0);
                let r: [__m256; 8] = std::array::from_fn(|k| _mm256_loadu_ps(at(k)));
                let columns = super::isa::transpose8(r);
                let out = row.as_mut_ptr().add(x0 * co + o0);
                for (k, column) in columns.into_iter().enumerate() {
                    _mm256_storeu_ps(out.add(k * co), column);
                }
            }
        }
    }
    [o_end, x_end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;
    use burn::tensor::module::conv2d as burn_conv2d;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        super::super::to_vec(t)
    }

    /// `|a - b| <= 8 eps sqrt(m) (sqrt(m) + |b|)` for sums of `m` products of O(1) terms in
    /// another order (round-off grows like sqrt(m) times the partial sums, themselves ~sqrt(m)).
    fn assert_close(got: &[f32], want: &[f32], terms: usize, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        let m = (terms as f32).sqrt();
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            let tol = 8.0 * f32::EPSILON * m * (m + b.abs());
            assert!(
                (a - b).abs() <= tol,
                "{what} element {i}: {a} vs burn {b} (tol {tol})"
            );
        }
    }

    /// Output, input gradient, weight gradient and bias gradient of our operation against
    /// burn's autodiff `conv2d`, for the loss `sum(y * r)` with a random `r`.
    fn compare(
        n: usize,
        [ci, co]: [usize; 2],
        [h, w]: [usize; 2],
        k: [usize; 2],
        options: ConvOptions<2>,
    ) {
        let device = diffuse_core::device::cpu().autodiff();
        let x = Tensor::<4>::random([n, ci, h, w], Distribution::Normal(0.0, 1.0), &device);
        let wt = Tensor::<4>::random(
            [co, ci, k[0], k[1]],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let b = Tensor::<1>::random([co], Distribution::Normal(0.0, 1.0), &device);
        // One r for both runs, drawn here: re-seeding the device's generator before each run
        // raced with the tests drawing from it in parallel, so the runs could see different r.
        let dims = burn_conv2d(x.clone(), wt.clone(), Some(b.clone()), options.clone()).dims();
        let r = Tensor::<4>::random(dims, Distribution::Normal(0.0, 1.0), &device);
        let run = |ours: bool| {
            let (x, wt, b) = (
                x.clone().detach().require_grad(),
                wt.clone().detach().require_grad(),
                b.clone().detach().require_grad(),
            );
            let y = if ours {
                let Ok(y) = conv2d(x.clone(), wt.clone(), b.clone(), options.clone()) else {
                    panic!("the custom operation did not take an autodiff CPU tensor")
                };
                y
            } else {
                burn_conv2d(x.clone(), wt.clone(), Some(b.clone()), options.clone())
            };
            let grads = (y.clone() * r.clone()).sum().backward();
            let grad = |t: &Tensor<4>| values(t.grad(&grads).expect("gradient"));
            (
                values(y.inner()),
                grad(&x),
                grad(&wt),
                values(b.grad(&grads).expect("bias gradient")),
            )
        };
        let (y0, dx0, dw0, db0) = run(false);
        let (y1, dx1, dw1, db1) = run(true);
        let shape = format!("{n}x{ci}x{h}x{w} -> {co}, k {k:?}, {options:?}");
        let pixels = y0.len() / (n * co).max(1);
        assert_close(&y1, &y0, ci * k[0] * k[1], &format!("output {shape}"));
        assert_close(
            &dx1,
            &dx0,
            co * k[0] * k[1],
            &format!("input gradient {shape}"),
        );
        assert_close(&dw1, &dw0, n * pixels, &format!("weight gradient {shape}"));
        assert_close(&db1, &db0, n * pixels, &format!("bias gradient {shape}"));
    }

    fn options(stride: usize, pad: [usize; 4]) -> ConvOptions<2> {
        ConvOptions {
            stride: [stride, stride],
            padding: [(pad[0], pad[1]), (pad[2], pad[3])],
            dilation: [1, 1],
            groups: 1,
        }
    }

    #[test]
    fn gradients_match_burns_on_odd_shapes() {
        // The UNet's 3x3 same convolution, its 1x1 skip projection and its strided downsampling
        // (burn's backward, our forward).
        compare(3, [16, 32], [28, 28], [3, 3], options(1, [1, 1, 1, 1]));
        compare(2, [32, 16], [7, 7], [1, 1], options(1, [0; 4]));
        compare(2, [8, 8], [14, 14], [3, 3], options(2, [1, 1, 1, 1]));
        // Batch 1, one channel, prime sizes, asymmetric and no padding, a wide kernel.
        compare(1, [1, 1], [1, 1], [1, 1], options(1, [0; 4]));
        compare(1, [3, 5], [7, 11], [3, 3], options(1, [1, 1, 1, 1]));
        compare(1, [7, 13], [13, 5], [5, 3], options(1, [2, 0, 1, 2]));
        compare(2, [3, 11], [9, 19], [3, 3], options(1, [1, 1, 1, 1])); // 8 x 8 blocks and tails
        compare(2, [5, 3], [6, 9], [3, 3], options(1, [0; 4]));
        // Two bands: 200 rows of 200 pixels with 17 channels exceed COL_BUDGET.
        compare(1, [17, 3], [200, 200], [3, 3], options(1, [1, 1, 1, 1]));
    }

    #[test]
    fn weight_gradient_is_the_same_bytes_on_every_run() {
        // A fixed split of the images between the threads, summed in order: the bytes depend on
        // the thread count only, never on scheduling. One thread and two agree to round-off.
        let device = diffuse_core::device::cpu();
        let normal = Distribution::Normal(0.0, 1.0);
        let x = values(Tensor::<4>::random([5, 4, 9, 9], normal, &device));
        let g = values(Tensor::<4>::random([5, 6, 9, 9], normal, &device));
        let geometry = geometry(&[5, 4, 9, 9], &[6, 4, 3, 3], &options(1, [1, 1, 1, 1]));
        let pool = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("thread pool")
        };
        let two = pool(2);
        let first = two.install(|| conv2d_weight_grad_f32(&x, 5, &g, &geometry));
        for _ in 0..5 {
            assert_eq!(
                two.install(|| conv2d_weight_grad_f32(&x, 5, &g, &geometry)),
                first
            );
        }
        let one = pool(1).install(|| conv2d_weight_grad_f32(&x, 5, &g, &geometry));
        assert_close(&one, &first, 5 * 81, "one thread against two");
    }
}
