//! Direct stride-1 convolution in AVX2 registers: each output tile of 6 pixels x 16 channels
//! is summed over every input channel and every kernel tap before it is stored, reading the
//! image's zero-padded planes in place at each tap's offset.
//!
//! The shifted gemms of [`super::conv`] build `kw` shifted copies of the input and make `kh`
//! gemm calls of depth `ci kw`, each reading and writing the whole output: at 16 and 32
//! channels (the pixel UNets) the copies, the output's round trips, gemm's per-call set-up and
//! its edge kernels (16 or 32 output channels are not multiples of its 6) cost a fifth of the
//! time. Here each step of the sum is 2 loads of 8 weights (packed per tile, in the order the
//! sum reads them), 6 broadcast pixels and 12 fused multiply-adds; a tile is stored once, pixel
//! by pixel, and each row of the band goes into the output planes through an 8 x 8 transpose
//! with the bias.
//!
//! Where the CPU has AVX-512 a second tile puts the pixels in the lanes: 3 vectors of 16
//! consecutive pixels read from the planes at each tap's offset, 8 output channels whose weights
//! are broadcast from memory, 24 accumulators; its rows are stored channel by channel as they
//! lie in the output, so no transpose. At the UNets' and Stable Diffusion's 3x3 shapes it ran
//! 1.34 to 1.81 times the AVX2 tile's speed (1 input channel: 0.97).
//!
//! Every output sums its `ci kh kw` products in the same order (input channel, kernel row,
//! kernel column), one fused multiply-add at a time, whatever the tile, the batch, the band or
//! the thread, so the bits do not depend on them.

use rayon::prelude::*;

use super::Out;
use super::conv::{COL_BUDGET, Geometry, for_each_task, shifted_planes, write_band};

/// Output channels per tile.
const CO_TILE: usize = 16;
/// Pixels per tile (with two vectors of 8 channels: 12 accumulators of AVX2's 16 registers).
const PX_TILE: usize = 6;
/// Output channels per AVX-512 tile, whose vectors hold 16 consecutive pixels of one channel.
const CO_TILE_512: usize = 8;
/// Vectors of 16 pixels per AVX-512 tile (8 channels x 3 vectors: 24 of its 32 registers).
const VEC_TILE_512: usize = 3;

/// Which tile computes the sums. Both sum every output in the same order, one fused
/// multiply-add at a time, so they give the same bits (tested).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kernel {
    /// 6 pixels x 16 channels: each step 2 weight vectors, 6 broadcast pixels, 12 FMA.
    Avx2,
    /// 48 pixels x 8 channels, pixels in the lanes: each step 3 pixel vectors read from the
    /// plane, 8 weights broadcast from memory, 24 FMA, and the tile stores its channels' rows
    /// as they lie in the output (no transpose).
    Avx512,
}

impl Kernel {
    /// The best tile this CPU runs (the caller has checked AVX2 and FMA).
    fn best() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Kernel::Avx512;
        }
        Kernel::Avx2
    }

    /// Output channels per tile.
    fn co_tile(self) -> usize {
        match self {
            Kernel::Avx2 => CO_TILE,
            Kernel::Avx512 => CO_TILE_512,
        }
    }
}

/// Whether [`conv2d_direct`] computes `g` on this CPU: stride 1, dilation 1, a kernel larger
/// than 1x1, output channels in whole tiles of 16 (a partial tile wastes its lanes: 8 output
/// channels ran at 0.81 of the shifted gemms' speed, 1 and 3 at 0.4), and AVX2 with FMA. On
/// geometry alone, so the bits never depend on the batch. Measured faster than the shifted
/// gemms at every such shape timed, from 1 to 1280 input channels (see the README's speed
/// section); [`super::winograd::applies`] is asked first.
pub(crate) fn applies(g: &Geometry) -> bool {
    let shape = g.stride == [1, 1]
        && g.dilation == [1, 1]
        && g.kh > 0
        && g.kw > 0
        && g.kh * g.kw > 1
        && g.ci > 0
        && g.co > 0
        && g.co.is_multiple_of(CO_TILE);
    shape && has_avx2_fma()
}

