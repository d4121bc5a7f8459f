//! Linear layers at inference, `y = x W + b` in one buffer: the rows of `y` start as the bias
//! and one gemm call adds `x W` onto them.
//!
//! burn-flex's matmul zero-fills its output and then copies it into a realigned buffer (its
//! `FlexTensor::empty` goes through `Bytes::from_bytes_vec`, which copies whatever vector it is
//! given), and the bias is one more pass: on an Ice Lake Xeon `perf` of the MLP's 1000-step
//! sampling found 11% in that copy, 7% in the fill and 7% in the addition, with the matmul
//! itself at 60%.

use burn::backend::Flex;
use burn::nn::Linear;
use burn::tensor::{DType, Tensor};

/// Work (multiply-adds) from which the gemm runs on every thread, as burn-flex's matmul does.
const PARALLEL_WORK: usize = 192 * 192 * 192;

/// `layer.forward(x)` for `x` `[..., d_input]`: on the inference CPU device at f32 in one
/// buffer, elsewhere (a gradient to keep, another device or dtype) by burn itself.
pub fn linear<const D: usize>(layer: &Linear, x: Tensor<D>) -> Tensor<D> {
    let weight = layer.weight.val();
    let bias = layer.bias.as_ref().map(|b| b.val());
    let [k, m] = weight.dims();
    let dims = x.dims();
    let fast = super::fast_path(&x.device(), x.dtype())
        && weight.dtype() == DType::F32
        && weight.device() == x.device()
        && bias
            .as_ref()
            .is_none_or(|b| b.dtype() == DType::F32 && b.dims() == [m] && b.device() == x.device())
        && dims.last() == Some(&k);
    if !fast {
        return layer.forward(x);
    }
    let rows = dims[..D - 1].iter().product::<usize>();
    let flex = |t: Tensor<D>| match t.try_into_primitive::<Flex>() {
        Ok(p) => p,
        Err(_) => unreachable!("fast_path: a tensor on the inference CPU device is a Flex tensor"),
    };
    let x = flex(x);
    let weight = match weight.try_into_primitive::<Flex>() {
        Ok(p) => p,
        Err(_) => unreachable!("fast_path: the weight is on the same device"),
    };
    let bias = bias.map(|b| match b.try_into_primitive::<Flex>() {
        Ok(p) => p,
        Err(_) => unreachable!("fast_path: the bias is on the same device"),
    });
    let y = linear_f32(
        &super::flex_f32(&x),
        rows,
        &super::flex_f32(&weight),
        bias.as_ref().map(super::flex_f32).as_deref(),
        k,
        m,
    );
    let mut shape = dims;
    shape[D - 1] = m;
    Tensor::from_primitive::<Flex>(super::flex_from(y, shape))
}

