//! 3x3 convolutions at stride 1 by Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray,
//! "Fast Algorithms for Convolutional Neural Networks", 2016): each 2x2 block of outputs is
//! `Y = Aᵀ [ Σ_c (G g_c Gᵀ) ⊙ (Bᵀ d_c B) ] A` for the 4x4 input tile `d_c` under it, so the
//! channel sums are 16 products per tile instead of the direct method's 36 (2.25 times fewer
//! multiply-adds), done as 16 gemms `M_ξ = U_ξ V_ξ` over channels, one per tile position `ξ`:
//!
//! ```text
//!      ⎡1  0 -1  0⎤        ⎡ 1    0    0 ⎤        ⎡1  1  1  0⎤
//! Bᵀ = ⎢0  1  1  0⎥    G = ⎢1/2  1/2  1/2⎥   Aᵀ = ⎣0  1 -1 -1⎦
//!      ⎢0 -1  1  0⎥        ⎢1/2 -1/2  1/2⎥
//!      ⎣0  1  0 -1⎦        ⎣ 0    0    1 ⎦
//! ```
//!
//! The transforms hold only 0, ±1 and ±1/2: the result differs from the direct sum by float32
//! round-off alone (the test bounds it against a float64 reference). Each image is cut into
//! bands of tile rows whose transformed tiles fit the im2col budget; the per-pixel arithmetic
//! does not depend on the band, the batch or the threads.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::Out;
use super::conv::{COL_BUDGET, Geometry, for_each_task};

/// Whether [`conv2d_winograd`] computes this convolution: 3x3, stride 1, dilation 1, a
/// non-empty output.
pub(crate) fn computes(g: &Geometry) -> bool {
    g.kh == 3
        && g.kw == 3
        && g.stride == [1, 1]
        && g.dilation == [1, 1]
        && g.ci > 0
        && g.co > 0
        && g.out_h().is_some_and(|v| v > 0)
        && g.out_w().is_some_and(|v| v > 0)
}

/// Whether [`super::conv::conv2d_f32`] hands this convolution to Winograd: it computes it and
/// the transforms pay. They cost about `16 (ci + co)` per tile (and `16 ci co` for the weights)
/// against the gemms' `16 ci co`, and run one tile row at a time, so they pay with many
/// channels or wide images: where the harmonic mean `c = 2 ci co / (ci + co)` of the channels
/// times the output's shorter side is at least 2048, on outputs of at least 16x16. Measured on
/// a 2-core AVX2 EPYC (shifted gemms' time / Winograd's, c = ci = co, c at side): 2.0 (256 at
/// 128), 1.8 (320 at 64), 1.6 (64 at 64), 1.5 (640 at 32), 1.2 to 1.3 (1280 at 16, 128 at 16,
/// 64 at 32), 1.1 (32 at 32 and 64); below the line 0.6 to 0.7 (16 at 28, 32 at 14, 32 at 7:
/// the pixel UNet's), 0.8 to 1.0 (64 at 16), 0.8 to 0.9 (1280 at 8, batch 2). The rule reads
/// the geometry alone, so a convolution's bits do not depend on the batch.
pub(crate) fn applies(g: &Geometry) -> bool {
    /// The least harmonic mean of the channels times the output's shorter side.
    const MIN_WORK: usize = 2048;
    /// The output's least side.
    const MIN_SIDE: usize = 16;
    let side = g.out_h().unwrap_or(0).min(g.out_w().unwrap_or(0));
    computes(g) && side >= MIN_SIDE && 2 * g.ci * g.co / (g.ci + g.co) * side >= MIN_WORK
}