/// Whether the AVX-512 tile computes `g` faster than Winograd, where both apply: with few
/// channels (harmonic mean `2 ci co / (ci + co)` at most 64) or a small output (shorter side at
/// most 16), where Winograd's transforms and its many small gemms cost more than the 2.25
/// times fewer multiplications save. Measured on the Ice Lake Xeon (Winograd's time / the
/// tile's, channels at side): 2.2 (32 at 64, 64 at 32), 1.1 (64 at 64), 1.0 (64 at 128), 1.4
/// (32 at 256), 1.7 to 1.8 (128 and 256 at 16), 1.2 (1280 at 16), 0.94 (640 at 16); Winograd
/// stays where it is faster: 0.84 to 0.87 (96 at 64, 128 and 192 at 32), 0.5 to 0.8 (256 to
/// 640 at 32 to 256, 128 at 256). The rule's two misses: 128 at 64 (the tile 1.1 times faster,
/// left to Winograd) and 640 at 16 (Winograd 1.06 times faster). On geometry alone.
pub(crate) fn outruns_winograd(g: &Geometry) -> bool {
    let side = g.out_h().unwrap_or(0).min(g.out_w().unwrap_or(0));
    let c = 2 * g.ci * g.co / (g.ci + g.co).max(1);
    applies(g) && Kernel::best() == Kernel::Avx512 && (c <= 64 || side <= 16)
}

fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The convolution of `n` NCHW images `x` with `weight` `[co, ci, kh, kw]` plus `bias`, as
/// [`super::conv::conv2d_f32`] returns it; the caller has checked the slices' sizes and
/// [`applies`].
pub(crate) fn conv2d_direct(
    x: &[f32],
    n: usize,
    weight: &[f32],
    bias: Option<&[f32]>,
    g: &Geometry,
) -> Vec<f32> {
    conv2d_with(Kernel::best(), x, n, weight, bias, g)
}