/// `y [rows, m] = x [rows, k] w [k, m] + b [m]`, all row-major.
fn linear_f32(
    x: &[f32],
    rows: usize,
    w: &[f32],
    b: Option<&[f32]>,
    k: usize,
    m: usize,
) -> Vec<f32> {
    assert!(
        x.len() == rows * k && w.len() == k * m && b.is_none_or(|b| b.len() == m),
        "linear_f32: x {} (rows {rows} x k {k}), w {} (k x m {m}), b {:?}",
        x.len(),
        w.len(),
        b.map(<[f32]>::len)
    );
    let mut y = match b {
        Some(b) => b.repeat(rows),
        None => vec![0f32; rows * m],
    };
    if rows == 0 || m == 0 || k == 0 {
        return y;
    }
    let parallelism = if rows.saturating_mul(m).saturating_mul(k) >= PARALLEL_WORK {
        gemm::Parallelism::Rayon(rayon::current_num_threads())
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: y is rows x m, x rows x k and w k x m floats, row-major with the strides given.
    unsafe {
        gemm::gemm(
            rows,
            m,
            k,
            y.as_mut_ptr(),
            1,
            m as isize,
            true,
            x.as_ptr(),
            1,
            k as isize,
            w.as_ptr(),
            1,
            m as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
    y
}

#[cfg(test)]
mod tests {
    use super::super::test_support::values;
    use super::*;
    use burn::nn::{LinearConfig, LinearLayout};
    use burn::tensor::TensorData;

    /// The float64 sum, and the sum of the terms' magnitudes for the round-off bound.
    fn reference(
        x: &[f32],
        rows: usize,
        w: &[f32],
        b: Option<&[f32]>,
        k: usize,
        m: usize,
    ) -> (Vec<f64>, Vec<f64>) {
        let mut want = vec![0f64; rows * m];
        let mut mag = vec![0f64; rows * m];
        for r in 0..rows {
            for o in 0..m {
                let bias = b.map_or(0.0, |b| f64::from(b[o]));
                let (mut s, mut a) = (bias, bias.abs());
                for i in 0..k {
                    let p = f64::from(x[r * k + i]) * f64::from(w[i * m + o]);
                    s += p;
                    a += p.abs();
                }
                want[r * m + o] = s;
                mag[r * m + o] = a;
            }
        }
        (want, mag)
    }

    /// Within `(k + 1) eps` of the terms' magnitudes: gemm sums `k` products in some order
    /// (each addition rounding once, fused or not) and the bias once.
    #[test]
    fn matches_the_float64_sum_on_odd_shapes() {
        for (rows, k, m, bias) in [
            (1, 1, 1, true),
            (1, 7, 13, true),
            (3, 2, 256, false),
            (257, 256, 256, true),
            (10_000, 67, 3, true),
            (0, 5, 4, true),
            (4, 0, 3, true),
        ] {
            let x = values(rows * k, 1 + k as u64);
            let w = values(k * m, 2 + m as u64);
            let b = bias.then(|| values(m, 3));
            let y = linear_f32(&x, rows, &w, b.as_deref(), k, m);
            let (want, mag) = reference(&x, rows, &w, b.as_deref(), k, m);
            assert_eq!(y.len(), rows * m);
            let bound = (k + 1) as f64 * f64::from(f32::EPSILON);
            for (i, ((a, b), g)) in y.iter().zip(&want).zip(&mag).enumerate() {
                let err = (f64::from(*a) - b).abs();
                assert!(
                    err <= bound * g.max(f64::MIN_POSITIVE),
                    "{rows}x{k}x{m} element {i}: {a} vs {b}"
                );
            }
        }
    }

    /// Through the module: burn's own `Linear::forward` on the same layer and input (2-D and
    /// 3-D; with and without a bias; the weight as stored, `[d_input, d_output]`, and as a
    /// transposed view of `[d_output, d_input]`): both within `(k + 1) eps` of the float64 sum,
    /// so within twice that of each other.
    #[test]
    fn matches_burns_linear_through_the_module() {
        let device = diffuse_core::device::cpu();
        device.seed(7);
        for (bias, k, m, layout) in [
            (true, 33, 17, LinearLayout::Row),
            (false, 8, 64, LinearLayout::Row),
            (true, 300, 5, LinearLayout::Col),
        ] {
            let layer = LinearConfig::new(k, m)
                .with_bias(bias)
                .with_layout(layout)
                .init(&device);
            let w = super::super::to_vec(layer.weight.val());
            let b = layer.bias.as_ref().map(|b| super::super::to_vec(b.val()));
            for shape in [vec![5, k], vec![2, 3, k]] {
                let rows = shape[..shape.len() - 1].iter().product::<usize>();
                let xv = values(rows * k, 9 + k as u64);
                let (ours, burns) = if shape.len() == 2 {
                    let x = Tensor::<2>::from_data(TensorData::new(xv.clone(), [rows, k]), &device);
                    let ours = linear(&layer, x.clone());
                    assert_eq!(ours.dims(), [rows, m]);
                    (
                        super::super::to_vec(ours),
                        super::super::to_vec(layer.forward(x)),
                    )
                } else {
                    let x = Tensor::<3>::from_data(TensorData::new(xv.clone(), [2, 3, k]), &device);
                    let ours = linear(&layer, x.clone());
                    assert_eq!(ours.dims(), [2, 3, m]);
                    (
                        super::super::to_vec(ours),
                        super::super::to_vec(layer.forward(x)),
                    )
                };
                let (_, mag) = reference(&xv, rows, &w, b.as_deref(), k, m);
                let bound = 2.0 * (k + 1) as f64 * f64::from(f32::EPSILON);
                for ((p, q), g) in ours.iter().zip(&burns).zip(&mag) {
                    let err = (f64::from(*p) - f64::from(*q)).abs();
                    assert!(
                        err <= bound * g.max(f64::MIN_POSITIVE),
                        "{k}x{m}: {p} vs {q}"
                    );
                }
            }
        }
    }
}
