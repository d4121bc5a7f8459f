//! The Frechet distance between two Gaussians fitted to feature vectors (Heusel et al. 2017, the
//! "FID" of image generation, here on whatever features the caller provides):
//!
//! d^2 = |mu_1 - mu_2|^2 + tr(S_1) + tr(S_2) - 2 tr((S_1^{1/2} S_2 S_1^{1/2})^{1/2}),
//!
//! the squared 2-Wasserstein distance between N(mu_1, S_1) and N(mu_2, S_2). The matrix square
//! roots come from a symmetric eigendecomposition (cyclic Jacobi), in f64.

use crate::error::{Result, invalid};

/// The mean and the (n - 1)-normalised covariance (row-major `[d, d]`) of rows of width d.
pub fn mean_cov(rows: &[Vec<f64>]) -> Result<(Vec<f64>, Vec<f64>)> {
    let n = rows.len();
    let d = rows.first().map_or(0, Vec::len);
    if n < 2 || d == 0 || rows.iter().any(|r| r.len() != d) {
        return invalid("a covariance needs two or more rows of the same, non-zero width");
    }
    let mut mean = vec![0.0; d];
    for r in rows {
        for (m, v) in mean.iter_mut().zip(r) {
            *m += v / n as f64;
        }
    }
    let mut cov = vec![0.0; d * d];
    for r in rows {
        for i in 0..d {
            let a = r[i] - mean[i];
            for j in i..d {
                cov[i * d + j] += a * (r[j] - mean[j]);
            }
        }
    }
    for i in 0..d {
        for j in i..d {
            let v = cov[i * d + j] / (n - 1) as f64;
            cov[i * d + j] = v;
            cov[j * d + i] = v;
        }
    }
    Ok((mean, cov))
}