/// [`conv2d_direct`] with the given tile (the CPU has its instructions).
fn conv2d_with(
    kernel: Kernel,
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
    let len = n * co * plane_out;
    if len == 0 {
        return Vec::new();
    }
    let taps = kh * kw;
    // w_packed[t, c, i, j, o'] = weight[t co_tile + o', c, i, j]: one tile's weights in the
    // order the sum reads them, co_tile at a time.
    // (In parallel: at 1280 channels there are 15M of them.)
    let co_tile = kernel.co_tile();
    let tiles_co = co.div_ceil(co_tile);
    let per_tile = ci * taps * co_tile;
    let mut w_packed = vec![0f32; tiles_co * per_tile];
    w_packed
        .par_chunks_mut(per_tile)
        .zip(weight.par_chunks(co_tile * ci * taps))
        .for_each(|(dst, w_t)| {
            for (o_, w_o) in w_t.chunks_exact(ci * taps).enumerate() {
                for (d, &v) in dst[o_..].iter_mut().step_by(co_tile).zip(w_o) {
                    *d = v;
                }
            }
        });
    let co_pad = tiles_co * co_tile;
    // Bands of output rows, so that a band's padded planes and its output stay within budget.
    let per_row = (ci + co_pad) * wp;
    let band = (COL_BUDGET.saturating_sub(ci * (kh - 1) * wp) / per_row.max(1)).clamp(1, oh);
    // And at least one task per thread, so that a single image (one picture sampled without
    // guidance, a small VAE decode) is not left to one thread: a band's size enters no sum.
    let band = band.min(oh.div_ceil(rayon::current_num_threads().div_ceil(n)));
    let bands = oh.div_ceil(band);
    let mut y: Vec<f32> = Vec::with_capacity(len);
    let out = Out(y.as_mut_ptr());
    let run = |(e, acc): &mut (Vec<f32>, Vec<f32>), task: usize, _: gemm::Parallelism| {
        let (b, y0) = (task / bands, (task % bands) * band);
        let rows = band.min(oh - y0);
        // Output pixel (y, x) of the band is computed at y wp + x; the tiles run past the
        // band's last row into zeros.
        let px_step = match kernel {
            Kernel::Avx2 => PX_TILE,
            Kernel::Avx512 => 16,
        };
        let cols = (rows * wp).next_multiple_of(px_step);
        let plane_len = (kh - 1) * wp + (kw - 1) + cols;
        e.resize(ci * plane_len, 0.0);
        // One padded plane per channel (no shifted copies: the taps read at offsets).
        shifted_planes(
            &x[b * plane_in..(b + 1) * plane_in],
            g,
            y0,
            rows + kh - 1,
            plane_len,
            1,
            e,
        );
        acc.resize(co_pad * cols, 0.0);
        match kernel {
            Kernel::Avx2 => {
                for t in 0..tiles_co {
                    for p0 in (0..cols).step_by(PX_TILE) {
                        // SAFETY: the planes hold ci x plane_len floats and every tap reads at
                        // most (kh - 1) wp + (kw - 1) + p0 + PX_TILE <= plane_len into a plane;
                        // the tile's weights are per_tile floats; acc holds cols rows of co_pad
                        // floats and the tile writes channels t CO_TILE .. (t + 1) CO_TILE of
                        // rows p0 .. p0 + PX_TILE.
                        unsafe {
                            tile(
                                e.as_ptr().add(p0),
                                plane_len,
                                wp,
                                ci,
                                kh,
                                kw,
                                w_packed.as_ptr().add(t * per_tile),
                                acc.as_mut_ptr().add(p0 * co_pad + t * CO_TILE),
                                co_pad,
                            );
                        }
                    }
                }
                // Out of the tiles' pixel-major order into the image's planes, row by row.
                for yy in 0..rows {
                    let src = &acc[yy * wp * co_pad..][..ow * co_pad];
                    // SAFETY: row y0 + yy of channels 0..co of image b lie inside `y`'s
                    // capacity, `ow` floats each, `plane_out` apart, and belong to this task
                    // alone.
                    unsafe {
                        transpose_out(
                            src,
                            co,
                            co_pad,
                            ow,
                            bias,
                            out.at(b * co * plane_out + (y0 + yy) * ow),
                            plane_out,
                        );
                    }
                }
            }
            Kernel::Avx512 => {
                let vectors = cols / 16;
                for t in 0..tiles_co {
                    for v0 in (0..vectors).step_by(VEC_TILE_512) {
                        let args = (
                            // SAFETY: as for the AVX2 tile, with 16 (v0 + vecs) <= cols pixels
                            // read past each tap's offset; acc holds co_pad planes of cols
                            // floats (channel-major) and the tile writes channels
                            // t CO_TILE_512 .. (t + 1) CO_TILE_512, pixels 16 v0 .. 16 (v0 +
                            // vecs).
                            unsafe { e.as_ptr().add(16 * v0) },
                            unsafe { w_packed.as_ptr().add(t * per_tile) },
                            unsafe { acc.as_mut_ptr().add(t * CO_TILE_512 * cols + 16 * v0) },
                        );
                        let dims = [plane_len, wp, ci, kh, kw, cols];
                        // SAFETY: the CPU has AVX-512F (Kernel::best); the bounds above.
                        unsafe {
                            match vectors - v0 {
                                1 => tile512::<1>(args.0, args.1, args.2, dims),
                                2 => tile512::<2>(args.0, args.1, args.2, dims),
                                _ => tile512::<3>(args.0, args.1, args.2, dims),
                            }
                        }
                    }
                }
                // The channels' rows as they lie in the output, without the columns past each
                // row, plus the bias.
                // SAFETY: rows y0..y0 + rows of image b's planes lie inside `y`'s capacity and
                // belong to this task alone.
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
            }
        }
    };
    for_each_task(n * bands, run);
    // SAFETY: the tasks (every image, every band of rows) wrote all `len` elements.
    unsafe { y.set_len(len) };
    y
}

