//! SiLU, x sigmoid(x), and GELU, x Phi(x), for inference: burn-flex evaluates sigmoid and erf one
//! element at a time with the C library's expf and erff (a fifth of the UNet's sampling time in
//! `perf`; erff 3% of a Stable Diffusion step); here exp is a polynomial the compiler vectorises,
//! and erfc is built on it. Training (an autodiff device) keeps burn's functions and gradients.

use burn::backend::Flex;
use burn::tensor::Tensor;
use burn::tensor::activation::{gelu as burn_gelu, silu as burn_silu};
use rayon::prelude::*;

/// x sigmoid(x); on an inference device, with [`exp_neg`].
pub fn silu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    if !crate::cpu::fast_path(&device, x.dtype()) {
        return burn_silu(x);
    }
    crate::cpu::map_blocks(x, 1 << 14, |_, v| silu_in_place(v))
}

/// x sigmoid(x) for each element, at the CPU's widest vectors ([`crate::cpu::isa::widest`]:
/// the same operations, so the same bits, on every x86-64 CPU: no fused multiply-add).
pub(crate) fn silu_in_place(v: &mut [f32]) {
    crate::cpu::isa::widest(
        #[inline(always)]
        || silu_scalar(v),
    )
}

#[inline(always)]
pub(crate) fn silu_scalar(v: &mut [f32]) {
    for e in v {
        *e /= 1.0 + exp_neg(*e);
    }
}

/// GELU, x Phi(x) = x erfc(-x / sqrt 2) / 2 (the exact form, not tanh's); on an inference
/// device with [`erfc`].
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    if !crate::cpu::fast_path(&device, x.dtype()) {
        return burn_gelu(x);
    }
    crate::cpu::map_blocks(x, 1 << 14, |_, v| gelu_in_place(v))
}

/// GEGLU's product: for `h` `[.., 2 k]`, its first `k` features times GELU of its last `k`
/// (diffusers' `GEGLU` after its projection), `[.., k]`. On an inference device one pass over
/// `h` in parallel rows, without the split views, the GELU pass and the product pass.
pub fn geglu(h: Tensor<3>) -> Tensor<3> {
    let [b, n, two_k] = h.dims();
    let k = two_k / 2;
    if !(crate::cpu::fast_path(&h.device(), h.dtype()) && k > 0 && two_k == 2 * k) {
        let mut halves = h.split(k.max(1), 2).into_iter();
        return match (halves.next(), halves.next()) {
            (Some(a), Some(g)) => a * gelu(g),
            _ => unreachable!("GEGLU's projection has 2 x inner features"),
        };
    }
    let Ok(p) = h.try_into_primitive::<Flex>() else {
        unreachable!("fast_path: a tensor on the inference CPU device is a Flex tensor")
    };
    let h = crate::cpu::flex_f32(&p);
    let (rows, len) = ((1usize << 14).div_ceil(k), b * n * k);
    let mut y: Vec<f32> = Vec::with_capacity(len);
    y.spare_capacity_mut()[..len]
        .par_chunks_mut(rows * k)
        .zip(h.par_chunks(rows * two_k))
        .for_each(|(y, h)| {
            // Row r of y: the gate (last k of h's row r), then its GELU, times the first k.
            for (y, h) in y.chunks_exact_mut(k).zip(h.chunks_exact(two_k)) {
                for (d, s) in y.iter_mut().zip(&h[k..]) {
                    d.write(*s);
                }
                // SAFETY: every element of `y` has just been written.
                let y = unsafe { std::slice::from_raw_parts_mut(y.as_mut_ptr().cast::<f32>(), k) };
                gelu_in_place(y);
                for (y, a) in y.iter_mut().zip(&h[..k]) {
                    *y *= a;
                }
            }
        });
    // SAFETY: the chunks cover the first `len` elements (b n rows of k), each written above.
    unsafe { y.set_len(len) };
    Tensor::from_primitive::<Flex>(crate::cpu::flex_from(y, [b, n, k]))
}

/// x erfc(-x / sqrt 2) / 2 for each element, at the CPU's widest vectors (no fused
/// multiply-add, so the same bits on every x86-64 CPU).
pub(crate) fn gelu_in_place(v: &mut [f32]) {
    crate::cpu::isa::widest(
        #[inline(always)]
        || gelu_scalar(v),
    )
}