/// Eigenvalues and eigenvectors (columns of V, row-major) of a symmetric `[d, d]` matrix, by
/// cyclic Jacobi rotations until the off-diagonal mass is below 1e-22 of the total.
pub fn symmetric_eigen(a: &[f64], d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = a.to_vec();
    let mut v = vec![0.0; d * d];
    for i in 0..d {
        v[i * d + i] = 1.0;
    }
    let total: f64 = a.iter().map(|x| x * x).sum::<f64>().max(f64::MIN_POSITIVE);
    for _sweep in 0..100 {
        let off: f64 = (0..d)
            .flat_map(|i| (0..d).filter(move |j| *j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * d + j] * a[i * d + j])
            .sum();
        if off <= 1e-22 * total {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                let apq = a[p * d + q];
                if apq == 0.0 {
                    continue;
                }
                // The rotation that zeroes a_pq (Golub & Van Loan, Algorithm 8.4.1).
                let theta = (a[q * d + q] - a[p * d + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..d {
                    let (akp, akq) = (a[k * d + p], a[k * d + q]);
                    a[k * d + p] = c * akp - s * akq;
                    a[k * d + q] = s * akp + c * akq;
                }
                for k in 0..d {
                    let (apk, aqk) = (a[p * d + k], a[q * d + k]);
                    a[p * d + k] = c * apk - s * aqk;
                    a[q * d + k] = s * apk + c * aqk;
                }
                for k in 0..d {
                    let (vkp, vkq) = (v[k * d + p], v[k * d + q]);
                    v[k * d + p] = c * vkp - s * vkq;
                    v[k * d + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..d).map(|i| a[i * d + i]).collect(), v)
}

/// The square root of a symmetric positive semi-definite matrix (negative eigenvalues from
/// rounding are taken as 0).
fn sqrt_psd(a: &[f64], d: usize) -> Vec<f64> {
    let (w, v) = symmetric_eigen(a, d);
    let mut out = vec![0.0; d * d];
    for k in 0..d {
        let s = w[k].max(0.0).sqrt();
        for i in 0..d {
            let vik = v[i * d + k] * s;
            for j in 0..d {
                out[i * d + j] += vik * v[j * d + k];
            }
        }
    }
    out
}

fn matmul(a: &[f64], b: &[f64], d: usize) -> Vec<f64> {
    let mut out = vec![0.0; d * d];
    for i in 0..d {
        for k in 0..d {
            let aik = a[i * d + k];
            for j in 0..d {
                out[i * d + j] += aik * b[k * d + j];
            }
        }
    }
    out
}

/// The squared Frechet distance between N(mu_1, s_1) and N(mu_2, s_2) (covariances row-major).
pub fn frechet_distance(mu1: &[f64], s1: &[f64], mu2: &[f64], s2: &[f64]) -> Result<f64> {
    let d = mu1.len();
    if mu2.len() != d || s1.len() != d * d || s2.len() != d * d {
        return invalid("the two Gaussians must have the same dimension");
    }
    if [mu1, s1, mu2, s2]
        .iter()
        .any(|v| v.iter().any(|x| !x.is_finite()))
    {
        return invalid("a mean or covariance is not finite");
    }
    let r = sqrt_psd(s1, d);
    let m = matmul(&matmul(&r, s2, d), &r, d);
    // Symmetrise away the rounding of the products before the eigendecomposition.
    let m: Vec<f64> = (0..d * d)
        .map(|k| 0.5 * (m[k] + m[(k % d) * d + k / d]))
        .collect();
    let (w, _) = symmetric_eigen(&m, d);
    let tr_sqrt: f64 = w.iter().map(|x| x.max(0.0).sqrt()).sum();
    let dmu: f64 = mu1.iter().zip(mu2).map(|(a, b)| (a - b).powi(2)).sum();
    let tr = |s: &[f64]| (0..d).map(|i| s[i * d + i]).sum::<f64>();
    Ok(dmu + tr(s1) + tr(s2) - 2.0 * tr_sqrt)
}

/// The squared Frechet distance between Gaussians fitted to two sets of feature rows.
pub fn frechet_distance_of(a: &[Vec<f64>], b: &[Vec<f64>]) -> Result<f64> {
    let (m1, s1) = mean_cov(a)?;
    let (m2, s2) = mean_cov(b)?;
    frechet_distance(&m1, &s1, &m2, &s2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::{NoiseSource, Stream};

    fn random_spd(d: usize, seed: u64) -> Vec<f64> {
        let g = NoiseSource::new(seed).normals(Stream::Other, 0, 0..d as u64, d);
        let mut s = matmul(
            &g,
            &(0..d * d)
                .map(|k| g[(k % d) * d + k / d])
                .collect::<Vec<_>>(),
            d,
        );
        for i in 0..d {
            s[i * d + i] += 0.1;
        }
        s
    }

    /// A V diag(w) V^T rebuilds A, and V is orthogonal, to rounding.
    #[test]
    fn jacobi_diagonalises_symmetric_matrices() {
        let d = 12;
        let a = random_spd(d, 3);
        let (w, v) = symmetric_eigen(&a, d);
        let scale = a.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        for i in 0..d {
            for j in 0..d {
                let back: f64 = (0..d).map(|k| v[i * d + k] * w[k] * v[j * d + k]).sum();
                assert!((back - a[i * d + j]).abs() < 1e-12 * scale * d as f64);
                let vtv: f64 = (0..d).map(|k| v[k * d + i] * v[k * d + j]).sum();
                assert!((vtv - f64::from(u8::from(i == j))).abs() < 1e-12);
            }
        }
    }

    /// 1-D: (mu_1 - mu_2)^2 + (sigma_1 - sigma_2)^2. Commuting (diagonal) covariances:
    /// |dmu|^2 + sum (sqrt a_i - sqrt b_i)^2. 2x2: tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)).
    #[test]
    fn frechet_distance_matches_closed_forms() {
        let fd = frechet_distance(&[1.0], &[4.0], &[-0.5], &[0.25]).unwrap();
        assert!((fd - (1.5f64.powi(2) + 1.5f64.powi(2))).abs() < 1e-12);
        let (a, b) = ([2.0, 0.5, 3.0], [1.0, 1.5, 0.2]);
        let diag = |v: &[f64; 3]| {
            let mut m = vec![0.0; 9];
            for i in 0..3 {
                m[i * 3 + i] = v[i];
            }
            m
        };
        let fd = frechet_distance(&[0.0; 3], &diag(&a), &[1.0, 0.0, 0.0], &diag(&b)).unwrap();
        let want = 1.0
            + (0..3)
                .map(|i| (a[i].sqrt() - b[i].sqrt()).powi(2))
                .sum::<f64>();
        assert!((fd - want).abs() < 1e-12, "{fd} vs {want}");
        let s1 = [2.0, 0.7, 0.7, 1.0];
        let s2 = [0.5, -0.3, -0.3, 1.5];
        let r = sqrt_psd(&s1, 2);
        let m = matmul(&matmul(&r, &s2, 2), &r, 2);
        let (tr, det) = (m[0] + m[3], m[0] * m[3] - m[1] * m[2]);
        let want = 3.0 + 2.0 - 2.0 * (tr + 2.0 * det.sqrt()).sqrt();
        let fd = frechet_distance(&[0.0; 2], &s1, &[0.0; 2], &s2).unwrap();
        assert!((fd - want).abs() < 1e-12, "{fd} vs {want}");
        // And it is symmetric in its two arguments, and zero between a Gaussian and itself.
        let back = frechet_distance(&[0.0; 2], &s2, &[0.0; 2], &s1).unwrap();
        assert!((fd - back).abs() < 1e-12);
        let s = random_spd(20, 5);
        assert!(
            frechet_distance(&[0.0; 20], &s, &[0.0; 20], &s)
                .unwrap()
                .abs()
                < 1e-9
        );
    }

    /// From samples, the distance between two draws of the same Gaussian shrinks like d^2 / n
    /// (the bias of fitted covariances), and a shift of the mean by delta adds delta^2.
    #[test]
    fn fitted_frechet_distance_sees_a_shift() {
        let (d, n) = (4usize, 20_000usize);
        let src = NoiseSource::new(9);
        let draw = |k: u64, shift: f64| -> Vec<Vec<f64>> {
            src.normals(Stream::Other, k, 0..n as u64, d)
                .chunks(d)
                .map(|r| {
                    r.iter()
                        .enumerate()
                        .map(|(j, v)| v + if j == 0 { shift } else { 0.0 })
                        .collect()
                })
                .collect()
        };
        let same = frechet_distance_of(&draw(1, 0.0), &draw(2, 0.0)).unwrap();
        let shifted = frechet_distance_of(&draw(1, 0.0), &draw(2, 0.5)).unwrap();
        // Sampling error of the fitted moments: O(d^2 / n) for the covariance part, O(d / n) for
        // the means; 10 d^2 / n is far above it and far below the shift's 0.25.
        let bound = 10.0 * (d * d) as f64 / n as f64;
        assert!(same.abs() < bound, "{same}");
        assert!((shifted - 0.25).abs() < bound, "{shifted}");
    }
}