/// `dst[o * stride + x] = src[x * co_pad + o] + bias[o]` for `o < co`, `x < ow`: a row of
/// pixel-major tiles written into `co` planes, eight pixels by eight channels at a time through
/// an in-register transpose where the CPU has AVX2.
///
/// # Safety
/// `dst + o stride` holds `ow` writable floats for each `o < co`; `co_pad` is a multiple of 16.
unsafe fn transpose_out(
    src: &[f32],
    co: usize,
    co_pad: usize,
    ow: usize,
    bias: Option<&[f32]>,
    dst: *mut f32,
    stride: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU has AVX2; the caller's bounds.
        return unsafe { transpose_out_avx2(src, co, co_pad, ow, bias, dst, stride) };
    }
    for o in 0..co {
        let b_o = bias.map_or(0.0, |b| b[o]);
        for x in 0..ow {
            // SAFETY: o < co, x < ow.
            unsafe { *dst.add(o * stride + x) = src[x * co_pad + o] + b_o };
        }
    }
}

/// [`transpose_out`] in blocks of eight pixels by eight channels (the last pixels and channels
/// in a partial block).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn transpose_out_avx2(
    src: &[f32],
    co: usize,
    co_pad: usize,
    ow: usize,
    bias: Option<&[f32]>,
    dst: *mut f32,
    stride: usize,
) {
    use std::arch::x86_64::*;
    for o0 in (0..co).step_by(8) {
        let lanes = 8.min(co - o0);
        let mut bv = [0f32; 8];
        if let Some(bias) = bias {
            bv[..lanes].copy_from_slice(&bias[o0..o0 + lanes]);
        }
        for x0 in (0..ow).step_by(8) {
            let count = 8.min(ow - x0);
            // r[p] = channels o0..o0 + 8 of pixel x0 + p (zero past the row).
            let r: [__m256; 8] = std::array::from_fn(|p| {
                let at = (x0 + p) * co_pad + o0;
                if p < count {
                    // SAFETY: at + 8 <= ow co_pad, since x0 + p < ow and o0 + 8 <= co_pad.
                    unsafe { _mm256_loadu_ps(src.as_ptr().add(at)) }
                } else {
                    _mm256_setzero_ps()
                }
            });
            // c[k] = channel o0 + k of pixels x0..x0 + 8.
            let c = super::isa::transpose8(r);
            // The row's last block stores its first `count` lanes only, through a mask (a
            // copy through memory cost a `memcpy` call per channel: 3% of the UNet's training).
            let mask = _mm256_cmpgt_epi32(
                _mm256_set1_epi32(count as i32),
                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
            );
            for (k, c_k) in c.iter().enumerate().take(lanes) {
                let v = _mm256_add_ps(*c_k, _mm256_set1_ps(bv[k]));
                let at = (o0 + k) * stride + x0;
                if count == 8 {
                    // SAFETY: channel o0 + k < co, pixels x0..x0 + 8 <= ow.
                    unsafe { _mm256_storeu_ps(dst.add(at), v) };
                } else {
                    // SAFETY: channel o0 + k < co; the mask writes pixels x0..x0 + count = ow
                    // only (masked-off lanes are neither written nor faulted).
                    unsafe { _mm256_maskstore_ps(dst.add(at), mask, v) };
                }
            }
        }
    }
}

