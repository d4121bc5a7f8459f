//! SiLU, x sigmoid(x), for inference: burn-flex evaluates sigmoid one element at a time with the
//! C library's expf (a fifth of the UNet's sampling time in `perf`); here exp is a polynomial the
//! compiler vectorises. Training (an autodiff device) keeps burn's silu and its gradient.

use burn::tensor::Tensor;
use burn::tensor::activation::silu as burn_silu;

/// x sigmoid(x); on an inference device, with [`exp_neg`].
pub fn silu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    if !crate::cpu::fast_path(&device, x.dtype()) {
        return burn_silu(x);
    }
    crate::cpu::map_blocks(x, 1 << 14, |_, v| silu_in_place(v))
}

/// x sigmoid(x) for each element, in eight lanes where the CPU has AVX2 (the same operations,
/// so the same bits, as the baseline's four: no fused multiply-add is introduced).
pub(crate) fn silu_in_place(v: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has just been asked for AVX2.
        return unsafe { silu_avx2(v) };
    }
    silu_scalar(v);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn silu_avx2(v: &mut [f32]) {
    silu_scalar(v);
}

#[inline(always)]
fn silu_scalar(v: &mut [f32]) {
    for e in v {
        *e /= 1.0 + exp_neg(*e);
    }
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
}