/// `U_ξ = (G g Gᵀ)_ξ` for every kernel `g = weight[o, c]`, laid out `[16, co, ci]` so that each
/// `U_ξ` is the row-major lhs `[co, ci]` of its gemm.
fn transform_weights(weight: &[f32], co: usize, ci: usize) -> Vec<f32> {
    /// Kernels per parallel task.
    const CHUNK: usize = 4096;
    let len = 16 * co * ci;
    let mut u: Vec<f32> = Vec::with_capacity(len);
    let out = Out(u.as_mut_ptr());
    weight
        .par_chunks(9 * CHUNK)
        .enumerate()
        .for_each(|(chunk, kernels)| {
            for (i, k) in kernels.chunks_exact(9).enumerate() {
                let oc = chunk * CHUNK + i;
                // G g: 4 rows of 3.
                let mut gg = [[0f32; 3]; 4];
                for j in 0..3 {
                    let (a, b, c) = (k[j], k[3 + j], k[6 + j]);
                    gg[0][j] = a;
                    gg[1][j] = 0.5 * (a + b + c);
                    gg[2][j] = 0.5 * (a - b + c);
                    gg[3][j] = c;
                }
                // (G g) Gᵀ: 4 x 4.
                for (r, row) in gg.iter().enumerate() {
                    let [a, b, c] = *row;
                    let t = [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
                    for (s, v) in t.into_iter().enumerate() {
                        // SAFETY: kernel oc < co ci of block ξ = 4 r + s lies inside `u`'s
                        // capacity and is written by this task alone.
                        unsafe { out.at((r * 4 + s) * co * ci + oc).write(v) };
                    }
                }
            }
        });
    // SAFETY: the tasks wrote all 16 blocks of every one of the co ci kernels.
    unsafe { u.set_len(len) };
    u
}

/// `V_ξ[c, t] = (Bᵀ d B)_ξ` for the 4x4 input tiles `d` of channel `c` under tile rows
/// `t0 .. t0 + rows` (tile `t` of the band at tile row `t / tw`, column `t % tw`), zero outside
/// the image, written to columns `col0 .. col0 + rows tw` of `v`, `[16, ci, stride]`. `h` is
/// scratch for one tile row's horizontal pass.
fn transform_input(
    image: &[f32],
    g: &Geometry,
    t0: usize,
    rows: usize,
    tw: usize,
    (v, stride, col0): (&mut [f32], usize, usize),
    h: &mut Vec<f32>,
) {
    let [top, _, left, _] = g.pad;
    let (ci, ih, iw) = (g.ci, g.h, g.w);
    // One padded input row (2 tw + 2 columns: input column p - left at p), split into its even
    // and odd columns so that tile t reads d = (even[t], odd[t], even[t + 1], odd[t + 1]) from
    // contiguous slices; then its horizontal transform d B per tile, h[k][s][t] for row k.
    let width = 2 * tw + 2;
    let mut padded = vec![0f32; width];
    let (mut even, mut odd) = (vec![0f32; tw + 1], vec![0f32; tw + 1]);
    h.resize(16 * tw, 0.0);
    for c in 0..ci {
        let plane = &image[c * ih * iw..(c + 1) * ih * iw];
        for r in 0..rows {
            let ty = t0 + r;
            for (k, hk) in h.chunks_exact_mut(4 * tw).enumerate() {
                let iy = 2 * ty + k;
                padded.fill(0.0);
                if iy >= top && iy - top < ih {
                    let src = &plane[(iy - top) * iw..(iy - top + 1) * iw];
                    // Columns p = left + x for x < iw, within the row.
                    let end = (left + iw).min(width);
                    if left < end {
                        padded[left..end].copy_from_slice(&src[..end - left]);
                    }
                }
                for ((e, o), p) in even
                    .iter_mut()
                    .zip(odd.iter_mut())
                    .zip(padded.chunks_exact(2))
                {
                    (*e, *o) = (p[0], p[1]);
                }
                let (h0, rest) = hk.split_at_mut(tw);
                let (h1, rest) = rest.split_at_mut(tw);
                let (h2, h3) = rest.split_at_mut(tw);
                let (e0, e1, o0, o1) = (&even[..tw], &even[1..], &odd[..tw], &odd[1..]);
                for t in 0..tw {
                    h0[t] = e0[t] - e1[t];
                    h1[t] = o0[t] + e1[t];
                    h2[t] = e1[t] - o0[t];
                    h3[t] = o0[t] - o1[t];
                }
            }
            // Vertical: Bᵀ (d B), written to V_ξ for ξ = 4 a + s.
            for s in 0..4 {
                let row = |k: usize| &h[(k * 4 + s) * tw..][..tw];
                let (d0, d1, d2, d3) = (row(0), row(1), row(2), row(3));
                let at = |a: usize| ((a * 4 + s) * ci + c) * stride + col0 + r * tw;
                let (o0, o1, o2, o3) = (at(0), at(1), at(2), at(3));
                let (v0, rest) = v[o0..].split_at_mut(o1 - o0);
                let (v1, rest) = rest.split_at_mut(o2 - o1);
                let (v2, v3) = rest.split_at_mut(o3 - o2);
                let (v0, v1, v2, v3) = (&mut v0[..tw], &mut v1[..tw], &mut v2[..tw], &mut v3[..tw]);
                for t in 0..tw {
                    let (x0, x1, x2, x3) = (d0[t], d1[t], d2[t], d3[t]);
                    v0[t] = x0 - x2;
                    v1[t] = x1 + x2;
                    v2[t] = x2 - x1;
                    v3[t] = x1 - x3;
                }
            }
        }
    }
}

/// The convolution of `n` NCHW images `x` with a 3x3 `weight` `[co, ci, 3, 3]` plus `bias`, at
/// stride 1 and dilation 1 with `g`'s padding (the caller checks [`computes`] and the slices'
/// sizes): the NCHW output `[n, co, oh, ow]`, as [`super::conv::conv2d_f32`] computes it,
/// within float32 round-off.
pub(crate) fn conv2d_winograd(
    x: &[f32],
    n: usize,
    weight: &[f32],
    bias: Option<&[f32]>,
    g: &Geometry,
) -> Vec<f32> {
    let (ci, co) = (g.ci, g.co);
    let (oh, ow) = (g.out_h().unwrap_or(0), g.out_w().unwrap_or(0));
    let plane_in = ci * g.h * g.w;
    let plane_out = oh * ow;
    let len = n * co * plane_out;
    if len == 0 {
        return Vec::new();
    }
    let (th, tw) = (oh.div_ceil(2), ow.div_ceil(2));
    let u = transform_weights(weight, co, ci);
    // Bands of tile rows whose V and M (16 (ci + co) floats per tile) fit the budget.
    let band = (COL_BUDGET / (16 * (ci + co) * tw)).clamp(1, th);
    let bands = th.div_ceil(band);
    // Every output element is written once below, so the buffer is not zeroed first.
    let mut y: Vec<f32> = Vec::with_capacity(len);
    let out = Out(y.as_mut_ptr());
    type Scratch = (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>);
    let run = |(v, m, h, pairs): &mut Scratch, task: usize, parallelism: gemm::Parallelism| {
        let (b, t0) = (task / bands, (task % bands) * band);
        let rows = band.min(th - t0);
        let tiles = rows * tw;
        // The rows of V and M padded to gemm's vector width, so that it reads them in place.
        let stride = tiles.next_multiple_of(8);
        v.resize(16 * ci * stride, 0.0);
        m.resize(16 * co * stride, 0.0);
        let image = &x[b * plane_in..(b + 1) * plane_in];
        transform_input(image, g, t0, rows, tw, (v, stride, 0), h);
        pairs.resize(2 * tw, 0.0);
        for xi in 0..16 {
            // M_ξ [co, stride] = U_ξ [co, ci] . V_ξ [ci, stride]
            // SAFETY: u holds 16 blocks of co x ci, v 16 of ci x stride, m 16 of co x stride,
            // each row-major with the strides given.
            unsafe {
                gemm::gemm(
                    co,
                    stride,
                    ci,
                    m[xi * co * stride..].as_mut_ptr(),
                    1,
                    stride as isize,
                    false,
                    u[xi * co * ci..].as_ptr(),
                    1,
                    ci as isize,
                    v[xi * ci * stride..].as_ptr(),
                    1,
                    stride as isize,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    parallelism,
                );
            }
        }
        // Y = Aᵀ M A per tile, plus the bias, written to rows 2 ty, 2 ty + 1 of the output:
        // row dy of Aᵀ M is s_j = M_{0j} + M_{1j} + M_{2j} (dy 0) or M_{1j} - M_{2j} - M_{3j}
        // (dy 1), and the row's two pixels are s_0 + s_1 + s_2 and s_1 - s_2 - s_3.
        let (sv, pair) = (&mut h[..4 * tw], &mut pairs[..2 * tw]);
        for o in 0..co {
            let b_o = bias.map_or(0.0, |b| b[o]);
            for r in 0..rows {
                let oy = 2 * (t0 + r);
                let mrow = |xi: usize| &m[(xi * co + o) * stride + r * tw..][..tw];
                for dy in 0..2.min(oh - oy) {
                    for (j, s) in sv.chunks_exact_mut(tw).enumerate() {
                        let (m0, m1, m2, m3) = (mrow(j), mrow(4 + j), mrow(8 + j), mrow(12 + j));
                        if dy == 0 {
                            for t in 0..tw {
                                s[t] = m0[t] + m1[t] + m2[t];
                            }
                        } else {
                            for t in 0..tw {
                                s[t] = m1[t] - m2[t] - m3[t];
                            }
                        }
                    }
                    let (s0, rest) = sv.split_at(tw);
                    let (s1, rest) = rest.split_at(tw);
                    let (s2, s3) = rest.split_at(tw);
                    for (t, p) in pair.chunks_exact_mut(2).enumerate() {
                        p[0] = s0[t] + s1[t] + s2[t] + b_o;
                        p[1] = s1[t] - s2[t] - s3[t] + b_o;
                    }
                    // SAFETY: row oy + dy of channel o of image b lies inside `y`'s
                    // capacity and belongs to this task alone; it is written, not read.
                    let dst = unsafe {
                        std::slice::from_raw_parts_mut(
                            out.at((b * co + o) * plane_out + (oy + dy) * ow)
                                .cast::<MaybeUninit<f32>>(),
                            ow,
                        )
                    };
                    for (d, &p) in dst.iter_mut().zip(pair.iter()) {
                        d.write(p);
                    }
                }
            }
        }
    };
    for_each_task(n * bands, run);
    // SAFETY: the tasks (every image, every band of tile rows, both rows of each tile row
    // within the output) wrote all `len` elements.
    unsafe { y.set_len(len) };
    y
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{assert_batch_independent, reference, values};
    use super::*;

    fn check(n: usize, [ci, co]: [usize; 2], [h, w]: [usize; 2], pad: [usize; 4], bias: bool) {
        let g = Geometry {
            ci,
            h,
            w,
            co,
            kh: 3,
            kw: 3,
            stride: [1, 1],
            dilation: [1, 1],
            pad,
        };
        assert!(computes(&g), "{g:?}");
        let x = values(n * ci * h * w, 1 + (ci * h) as u64);
        let wt = values(co * ci * 9, 2 + co as u64);
        let b = bias.then(|| values(co, 3));
        let got = conv2d_winograd(&x, n, &wt, b.as_deref(), &g);
        let (want, mag) = reference(&x, n, &wt, b.as_deref(), &g);
        assert_eq!(got.len(), want.len(), "{g:?}");
        // Round-off: each tile's 16 products sum ci terms (gemm) whose factors are sums of at
        // most 9 weights (halved twice) and 4 inputs, and the output adds 9 of them: every
        // rounded sum is within its terms' magnitude times 2^-24 per addition, bounded by the
        // direct terms' magnitudes times the transforms' gains (|G|1 3/2 squared, |B|1 2
        // squared, |A|1 3 squared: 182.25) and the additions' count (ci + 16).
        let gain = 182.25 * (ci + 16) as f64 * f64::from(f32::EPSILON) / 2.0;
        for (i, ((a, b), m)) in got.iter().zip(&want).zip(&mag).enumerate() {
            assert!(
                (f64::from(*a) - b).abs() <= gain * m.max(f64::MIN_POSITIVE),
                "element {i}: {a} vs {b} (terms {m}; {n} x {g:?})"
            );
        }
        // The bound is loose; the error seen is near the direct method's.
        let worst = got
            .iter()
            .zip(&want)
            .zip(&mag)
            .map(|((a, b), m)| (f64::from(*a) - b).abs() / m.max(1e-30))
            .fold(0.0, f64::max);
        assert!(
            worst < 64.0 * f64::from(f32::EPSILON),
            "worst relative {worst:e}"
        );
    }

    #[test]
    fn matches_the_direct_sum_on_odd_shapes() {
        // The UNets' 3x3 same convolutions.
        check(2, [16, 32], [28, 28], [1, 1, 1, 1], true);
        check(3, [96, 64], [7, 7], [1, 1, 1, 1], true);
        // Batch 1, prime channel counts, odd and tiny images (one output pixel, one row).
        check(1, [11, 13], [5, 7], [1, 1, 1, 1], false);
        check(1, [8, 9], [1, 1], [1, 1, 1, 1], true);
        check(1, [13, 8], [1, 17], [1, 1, 1, 1], true);
        check(1, [8, 8], [2, 3], [1, 1, 1, 1], true);
        // No padding, asymmetric padding, padding past the kernel's reach.
        check(2, [9, 10], [9, 12], [0, 0, 0, 0], true);
        check(1, [10, 9], [6, 11], [0, 2, 2, 0], true);
        check(1, [8, 8], [3, 4], [3, 2, 0, 3], false);
    }

    #[test]
    fn large_images_go_in_bands_and_agree() {
        // 16 x (64 + 8) floats per tile and 100 tiles a row: 9 tile rows a band, 100 tile rows
        // make 12 bands (the last of 1 row).
        check(1, [64, 8], [200, 200], [1, 1, 1, 1], true);
    }

    #[test]
    fn the_batch_does_not_change_the_bits() {
        // Batch 3 (a task per image and band, serial gemms) against each image alone (its
        // bands, gemms over all threads), in bands and whole.
        for (ci, co, side) in [(64, 8, 200), (24, 40, 9)] {
            let g = Geometry {
                ci,
                h: side,
                w: side,
                co,
                kh: 3,
                kw: 3,
                stride: [1, 1],
                dilation: [1, 1],
                pad: [1, 1, 1, 1],
            };
            assert_batch_independent(conv2d_winograd, &g);
        }
    }

    #[test]
    fn only_the_measured_winners_are_taken() {
        let g = |ci, co, side, k, stride| Geometry {
            ci,
            h: side,
            w: side,
            co,
            kh: k,
            kw: k,
            stride,
            dilation: [1, 1],
            pad: [1, 1, 1, 1],
        };
        // Stable Diffusion's and its VAE's.
        for (c, side) in [(320, 64), (640, 32), (1280, 16), (128, 512), (512, 64)] {
            assert!(applies(&g(c, c, side, 3, [1, 1])), "{c} at {side}");
        }
        assert!(applies(&g(320, 640, 32, 3, [1, 1])));
        // The pixel UNet's, SD's lowest level, few channels, small images.
        for (c, side) in [(16, 28), (32, 14), (32, 7), (1280, 8), (64, 16), (8, 200)] {
            assert!(!applies(&g(c, c, side, 3, [1, 1])), "{c} at {side}");
        }
        // Other kernels.
        assert!(!applies(&g(320, 320, 64, 3, [2, 2])));
        assert!(!applies(&g(320, 320, 64, 5, [1, 1])));
        assert!(!applies(&g(320, 320, 64, 1, [1, 1])));
        assert!(computes(&g(1, 1, 1, 3, [1, 1])));
        assert!(!computes(&g(0, 1, 8, 3, [1, 1])));
    }
}
