//! 2-D convolution for inference on the CPU: per image, im2col straight from NCHW (row copies,
//! no layout change) and one gemm whose output is the image's NCHW planes, so nothing is
//! scattered afterwards. burn-flex instead converts the whole input to NHWC, builds im2col per
//! 512-pixel tile and scatters each tile's gemm result back, with the output channels (16 to 64
//! in our UNets) as gemm's short side; `perf` of the UNet put a third of sampling there.
//! Grouped convolutions, gradients and other devices go to burn's `conv2d`.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::module::conv2d as burn_conv2d;
use burn::tensor::ops::ConvOptions;
use std::mem::MaybeUninit;

use burn::backend::Flex;
use burn::tensor::{DType, Tensor};
use rayon::prelude::*;

use super::Out;

/// The most f32s an im2col buffer holds (4 MB): larger images are done in bands of rows.
pub(crate) const COL_BUDGET: usize = 1 << 20;

/// `conv.forward(x)` for burn's module, through [`conv2d`].
pub fn conv2d_module(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let (top, left, bottom, right) = match conv.padding {
        PaddingConfig2d::Valid => (0, 0, 0, 0),
        PaddingConfig2d::Explicit(t, l, b, r) => (t, l, b, r),
        PaddingConfig2d::Same => return conv.forward(x), // not used by our models
    };
    let options = ConvOptions {
        stride: conv.stride,
        padding: [(top, bottom), (left, right)],
        dilation: conv.dilation,
        groups: conv.groups,
    };
    conv2d(
        x,
        conv.weight.val(),
        conv.bias.as_ref().map(|b| b.val()),
        options,
    )
}

/// burn's `module::conv2d` (same arguments, same result within float32 round-off), through
/// [`conv2d_f32`] on an inference CPU device for ungrouped convolutions.
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    let device = x.device();
    let [n, ci, h, w] = x.dims();
    let [co, wci, kh, kw] = weight.dims();
    let [(top, bottom), (left, right)] = options.padding;
    let shapes_ok = options.groups == 1
        && wci == ci
        && x.dtype() == DType::F32
        && weight.dtype() == DType::F32
        && bias
            .as_ref()
            .is_none_or(|b| b.dtype() == DType::F32 && b.dims() == [co]);
    let g = Geometry {
        ci,
        h,
        w,
        co,
        kh,
        kw,
        stride: options.stride,
        dilation: options.dilation,
        pad: [top, bottom, left, right],
    };
    let sizes_ok = g.out_h().is_some() && g.out_w().is_some();
    if shapes_ok && sizes_ok && super::training_path(&device) {
        if let Some(bias) = bias {
            return match super::conv_grad::conv2d(x, weight, bias, options.clone()) {
                Ok(y) => y,
                Err(back) => {
                    let (x, weight, bias) = *back;
                    burn_conv2d(x, weight, Some(bias), options)
                }
            };
        }
        return burn_conv2d(x, weight, bias, options);
    }
    if !super::fast_path(&device, x.dtype()) || !shapes_ok {
        return burn_conv2d(x, weight, bias, options);
    }
    let (Some(oh), Some(ow)) = (g.out_h(), g.out_w()) else {
        return burn_conv2d(x, weight, bias, options); // burn says what is wrong with the sizes
    };
    // The tensors' own buffers, read in place.
    let flex = |t: Tensor<4>| match t.try_into_primitive::<Flex>() {
        Ok(p) => p,
        Err(_) => unreachable!("fast_path: a tensor on the inference CPU device is a Flex tensor"),
    };
    let (x, weight) = (flex(x), flex(weight));
    let bias = bias.map(|b| match b.try_into_primitive::<Flex>() {
        Ok(p) => p,
        Err(_) => unreachable!("fast_path: the bias is on the same device"),
    });
    let bias = bias.as_ref().map(super::flex_f32);
    let y = conv2d_f32(
        &super::flex_f32(&x),
        n,
        &super::flex_f32(&weight),
        bias.as_deref(),
        &g,
    );
    Tensor::from_primitive::<Flex>(super::flex_from(y, [n, co, oh, ow]))
}