#[inline(always)]
fn gelu_scalar(v: &mut [f32]) {
    for e in v {
        *e = 0.5 * *e * erfc(-*e * std::f32::consts::FRAC_1_SQRT_2);
    }
}

/// erfc(z) for f32 z: the Chebyshev fit of Numerical Recipes (`erfcc`, fractional error below
/// 1.2e-7 for every z): with t = 1 / (1 + |z| / 2), erfc(|z|) = t e^(-z^2 - 1.26551223 + t P(t)),
/// and erfc(-|z|) = 2 - erfc(|z|). The exponent saturates at e^-87 (|z| > 9.3, where erfc is
/// below 1e-38).
#[inline(always)]
pub fn erfc(z: f32) -> f32 {
    let a = z.abs();
    let t = 1.0 / (1.0 + 0.5 * a);
    let p = -1.265_512_2
        + t * (1.000_023_7
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_204
                                + t * (1.488_515_9 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * exp_neg(a * a - p);
    if z < 0.0 { 2.0 - r } else { r }
}

/// e^(-x) for f32 x, within a few ulp for |x| < 87, saturating beyond: n = round(-x log2 e)
/// (by the 1.5 * 2^23 trick, no branch), r = -x - n ln 2 with ln 2 split in two (Cody and Waite)
/// so that r keeps its bits, e^r by its degree-7 Taylor polynomial (|r| <= ln 2 / 2), and 2^n
/// put in the exponent bits.
#[inline(always)]
pub fn exp_neg(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23
    const LN2_HI: f32 = 0.693_145_75; // ln 2 to 16 bits: n * LN2_HI is exact
    const LN2_LO: f32 = 1.428_606_8e-6; // ln 2 - LN2_HI
    let y = (-x).clamp(-87.0, 87.0);
    let t = y * std::f32::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    let r = (y - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r / 5040.0))))));
    // t = 1.5 2^23 + n holds n in its low mantissa bits (|n| <= 126): integer operations only,
    // so the loop vectorises (a float-to-int cast would not).
    let scale = f32::from_bits((t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127)) << 23);
    p * scale
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn exp_neg_matches_the_library_exp() {
        // Relative error against f64 exp over the range SiLU meets, in steps of 1e-3.
        let mut worst = 0f64;
        let mut x = -80.0f32;
        while x < 80.0 {
            let want = (-(x as f64)).exp();
            let got = exp_neg(x) as f64;
            worst = worst.max(((got - want) / want).abs());
            x += 1e-3;
        }
        // f32 has 2^-24 = 6e-8 relative resolution: a few ulp.
        assert!(
            worst < 4.0 * f32::EPSILON as f64,
            "worst relative error {worst}"
        );
    }

    #[test]
    fn silu_matches_burns_on_an_inference_device() {
        let device = diffuse_core::device::cpu();
        let v: Vec<f32> = (0..2001).map(|i| (i as f32 - 1000.0) / 50.0).collect();
        let x = Tensor::<1>::from_data(TensorData::new(v.clone(), [v.len()]), &device);
        let got: Vec<f32> = silu(x.clone()).into_data().try_into_vec().unwrap();
        let want: Vec<f32> = burn_silu(x).into_data().try_into_vec().unwrap();
        for ((g, w), x) in got.iter().zip(&want).zip(&v) {
            assert!(
                (g - w).abs() <= 4.0 * f32::EPSILON * w.abs().max(1e-30) + 1e-30,
                "silu({x}): {g} against {w}"
            );
        }
    }

    #[test]
    fn training_keeps_burns_silu_and_its_gradient() {
        // d/dx x sigmoid(x) at 0 is 1/2.
        let device = diffuse_core::device::cpu().autodiff();
        let x = Tensor::<1>::from_data(TensorData::new(vec![0.0f32], [1]), &device).require_grad();
        let grads = silu(x.clone()).sum().backward();
        let g: Vec<f32> = x.grad(&grads).unwrap().into_data().try_into_vec().unwrap();
        assert!((g[0] - 0.5).abs() < 1e-7, "{g:?}");
    }

    #[test]
    fn erfc_matches_tabulated_values() {
        // erfc to 16 digits (Python's math.erfc); the tolerance is the fit's 1.2e-7, a few f32
        // roundings, and twice the rounding of the exponent's argument z^2 + 1.27 - t P(t)
        // (2^-24 of its size, a relative error of as much in e^-(..)): 7.3e-7 seen at z = 5.
        for (z, want) in [
            (0.0, 1.0),
            (0.5, 0.479_500_122_186_953_5),
            (1.0, 0.157_299_207_050_285_13),
            (-1.0, 1.842_700_792_949_715),
            (2.0, 4.677_734_981_047_265e-3),
            (-2.5, 1.999_593_047_982_555),
            (3.0, 2.209_049_699_858_543_8e-5),
            (5.0, 1.537_459_794_428_035_1e-12),
        ] {
            let got = erfc(z as f32) as f64;
            let argument = z * z + 2.0; // at most
            assert!(
                ((got - want) / want).abs() < 2.5e-7 + argument * f32::EPSILON as f64,
                "erfc({z}) = {got}, want {want}"
            );
        }
    }

    #[test]
    fn gelu_and_geglu_match_burns_on_an_inference_device() {
        let device = diffuse_core::device::cpu();
        let v: Vec<f32> = (0..4001).map(|i| (i as f32 - 2000.0) / 100.0).collect();
        let x = Tensor::<1>::from_data(TensorData::new(v.clone(), [v.len()]), &device);
        let got: Vec<f32> = gelu(x.clone()).into_data().try_into_vec().unwrap();
        let want: Vec<f32> = burn_gelu(x).into_data().try_into_vec().unwrap();
        // GELU is x (1 - erfc(x / sqrt 2) / 2) above 0, x erfc(|x| / sqrt 2) / 2 below: the
        // fit's 1.2e-7 of erfc and a few roundings stay under 2.5e-7 of |x|.
        for ((g, w), x) in got.iter().zip(&want).zip(&v) {
            assert!(
                (g - w).abs() <= 2.5e-7 * x.abs() + 1e-37,
                "gelu({x}): {g} against {w}"
            );
        }
        // GEGLU on odd shapes, one row, and rows over several parallel blocks.
        for [b, n, k] in [[1, 1, 1], [3, 5, 7], [2, 700, 13]] {
            let h = Tensor::<3>::random(
                [b, n, 2 * k],
                burn::tensor::Distribution::Normal(0.0, 2.0),
                &device,
            );
            let (a, g) = (h.clone().narrow(2, 0, k), h.clone().narrow(2, k, k));
            let want: Vec<f32> = (a.clone() * burn_gelu(g.clone()))
                .into_data()
                .try_into_vec()
                .unwrap();
            let scale: Vec<f32> = (a.abs() * g.abs()).into_data().try_into_vec().unwrap();
            let y = geglu(h);
            assert_eq!(y.dims(), [b, n, k]);
            let got: Vec<f32> = y.into_data().try_into_vec().unwrap();
            for ((g, w), s) in got.iter().zip(&want).zip(&scale) {
                // |a| |gelu(g) error| <= 2.5e-7 |a| |g|, and one rounding of the product.
                assert!(
                    (g - w).abs() <= 2.5e-7 * s + f32::EPSILON * w.abs() + 1e-37,
                    "geglu {b}x{n}x{k}: {g} against {w}"
                );
            }
        }
    }

    #[test]
    fn training_keeps_burns_gelu_and_its_gradient() {
        // GEGLU of [a, g] = a gelu(g); d/da at g = 0 is gelu(0) = 0, d/dg at g = 0 is a / 2.
        let device = diffuse_core::device::cpu().autodiff();
        let h = Tensor::<3>::from_data(TensorData::new(vec![3.0f32, 0.0], [1, 1, 2]), &device)
            .require_grad();
        let grads = geglu(h.clone()).sum().backward();
        let g: Vec<f32> = h.grad(&grads).unwrap().into_data().try_into_vec().unwrap();
        assert!(g[0].abs() < 1e-7 && (g[1] - 1.5).abs() < 1e-6, "{g:?}");
    }
}
