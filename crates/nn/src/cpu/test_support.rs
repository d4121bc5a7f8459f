//! What the kernels' tests share: deterministic inputs and a float64 reference.

use super::conv::Geometry;

/// A deterministic spread of values in [-1, 1) (a small LCG), so that the test needs no RNG.
pub(crate) fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        })
        .collect()
}

/// The convolution (stride 1, dilation 1, any kernel) as a direct sum in float64, and for each
/// output the sum of its terms' magnitudes.
pub(crate) fn reference(
    x: &[f32],
    n: usize,
    w: &[f32],
    bias: Option<&[f32]>,
    g: &Geometry,
) -> (Vec<f64>, Vec<f64>) {
    let (oh, ow) = (g.out_h().unwrap_or(0), g.out_w().unwrap_or(0));
    let [top, _, left, _] = g.pad;
    let (mut y, mut mag) = (Vec::new(), Vec::new());
    for b in 0..n {
        for o in 0..g.co {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = bias.map_or(0.0, |v| f64::from(v[o]));
                    let mut abs = acc.abs();
                    for c in 0..g.ci {
                        for i in 0..g.kh {
                            for j in 0..g.kw {
                                let (iy, ix) = (oy + i, ox + j);
                                if iy < top || ix < left || iy - top >= g.h || ix - left >= g.w {
                                    continue;
                                }
                                let xv = x[((b * g.ci + c) * g.h + iy - top) * g.w + ix - left];
                                let p = f64::from(xv)
                                    * f64::from(w[((o * g.ci + c) * g.kh + i) * g.kw + j]);
                                acc += p;
                                abs += p.abs();
                            }
                        }
                    }
                    y.push(acc);
                    mag.push(abs);
                }
            }
        }
    }
    (y, mag)
}

/// A convolution kernel's signature: `(x, n, weight, bias, g) -> y`.
pub(crate) type Conv = fn(&[f32], usize, &[f32], Option<&[f32]>, &Geometry) -> Vec<f32>;

/// Asserts that `conv` of three images gives the bits of each image alone (a task per image and
/// band against one image's bands).
pub(crate) fn assert_batch_independent(conv: Conv, g: &Geometry) {
    let plane = g.ci * g.h * g.w;
    let x = values(3 * plane, 5);
    let w = values(g.co * g.ci * g.kh * g.kw, 6);
    let b = values(g.co, 7);
    let all = conv(&x, 3, &w, Some(&b), g);
    let one = x
        .chunks_exact(plane)
        .flat_map(|xi| conv(xi, 1, &w, Some(&b), g))
        .collect::<Vec<_>>();
    assert_eq!(all.len(), one.len(), "{g:?}");
    assert!(
        all.iter()
            .zip(&one)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "{g:?}"
    );
}