/// The sizes of a convolution: input `[ci, h, w]` per image, weight `[co, ci, kh, kw]`, padding
/// `[top, bottom, left, right]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub ci: usize,
    pub h: usize,
    pub w: usize,
    pub co: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    pub pad: [usize; 4],
}

impl Geometry {
    fn out(len: usize, pad: usize, k: usize, stride: usize, dilation: usize) -> Option<usize> {
        let span = dilation * (k.max(1) - 1) + 1;
        (stride > 0 && len + pad >= span).then(|| (len + pad - span) / stride + 1)
    }
    /// Output rows.
    pub fn out_h(&self) -> Option<usize> {
        let [t, b, _, _] = self.pad;
        Self::out(self.h, t + b, self.kh, self.stride[0], self.dilation[0])
    }
    /// Output columns.
    pub fn out_w(&self) -> Option<usize> {
        let [_, _, l, r] = self.pad;
        Self::out(self.w, l + r, self.kw, self.stride[1], self.dilation[1])
    }
    /// The row stride of [`shifted_planes`]' padded planes and of the outputs computed on
    /// them: the image's width plus a gap of zeros that serves as the right padding of one row
    /// and the left padding of the next, wide enough that every output column fits in a row
    /// (`ow <= wp`, when a side's padding reaches the kernel's width).
    pub(crate) fn padded_width(&self) -> usize {
        let [_, _, l, r] = self.pad;
        self.w + l.max(r).max((l + r + 1).saturating_sub(self.kw))
    }
    /// A 1x1 convolution that reads every pixel once, in order: the input is its own im2col.
    fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == [1, 1] && self.pad == [0; 4]
    }
}