/// One tile: `out[p, o] = sum_{c, i, j} planes[c, p + i wp + j] w[c, i, j, o]` for `p < 6`,
/// `o < 16`, `out` rows `stride` apart.
///
/// # Safety
/// The CPU has AVX2 and FMA; `planes` holds `ci` planes of `plane_len` floats from which every
/// read (at most `(kh - 1) wp + kw - 1 + 6` past a plane's start) stays inside; `w` holds
/// `ci kh kw 16` floats; `out` six rows of 16 writable floats, `stride` apart.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile(
    planes: *const f32,
    plane_len: usize,
    wp: usize,
    ci: usize,
    kh: usize,
    kw: usize,
    w: *const f32,
    out: *mut f32,
    stride: usize,
) {
    use std::arch::x86_64::*;
    let mut a = [[_mm256_setzero_ps(); 2]; PX_TILE];
    let mut wq = w;
    for c in 0..ci {
        // SAFETY (all the pointer arithmetic below): within the bounds the caller promised.
        let plane = unsafe { planes.add(c * plane_len) };
        for i in 0..kh {
            let row = unsafe { plane.add(i * wp) };
            for j in 0..kw {
                let s = unsafe { row.add(j) };
                let w0 = unsafe { _mm256_loadu_ps(wq) };
                let w1 = unsafe { _mm256_loadu_ps(wq.add(8)) };
                for (p, a_p) in a.iter_mut().enumerate() {
                    let x = unsafe { _mm256_broadcast_ss(&*s.add(p)) };
                    a_p[0] = _mm256_fmadd_ps(w0, x, a_p[0]);
                    a_p[1] = _mm256_fmadd_ps(w1, x, a_p[1]);
                }
                wq = unsafe { wq.add(CO_TILE) };
            }
        }
    }
    for (p, a_p) in a.iter().enumerate() {
        unsafe { _mm256_storeu_ps(out.add(p * stride), a_p[0]) };
        unsafe { _mm256_storeu_ps(out.add(p * stride + 8), a_p[1]) };
    }
}

/// One AVX-512 tile: `out[o, p] = sum_{c, i, j} planes[c, p + i wp + j] w[c, i, j, o]` for
/// `o < 8`, `p < 16 V`, `out` rows `stride` apart; `dims` = `[plane_len, wp, ci, kh, kw,
/// stride]`. Each output is the same chain of fused multiply-adds as in [`tile`].
///
/// # Safety
/// The CPU has AVX-512F; `planes` holds `ci` planes of `plane_len` floats from which every read
/// (at most `(kh - 1) wp + kw - 1 + 16 V` past a plane's start) stays inside; `w` holds
/// `ci kh kw 8` floats; `out` eight rows of `16 V` writable floats, `stride` apart.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile512<const V: usize>(
    planes: *const f32,
    w: *const f32,
    out: *mut f32,
    [plane_len, wp, ci, kh, kw, stride]: [usize; 6],
) {
    use std::arch::x86_64::*;
    let mut a = [[_mm512_setzero_ps(); V]; CO_TILE_512];
    let mut wq = w;
    for c in 0..ci {
        // SAFETY (all the pointer arithmetic below): within the bounds the caller promised.
        let plane = unsafe { planes.add(c * plane_len) };
        for i in 0..kh {
            let row = unsafe { plane.add(i * wp) };
            for j in 0..kw {
                let s = unsafe { row.add(j) };
                let x: [__m512; V] =
                    std::array::from_fn(|v| unsafe { _mm512_loadu_ps(s.add(16 * v)) });
                for (o, a_o) in a.iter_mut().enumerate() {
                    let w_o = _mm512_set1_ps(unsafe { *wq.add(o) });
                    for (a_ov, x_v) in a_o.iter_mut().zip(&x) {
                        *a_ov = _mm512_fmadd_ps(*x_v, w_o, *a_ov);
                    }
                }
                wq = unsafe { wq.add(CO_TILE_512) };
            }
        }
    }
    for (o, a_o) in a.iter().enumerate() {
        for (v, a_ov) in a_o.iter().enumerate() {
            unsafe { _mm512_storeu_ps(out.add(o * stride + 16 * v), *a_ov) };
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn tile512<const V: usize>(_: *const f32, _: *const f32, _: *mut f32, _: [usize; 6]) {
    unreachable!("applies() is false without x86_64")
}

#[cfg(not(target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
unsafe fn tile(
    _: *const f32,
    _: usize,
    _: usize,
    _: usize,
    _: usize,
    _: usize,
    _: *const f32,
    _: *mut f32,
    _: usize,
) {
    unreachable!("applies() is false without x86_64")
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{assert_batch_independent, reference, values};
    use super::*;

    fn geometry(ci: usize, co: usize, [h, w]: [usize; 2], [kh, kw]: [usize; 2]) -> Geometry {
        Geometry {
            ci,
            h,
            w,
            co,
            kh,
            kw,
            stride: [1, 1],
            dilation: [1, 1],
            pad: [kh / 2, kh / 2, kw / 2, kw / 2],
        }
    }

    /// `conv2d_direct` against the float64 sum: each output is one chain of `ci kh kw` fused
    /// multiply-adds and one addition of the bias, each rounding once, so it is within
    /// `(ci kh kw + 1) eps/2` of the terms' magnitudes (and far inside, in practice).
    fn check(n: usize, g: Geometry, bias: bool) {
        if !has_avx2_fma() {
            return; // the kernel needs them; applies() is false on such a CPU
        }
        let x = values(n * g.ci * g.h * g.w, 1 + (g.ci * g.h) as u64);
        let wt = values(g.co * g.ci * g.kh * g.kw, 2 + g.co as u64);
        let b = bias.then(|| values(g.co, 3));
        let (want, mag) = reference(&x, n, &wt, b.as_deref(), &g);
        let terms = (g.ci * g.kh * g.kw + 1) as f64;
        let bound = terms * f64::from(f32::EPSILON) / 2.0;
        let mut first: Option<Vec<f32>> = None;
        for kernel in kernels() {
            let got = conv2d_with(kernel, &x, n, &wt, b.as_deref(), &g);
            assert_eq!(got.len(), want.len(), "{kernel:?} {g:?}");
            let mut worst = 0f64;
            for (i, ((a, b), m)) in got.iter().zip(&want).zip(&mag).enumerate() {
                let err = (f64::from(*a) - b).abs();
                assert!(
                    err <= bound * m.max(f64::MIN_POSITIVE),
                    "{kernel:?} element {i}: {a} vs {b} (terms {m}; {n} x {g:?})"
                );
                worst = worst.max(err / m.max(1e-30));
            }
            assert!(worst < 8.0 * f64::from(f32::EPSILON), "worst {worst:e}");
            // Every tile sums in the same order: the same bits.
            match &first {
                None => first = Some(got),
                Some(f) => assert!(
                    f.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{kernel:?} differs from the AVX2 tile's bits: {n} x {g:?}"
                ),
            }
        }
    }

    /// The tiles this CPU runs (the AVX2 one first).
    fn kernels() -> Vec<Kernel> {
        let mut all = vec![Kernel::Avx2];
        if Kernel::best() == Kernel::Avx512 {
            all.push(Kernel::Avx512);
        }
        all
    }

    #[test]
    fn matches_the_direct_sum_on_odd_shapes() {
        // The pixel UNet's 3x3 same convolutions, and its first (one input channel).
        check(2, geometry(16, 16, [28, 28], [3, 3]), true);
        check(3, geometry(32, 32, [7, 7], [3, 3]), true);
        check(2, geometry(1, 16, [28, 28], [3, 3]), true);
        // Batch 1, prime channel counts (a partial tile of output channels), odd and tiny
        // images: one pixel, one row, one column, fewer pixels than a tile.
        check(1, geometry(13, 17, [5, 7], [3, 3]), false);
        check(1, geometry(7, 16, [1, 1], [3, 3]), true);
        check(1, geometry(3, 32, [1, 17], [3, 3]), true);
        check(1, geometry(5, 16, [19, 1], [3, 3]), true);
        check(1, geometry(2, 5, [2, 3], [3, 3]), true);
        // Other kernels: 5x5, 1x3, 3x1, 2x2 (even: the padding is one-sided).
        check(2, geometry(4, 16, [9, 11], [5, 5]), true);
        check(1, geometry(6, 16, [8, 9], [1, 3]), true);
        check(1, geometry(6, 16, [8, 9], [3, 1]), true);
        check(1, geometry(6, 16, [8, 9], [2, 2]), true);
        // No padding, asymmetric padding, padding past the kernel's reach.
        let pad = |pad, g: Geometry| Geometry { pad, ..g };
        check(2, pad([0, 0, 0, 0], geometry(9, 16, [9, 12], [3, 3])), true);
        check(
            1,
            pad([0, 2, 2, 0], geometry(10, 16, [6, 11], [3, 3])),
            true,
        );
        check(1, pad([3, 2, 0, 3], geometry(8, 16, [3, 4], [3, 3])), false);
    }

    #[test]
    fn large_images_go_in_bands_and_agree() {
        // (16 + 16) x 201 floats a row: 163 rows a band, two bands.
        check(1, geometry(16, 16, [200, 200], [3, 3]), true);
    }

    #[test]
    fn the_batch_does_not_change_the_bits() {
        if !has_avx2_fma() {
            return;
        }
        for g in [
            geometry(16, 16, [200, 200], [3, 3]),
            geometry(24, 48, [9, 9], [3, 3]),
        ] {
            assert_batch_independent(conv2d_direct, &g);
            let avx2 = |x: &[f32], n, w: &[f32], b: Option<&[f32]>, g: &Geometry| {
                conv2d_with(Kernel::Avx2, x, n, w, b, g)
            };
            assert_batch_independent(avx2, &g);
        }
    }

    #[test]
    fn whole_tiles_of_output_channels_at_stride_one() {
        let applies_here = |g: Geometry| applies(&g) == has_avx2_fma();
        for (ci, co) in [(1, 16), (16, 16), (32, 32), (3, 64), (1280, 1280)] {
            assert!(
                applies_here(geometry(ci, co, [28, 28], [3, 3])),
                "{ci} {co}"
            );
        }
        assert!(applies_here(geometry(4, 16, [9, 9], [5, 5])));
        for (ci, co) in [(16, 1), (16, 3), (16, 8), (16, 24)] {
            assert!(!applies(&geometry(ci, co, [28, 28], [3, 3])), "{ci} {co}");
        }
        let g = geometry(16, 16, [28, 28], [3, 3]);
        assert!(!applies(&geometry(16, 16, [28, 28], [1, 1])));
        assert!(!applies(&Geometry {
            stride: [2, 2],
            ..g
        }));
        assert!(!applies(&Geometry {
            dilation: [1, 2],
            ..g
        }));
        assert!(!applies(&geometry(0, 16, [28, 28], [3, 3])));
    }

    #[test]
    fn the_avx512_tile_takes_few_channels_and_small_outputs_from_winograd() {
        let ours = |c, side| outruns_winograd(&geometry(c, c, [side, side], [3, 3]));
        let avx512 = Kernel::best() == Kernel::Avx512 && has_avx2_fma();
        for (c, side) in [(32, 64), (64, 32), (64, 128), (128, 16), (1280, 16)] {
            assert_eq!(ours(c, side), avx512, "{c} at {side}");
        }
        for (c, side) in [(96, 64), (128, 32), (320, 64), (512, 256)] {
            assert!(!ours(c, side), "{c} at {side}");
        }
        // Not at shapes the tile does not compute (8 output channels, stride 2).
        assert!(!outruns_winograd(&geometry(8, 8, [64, 64], [3, 3])));
        let g = geometry(32, 32, [64, 64], [3, 3]);
        assert!(!outruns_winograd(&Geometry {
            stride: [2, 2],
            ..g
        }));
    }
}