/// The convolution of `n` NCHW images `x` with `weight` `[co, ci, kh, kw]` (row-major) plus
/// `bias` `[co]`: the NCHW output `[n, co, oh, ow]`, by Winograd where it pays (see
/// [`super::winograd::applies`]) unless the AVX-512 direct tile is faster still (see
/// [`super::direct::outruns_winograd`]), else by the direct kernel in registers where it
/// applies (see [`super::direct::applies`]), else by shifted gemms at stride 1, else by im2col.
/// Panics if the slices do not match `g` (the callers take the sizes from the tensors
/// themselves).
pub fn conv2d_f32(
    x: &[f32],
    n: usize,
    weight: &[f32],
    bias: Option<&[f32]>,
    g: &Geometry,
) -> Vec<f32> {
    let (oh, ow) = (g.out_h().unwrap_or(0), g.out_w().unwrap_or(0));
    let plane_in = g.ci * g.h * g.w;
    let plane_out = oh * ow;
    let k = g.ci * g.kh * g.kw;
    assert_eq!(x.len(), n * plane_in, "conv2d: input size");
    assert_eq!(weight.len(), g.co * k, "conv2d: weight size");
    if let Some(b) = bias {
        assert_eq!(b.len(), g.co, "conv2d: bias size");
    }
    // (An empty kernel, kh or kw 0, is im2col's: a depth-0 gemm, the output is the bias.)
    if super::winograd::applies(g) && !super::direct::outruns_winograd(g) {
        return super::winograd::conv2d_winograd(x, n, weight, bias, g);
    }
    if super::direct::applies(g) {
        return super::direct::conv2d_direct(x, n, weight, bias, g);
    }
    if g.stride == [1, 1] && g.dilation == [1, 1] && !g.is_pointwise() && g.kh > 0 && g.kw > 0 {
        return conv2d_shifted(x, n, weight, bias, g);
    }
    let len = n * g.co * plane_out;
    if len == 0 || k == 0 {
        // Nothing to convolve: the output is the bias.
        let mut y = vec![0f32; len];
        if let Some(b) = bias {
            for (yc, &bc) in y.chunks_mut(plane_out.max(1)).zip(b.iter().cycle()) {
                yc.fill(bc);
            }
        }
        return y;
    }
    // Each task writes its block (the bias first, then gemm adds to it; without a bias gemm
    // overwrites it), so the buffer is neither zeroed nor filled on one thread first.
    let mut y: Vec<f32> = Vec::with_capacity(len);
    // Bands of output rows, so that a band's im2col stays within the budget.
    let band = if g.is_pointwise() {
        oh
    } else {
        (COL_BUDGET / (k * ow).max(1)).clamp(1, oh)
    };
    let bands = oh.div_ceil(band);
    let out = Out(y.as_mut_ptr());
    let run = |col: &mut Vec<f32>, task: usize, parallelism: gemm::Parallelism| {
        let (b, y0) = (task / bands, (task % bands) * band);
        let rows = band.min(oh - y0);
        let image = &x[b * plane_in..(b + 1) * plane_in];
        let cols = rows * ow;
        let rhs: &[f32] = if g.is_pointwise() {
            image
        } else {
            col.resize(k * cols, 0.0);
            im2col(image, g, y0, rows, ow, col);
            col
        };
        if let Some(bias) = bias {
            for (o, &b_o) in bias.iter().enumerate() {
                // SAFETY: rows y0 .. y0 + rows of channel o of image b lie inside `y`'s
                // capacity and belong to this task alone.
                unsafe {
                    std::slice::from_raw_parts_mut(
                        out.at((b * g.co + o) * plane_out + y0 * ow)
                            .cast::<MaybeUninit<f32>>(),
                        cols,
                    )
                }
                .fill(MaybeUninit::new(b_o));
            }
        }
        // y[b, :, y0..y0 + rows, :] (+)= weight [co, k] . rhs [k, cols]
        // SAFETY: the output block lies inside `y` (b < n, y0 + rows <= oh) and no other task
        // writes it (it holds the bias when gemm reads it); the operands hold m x k and k x n
        // elements with the strides given.
        unsafe {
            let dst = out.at(b * g.co * plane_out + y0 * ow);
            gemm::gemm(
                g.co,
                cols,
                k,
                dst,
                1,
                plane_out as isize,
                bias.is_some(),
                weight.as_ptr(),
                1,
                k as isize,
                rhs.as_ptr(),
                1,
                cols as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
    };
    for_each_task(n * bands, run);
    // SAFETY: the tasks (every image, every band of rows) wrote all `len` elements.
    unsafe { y.set_len(len) };
    y
}

/// Runs `run(buffers, task, parallelism)` for each task: with enough tasks for every thread, one
/// task per thread at a time and each gemm serial; otherwise the tasks in order and each gemm
/// over all threads. `buffers` are scratch space reused by the tasks of one thread.
pub(crate) fn for_each_task<B: Default + Send>(
    tasks: usize,
    run: impl Fn(&mut B, usize, gemm::Parallelism) + Sync,
) {
    let threads = rayon::current_num_threads();
    if tasks >= threads {
        (0..tasks)
            .into_par_iter()
            .for_each_init(B::default, |bufs, task| {
                run(bufs, task, gemm::Parallelism::None)
            });
    } else {
        let mut bufs = B::default();
        (0..tasks).for_each(|task| run(&mut bufs, task, gemm::Parallelism::Rayon(threads)));
    }
}

/// Stride 1 and dilation 1 with a third of im2col. Number the output pixels of a band of rows
/// `n = y wp + x` on the padded width `wp`, and let `E[(c, j), q] = pad[c, q + j]` be the band's
/// zero-padded planes (rows `y0 .. y0 + rows + kh - 1`), each shifted left by `j < kw`: then
/// `rhs_i[(c, j), n] = E[(c, j), n + i wp]` is the im2col block of kernel row `i`, read in place
/// from offset `i wp`. So `kh` gemms of depth `ci kw` over `E` (kw copies of the input instead of
/// im2col's kh kw) accumulate the band's output on the padded width; the last `wp - ow` columns
/// of each row (reads that wrapped into the next row) are dropped when the band is copied out
/// with the bias. The pixels stay gemm's contiguous side, so its packing is a plain copy.
fn conv2d_shifted(
    x: &[f32],
    n: usize,
    weight: &[f32],
    bias: Option<&[f32]>,
    g: &Geometry,
) -> Vec<f32> {
    let wp = g.padded_width();
    let (oh, ow) = (g.out_h().unwrap_or(0), g.out_w().unwrap_or(0));
    let (ci, co, kh, kw) = (g.ci, g.co, g.kh, g.kw);
    let plane_in = ci * g.h * g.w;
    let plane_out = oh * ow;
    let depth = ci * kw;
    let len = n * co * plane_out;
    if len == 0 {
        return Vec::new();
    }
    // Every element is written once below (each task copies out its rows of every channel), so
    // the buffer is not zeroed first.
    let mut y: Vec<f32> = Vec::with_capacity(len);
    // lhs of kernel row i: w_i[o, (c, j)] = weight[o, c, i, j].
    // (Nested loops: index arithmetic by division put this serial loop at 1% of training.)
    let mut w_rows = vec![0f32; kh * co * depth];
    for (o, w_o) in weight.chunks_exact(ci * kh * kw).enumerate() {
        for (c, w_oc) in w_o.chunks_exact(kh * kw).enumerate() {
            for (i, w_oci) in w_oc.chunks_exact(kw).enumerate() {
                let at = (i * co + o) * depth + c * kw;
                w_rows[at..at + kw].copy_from_slice(w_oci);
            }
        }
    }
    // Bands of output rows, so that a band's E and its padded-width output stay within budget.
    let per_row = (depth + co) * wp;
    let band = (COL_BUDGET.saturating_sub(depth * (kh - 1) * wp) / per_row.max(1)).clamp(1, oh);
    let bands = oh.div_ceil(band);
    let out = Out(y.as_mut_ptr());
    let run = |(e, acc): &mut (Vec<f32>, Vec<f32>), task: usize, parallelism: gemm::Parallelism| {
        let (b, y0) = (task / bands, (task % bands) * band);
        let rows = band.min(oh - y0);
        // The pixels are gemm's m side at unit stride, read in place only when their count is a
        // multiple of the vector width (else gemm copies E into panels for every call), so the
        // band is computed on a few more columns past its last row, read from zeros.
        let cols = (rows * wp).next_multiple_of(8);
        let len = (rows + kh - 1) * wp + cols - rows * wp;
        e.resize(depth * len, 0.0);
        shifted_planes(
            &x[b * plane_in..(b + 1) * plane_in],
            g,
            y0,
            rows + kh - 1,
            len,
            kw,
            e,
        );
        acc.resize(co * cols, 0.0);
        for i in 0..kh {
            // acc [co, cols] (+)= w_i [co, ci kw] . E[:, i wp .. i wp + cols]
            // SAFETY: acc holds co x cols; w_rows holds kh blocks of co x depth; E's rows hold
            // len = (rows + kh - 1) wp + cols - rows wp >= i wp + cols floats each, with row
            // stride len.
            unsafe {
                gemm::gemm(
                    co,
                    cols,
                    depth,
                    acc.as_mut_ptr(),
                    1,
                    cols as isize,
                    i > 0,
                    w_rows[i * co * depth..].as_ptr(),
                    1,
                    depth as isize,
                    e[i * wp..].as_ptr(),
                    1,
                    len as isize,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    parallelism,
                );
            }
        }
        // SAFETY: rows y0..y0 + rows of image b's planes lie inside `y`'s capacity and belong
        // to this task alone.
        unsafe {
            write_band(
                acc,
                co,
                [cols, wp, rows, ow],
                bias,
                out.at(b * co * plane_out + y0 * ow),
                plane_out,
            );
        }
    };
    for_each_task(n * bands, run);
    // SAFETY: the tasks (every image, every band of rows) wrote all `len` elements.
    unsafe { y.set_len(len) };
    y
}

/// Writes output rows `0..rows` of `co` planes (`plane_out` apart) at `dst` from `acc`, whose
/// channel `o` holds the band on the padded width `wp` at `o cols` (the columns past each row's
/// `ow` dropped), plus the bias. `dims` = `[cols, wp, rows, ow]`.
///
/// # Safety
/// `dst + o plane_out + yy ow` holds `ow` writable floats for each `o < co`, `yy < rows`, which
/// no one else reads or writes meanwhile (they may be uninitialised).
pub(crate) unsafe fn write_band(
    acc: &[f32],
    co: usize,
    [cols, wp, rows, ow]: [usize; 4],
    bias: Option<&[f32]>,
    dst: *mut f32,
    plane_out: usize,
) {
    for o in 0..co {
        let b_o = bias.map_or(0.0, |b| b[o]);
        for yy in 0..rows {
            let src = &acc[o * cols + yy * wp..][..ow];
            // SAFETY: the caller's bounds; written, not read.
            let row = unsafe {
                std::slice::from_raw_parts_mut(
                    dst.add(o * plane_out + yy * ow).cast::<MaybeUninit<f32>>(),
                    ow,
                )
            };
            for (d, s) in row.iter_mut().zip(src) {
                d.write(s + b_o);
            }
        }
    }
}

/// `E[(c, j), q] = pad[c, q + j]` for the `prows` padded rows from output row `y0` (stride 1,
/// dilation 1), where `pad[c, left + r wp + x] = image[c, y0 + r - top, x]` for `x < w`, zero
/// elsewhere (the rows' gaps, `left` leading zeros, outside the image and past the band): the
/// padded plane is built once per channel (`j = 0`) and each shift is one copy of it.
///
/// Adjacent rows share their zero columns: the gap of `wp - w` zeros after a row is the right
/// padding of that row and the left padding of the next, so the padded width is
/// [`Geometry::padded_width`], `w + max(left, right)` for the usual kernels, not
/// `w + left + right`. Output pixel `(y, x)` is computed at `y wp + x`; the `wp - ow` columns
/// past `ow` of each output row are wasted work (a seventh of it at 14 pixels wide with
/// `w + left + right`, half that now).
/// Each plane holds `len >= prows wp` floats, zero past the band; `shifts` planes per channel
/// (`g.kw` for the shifted gemms, 1 for a kernel that reads the taps at offsets).
pub(crate) fn shifted_planes(
    image: &[f32],
    g: &Geometry,
    y0: usize,
    prows: usize,
    len: usize,
    shifts: usize,
    e: &mut [f32],
) {
    let [top, _, left, _] = g.pad;
    let wp = g.padded_width();
    debug_assert!(
        len >= prows * wp,
        "shifted_planes: planes shorter than the band"
    );
    for c in 0..g.ci {
        let plane = &image[c * g.h * g.w..(c + 1) * g.h * g.w];
        let block = &mut e[c * shifts * len..(c + 1) * shifts * len];
        let (padded, rest) = block.split_at_mut(len);
        // Zeros up to each image row's start, then the row (`left + r wp + w <= len`, since
        // the gap after the last row is at least `left`).
        let mut done = 0;
        for r in 0..prows {
            let iy = y0 + r;
            if iy < top || iy - top >= g.h {
                continue;
            }
            let start = left + r * wp;
            padded[done..start].fill(0.0);
            padded[start..start + g.w]
                .copy_from_slice(&plane[(iy - top) * g.w..(iy - top + 1) * g.w]);
            done = start + g.w;
        }
        padded[done..].fill(0.0);
        for (j, d) in (1..shifts).zip(rest.chunks_exact_mut(len)) {
            d[..len - j].copy_from_slice(&padded[j..]);
            d[len - j..].fill(0.0);
        }
    }
}

/// The im2col rows `(c, i, j)` x columns `(y, x)` of output rows `y0..y0 + rows` of one image:
/// `col[(c, i, j), (y, x)] = image[c, y sh + i dh - top, x sw + j dw - left]`, zero outside.
fn im2col(image: &[f32], g: &Geometry, y0: usize, rows: usize, ow: usize, col: &mut [f32]) {
    let [sh, sw] = g.stride;
    let [dh, dw] = g.dilation;
    let [top, _, left, _] = g.pad;
    let cols = rows * ow;
    for c in 0..g.ci {
        let plane = &image[c * g.h * g.w..(c + 1) * g.h * g.w];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let r = (c * g.kh + i) * g.kw + j;
                let dst = &mut col[r * cols..(r + 1) * cols];
                // Output columns x whose input column x sw + j dw - left lies in 0..w.
                let off = j * dw;
                let x_lo = left.saturating_sub(off).div_ceil(sw).min(ow);
                let x_hi = if g.w + left > off {
                    ((g.w + left - off - 1) / sw + 1).min(ow)
                } else {
                    0
                };
                for (yy, d) in dst.chunks_exact_mut(ow).enumerate() {
                    let iy = (y0 + yy) * sh + i * dh;
                    if iy < top || iy - top >= g.h || x_lo >= x_hi {
                        d.fill(0.0);
                        continue;
                    }
                    let src = &plane[(iy - top) * g.w..(iy - top + 1) * g.w];
                    d[..x_lo].fill(0.0);
                    d[x_hi..].fill(0.0);
                    let ix0 = x_lo * sw + off - left;
                    if sw == 1 {
                        d[x_lo..x_hi].copy_from_slice(&src[ix0..ix0 + x_hi - x_lo]);
                    } else {
                        for (e, s) in d[x_lo..x_hi].iter_mut().zip(src[ix0..].iter().step_by(sw)) {
                            *e = *s;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::Distribution;

    /// Our convolution against burn's on the same module and input, for each geometry.
    fn compare(
        n: usize,
        [ci, co]: [usize; 2],
        [h, w]: [usize; 2],
        k: [usize; 2],
        stride: [usize; 2],
        dilation: [usize; 2],
        padding: PaddingConfig2d,
        bias: bool,
    ) {
        let device = diffuse_core::device::cpu();
        let conv = Conv2dConfig::new([ci, co], k)
            .with_stride(stride)
            .with_dilation(dilation)
            .with_padding(padding.clone())
            .with_bias(bias)
            .init(&device);
        let x = Tensor::<4>::random([n, ci, h, w], Distribution::Normal(0.0, 1.0), &device);
        let want = conv.forward(x.clone());
        let got = conv2d_module(&conv, x);
        assert_eq!(got.dims(), want.dims(), "{padding:?} {k:?} {stride:?}");
        let got: Vec<f32> = got.into_data().try_to_vec().unwrap();
        let want: Vec<f32> = want.into_data().try_to_vec().unwrap();
        // Each output sums ci kh kw products of O(1) terms in another order: float32 round-off
        // grows like the square root of the terms' count times 2^-24 per term.
        let terms = (ci * k[0] * k[1]) as f32;
        let tol = 8.0 * terms.sqrt() * f32::EPSILON;
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!(
                (a - b).abs() <= tol * (1.0 + b.abs()),
                "element {i}: {a} vs burn {b} ({n}x{ci}x{h}x{w} -> {co}, k {k:?}, stride {stride:?}, dilation {dilation:?}, {padding:?})"
            );
        }
    }

    #[test]
    fn matches_burns_convolution_on_odd_shapes() {
        use PaddingConfig2d::{Explicit, Valid};
        // The UNets' shapes: 3x3 same, strided 3x3 downsampling, 1x1.
        compare(
            3,
            [16, 32],
            [28, 28],
            [3, 3],
            [1, 1],
            [1, 1],
            Explicit(1, 1, 1, 1),
            true,
        );
        compare(
            2,
            [32, 32],
            [14, 14],
            [3, 3],
            [2, 2],
            [1, 1],
            Explicit(1, 1, 1, 1),
            true,
        );
        compare(2, [32, 96], [7, 7], [1, 1], [1, 1], [1, 1], Valid, true);
        // Batch 1, prime and SIMD-unfriendly sizes, no bias.
        compare(1, [1, 1], [1, 1], [1, 1], [1, 1], [1, 1], Valid, false);
        compare(
            1,
            [3, 5],
            [7, 11],
            [3, 3],
            [1, 1],
            [1, 1],
            Explicit(1, 1, 1, 1),
            false,
        );
        compare(
            1,
            [7, 13],
            [13, 5],
            [5, 3],
            [1, 1],
            [1, 1],
            Explicit(2, 1, 1, 0),
            true,
        );
        // Stride and dilation on both axes, asymmetric padding, a kernel wider than tall.
        compare(
            2,
            [5, 3],
            [17, 19],
            [3, 5],
            [2, 3],
            [1, 1],
            Explicit(0, 2, 3, 1),
            true,
        );
        compare(
            2,
            [3, 7],
            [17, 19],
            [3, 3],
            [1, 2],
            [2, 3],
            Explicit(2, 2, 3, 3),
            true,
        );
        compare(1, [2, 3], [9, 9], [3, 3], [3, 3], [1, 1], Valid, true);
        // Padding larger than the kernel reach: rows and columns of zeros only.
        compare(
            1,
            [2, 2],
            [3, 3],
            [1, 1],
            [1, 1],
            [1, 1],
            Explicit(2, 2, 2, 2),
            true,
        );
        // A 1x1 with stride (not pointwise): im2col does the subsampling.
        compare(2, [4, 6], [9, 8], [1, 1], [2, 2], [1, 1], Valid, true);
    }

    #[test]
    fn large_images_go_in_bands_and_agree() {
        use PaddingConfig2d::Explicit;
        // im2col (stride 2): 64 x 9 x 200 = 115,200 f32 per output row, so the 2^20 budget takes
        // 9 rows a band and 40 rows make 5 bands (the last of 4 rows), each its own task.
        compare(
            1,
            [64, 8],
            [80, 400],
            [3, 3],
            [2, 2],
            [1, 1],
            Explicit(1, 1, 1, 1),
            true,
        );
        // Shifted gemms (stride 1): (2 x 3 shifted planes + 64 channels) x 202 padded columns per
        // output row, so 73 rows a band and 200 rows make 3 bands (the last of 54 rows).
        compare(
            1,
            [2, 64],
            [200, 200],
            [3, 3],
            [1, 1],
            [1, 1],
            Explicit(1, 1, 1, 1),
            true,
        );
    }

    #[test]
    fn an_empty_kernel_gives_the_bias_without_panicking() {
        let g = Geometry {
            ci: 2,
            h: 3,
            w: 4,
            co: 2,
            kh: 0,
            kw: 3,
            stride: [1, 1],
            dilation: [1, 1],
            pad: [1, 1, 1, 1],
        };
        let y = conv2d_f32(&[1.0; 24], 1, &[], Some(&[0.5, -2.0]), &g);
        let plane = g.out_h().unwrap_or(0) * g.out_w().unwrap_or(0);
        assert_eq!(y.len(), 2 * plane);
        assert!(y[..plane].iter().all(|&v| v == 0.5) && y[plane..].iter().all(|&v| v == -2.0));
    }
}
