//! Two-sample distances and goodness-of-fit tests, on plain numbers.
//!
//! Samples are row-major `&[f64]` with a dimension `d`.

use crate::noise::{NoiseSource, Stream};

/// The standard normal CDF Phi(z) = erfc(-z / sqrt 2) / 2.
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)
}

/// A Kolmogorov-Smirnov statistic and its asymptotic p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KsTest {
    /// D = sup |F_n - F|.
    pub statistic: f64,
    /// P(D >= observed) under the null hypothesis (Kolmogorov's limit with Stephens' correction).
    pub p_value: f64,
}

/// The Kolmogorov survival function Q(lambda) = 2 sum_{k>=1} (-1)^{k-1} exp(-2 k^2 lambda^2).
fn kolmogorov_q(lambda: f64) -> f64 {
    if lambda < 0.2 {
        return 1.0;
    }
    let mut sum = 0.0;
    for k in 1..=100 {
        let kf = k as f64;
        let term = (-2.0 * kf * kf * lambda * lambda).exp();
        sum += if k % 2 == 1 { term } else { -term };
        if term < 1e-16 {
            break;
        }
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

fn ks_p_value(d: f64, n_eff: f64) -> f64 {
    let sq = n_eff.sqrt();
    kolmogorov_q((sq + 0.12 + 0.11 / sq) * d)
}

/// The KS statistic that n samples of the law itself exceed with probability `level`: the
/// noise floor of a KS distance (the inverse of the p-value, by bisection).
pub fn ks_critical(n: usize, level: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, 1.0);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if ks_p_value(mid, n as f64) > level {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The one-sample KS test of `x` against a continuous (or step) CDF.
pub fn ks_one_sample(x: &[f64], cdf: impl Fn(f64) -> f64) -> KsTest {
    let mut s: Vec<f64> = x.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len() as f64;
    let mut d: f64 = 0.0;
    // Ties (a point mass) count once, with the empirical CDF jumping over all of them.
    let mut i = 0;
    while i < s.len() {
        let mut j = i;
        while j + 1 < s.len() && s[j + 1] == s[i] {
            j += 1;
        }
        let f = cdf(s[i]);
        // The model CDF just left of s[i] may be below f (a step at s[i]).
        let f_left = cdf(s[i] - 1e-12 * (1.0 + s[i].abs()));
        d = d.max((j + 1) as f64 / n - f).max(f_left - i as f64 / n);
        i = j + 1;
    }
    KsTest {
        statistic: d,
        p_value: ks_p_value(d, n),
    }
}

/// The two-sample KS test between `a` and `b`.
pub fn ks_two_sample(a: &[f64], b: &[f64]) -> KsTest {
    let mut a: Vec<f64> = a.to_vec();
    let mut b: Vec<f64> = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0.0f64);
    while i < a.len() && j < b.len() {
        let v = a[i].min(b[j]);
        while i < a.len() && a[i] <= v {
            i += 1;
        }
        while j < b.len() && b[j] <= v {
            j += 1;
        }
        d = d.max((i as f64 / na - j as f64 / nb).abs());
    }
    KsTest {
        statistic: d,
        p_value: ks_p_value(d, na * nb / (na + nb)),
    }
}

fn dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
}

fn mean_pairwise(a: &[f64], b: &[f64], d: usize, same: bool) -> f64 {
    let (na, nb) = (a.len() / d, b.len() / d);
    let mut total = 0.0;
    for i in 0..na {
        let ai = &a[i * d..(i + 1) * d];
        let start = if same { i + 1 } else { 0 };
        for j in start..nb {
            total += dist(ai, &b[j * d..(j + 1) * d]);
        }
    }
    let pairs = if same {
        (na * (na - 1) / 2) as f64
    } else {
        (na * nb) as f64
    };
    total / pairs
}

/// The energy distance 2 E|X - Y| - E|X - X'| - E|Y - Y'| (Szekely & Rizzo), with unbiased
/// (U-statistic) within-sample terms. Zero in expectation when both samples share a law.
pub fn energy_distance(a: &[f64], b: &[f64], d: usize) -> f64 {
    2.0 * mean_pairwise(a, b, d, false)
        - mean_pairwise(a, a, d, true)
        - mean_pairwise(b, b, d, true)
}

/// A sample's energy distance to a law, above what sampling alone gives (issue 3's measure).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExcessEnergy {
    /// Mean over draws of ED(x, R_k).
    pub distance: f64,
    /// Mean over draws of ED(R_k, R'_k): two independent draws of the law, of x's size.
    pub floor: f64,
    /// distance - floor.
    pub excess: f64,
    /// Number of draws averaged.
    pub draws: usize,
}

/// The excess energy distance of `x` (rows of dimension d) to the law that `reference(j)`
/// draws from (its j-th independent draw, as many rows as x): averages over `draws` pairs,
/// since one draw of the floor is too noisy to judge by. With the unbiased estimator above,
/// the floor is 0 in expectation and its average shows how large chance alone is.
pub fn excess_energy_distance(
    x: &[f64],
    d: usize,
    draws: usize,
    reference: &mut dyn FnMut(usize) -> Vec<f64>,
) -> ExcessEnergy {
    let draws = draws.max(1);
    let (mut distance, mut floor) = (0.0, 0.0);
    for k in 0..draws {
        let (r, r2) = (reference(2 * k), reference(2 * k + 1));
        distance += energy_distance(x, &r, d);
        floor += energy_distance(&r, &r2, d);
    }
    let (distance, floor) = (distance / draws as f64, floor / draws as f64);
    ExcessEnergy {
        distance,
        floor,
        excess: distance - floor,
        draws,
    }
}

/// The 1-D Wasserstein-1 distance between two samples: the integral of |F_a - F_b|.
pub fn wasserstein_1d(a: &[f64], b: &[f64]) -> f64 {
    let mut all: Vec<(f64, bool)> = a
        .iter()
        .map(|v| (*v, true))
        .chain(b.iter().map(|v| (*v, false)))
        .collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (mut fa, mut fb, mut w) = (0.0, 0.0, 0.0);
    for pair in all.windows(2) {
        if pair[0].1 {
            fa += 1.0 / na
        } else {
            fb += 1.0 / nb
        }
        w += (fa - fb).abs() * (pair[1].0 - pair[0].0);
    }
    w
}

/// Sliced Wasserstein-1: the mean of the 1-D W1 over `projections` random unit directions
/// (drawn from `noise`; in 1-D the single direction is exact).
pub fn sliced_wasserstein(
    a: &[f64],
    b: &[f64],
    d: usize,
    projections: usize,
    noise: &NoiseSource,
) -> f64 {
    if d == 1 {
        return wasserstein_1d(a, b);
    }
    let mut total = 0.0;
    for p in 0..projections {
        let u = unit_direction(noise, p as u64, d);
        let pa = project(a, &u);
        let pb = project(b, &u);
        total += wasserstein_1d(&pa, &pb);
    }
    total / projections as f64
}

/// A random unit vector in d dimensions (direction `index` of the projection stream).
pub fn unit_direction(noise: &NoiseSource, index: u64, d: usize) -> Vec<f64> {
    let z = noise.normals(Stream::Projection, 0, index..index + 1, d);
    let norm = z.iter().map(|v| v * v).sum::<f64>().sqrt();
    z.iter().map(|v| v / norm).collect()
}

/// The projections <u, x_i> of row-major samples.
pub fn project(x: &[f64], u: &[f64]) -> Vec<f64> {
    x.chunks(u.len())
        .map(|r| r.iter().zip(u).map(|(a, b)| a * b).sum())
        .collect()
}

/// Pearson's chi-square test of observed counts against expected probabilities; returns
/// (statistic, p-value) with k - 1 degrees of freedom (Wilson-Hilferty approximation).
pub fn chi_square(counts: &[usize], probs: &[f64]) -> (f64, f64) {
    let n: usize = counts.iter().sum();
    let stat: f64 = counts
        .iter()
        .zip(probs)
        .map(|(c, p)| {
            let e = p * n as f64;
            (*c as f64 - e).powi(2) / e
        })
        .sum();
    let k = (counts.len().max(2) - 1) as f64;
    // (X / k)^(1/3) is close to normal with mean 1 - 2/(9k) and variance 2/(9k).
    let z = ((stat / k).cbrt() - (1.0 - 2.0 / (9.0 * k))) / (2.0 / (9.0 * k)).sqrt();
    (stat, 1.0 - normal_cdf(z))
}

/// The least-squares slope of ln(y) against ln(x): for errors against evaluations, minus the
/// observed order of convergence.
pub fn loglog_slope(x: &[f64], y: &[f64]) -> f64 {
    let xs: Vec<f64> = x.iter().map(|v| v.ln()).collect();
    let ys: Vec<f64> = y.iter().map(|v| v.ln()).collect();
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let cov: f64 = xs.iter().zip(&ys).map(|(a, b)| (a - mx) * (b - my)).sum();
    let var: f64 = xs.iter().map(|a| (a - mx) * (a - mx)).sum();
    cov / var
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loglog_slope_of_a_power_law_is_its_exponent() {
        let x = [10.0, 20.0, 40.0, 80.0];
        let y: Vec<f64> = x.iter().map(|v: &f64| 3.0 * v.powf(-2.5)).collect();
        assert!((loglog_slope(&x, &y) + 2.5).abs() < 1e-12);
    }

    /// For N(mu, 1) against N(0, 1) the energy distance is 2 E|N(mu, 2)| - 4 / sqrt(pi), with
    /// E|N(m, s^2)| = s sqrt(2/pi) e^(-m^2 / 2s^2) + m (1 - 2 Phi(-m/s)). Over 20 independent
    /// samples the mean excess is within 4 standard errors of that (of 0 for mu = 0).
    #[test]
    fn excess_energy_distance_is_the_closed_form_above_a_zero_floor() {
        let noise = NoiseSource::new(21);
        let n = 400u64;
        for mu in [0.0f64, 0.5] {
            let s = 2f64.sqrt();
            let abs_mean = s * (2.0 / std::f64::consts::PI).sqrt() * (-mu * mu / 4.0).exp()
                + mu * (1.0 - 2.0 * normal_cdf(-mu / s));
            let truth = 2.0 * abs_mean - 4.0 / std::f64::consts::PI.sqrt();
            let runs: Vec<f64> = (0..20u64)
                .map(|r| {
                    let x: Vec<f64> = noise
                        .normals(Stream::Other, r, 0..n, 1)
                        .iter()
                        .map(|v| v + mu)
                        .collect();
                    let mut reference =
                        |k: usize| noise.normals(Stream::Other, 1000 + 100 * r + k as u64, 0..n, 1);
                    excess_energy_distance(&x, 1, 3, &mut reference).excess
                })
                .collect();
            let m = runs.iter().sum::<f64>() / 20.0;
            let sd = (runs.iter().map(|v| (v - m).powi(2)).sum::<f64>() / 19.0).sqrt();
            assert!(
                (m - truth).abs() < 4.0 * sd / 20f64.sqrt(),
                "mu {mu}: mean excess {m} (sd {sd}), closed form {truth}"
            );
        }
    }

    #[test]
    fn normal_cdf_known_values() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-15);
        assert!((normal_cdf(1.959963984540054) - 0.975).abs() < 1e-12);
        assert!((normal_cdf(-3.0) - 0.0013498980316301).abs() < 1e-13);
    }

    /// Q(lambda) at tabulated points (Kolmogorov distribution: 1.36 -> 0.049, 1.63 -> 0.0098).
    #[test]
    fn kolmogorov_tail_matches_tables() {
        assert!((kolmogorov_q(1.3581) - 0.05).abs() < 5e-4);
        assert!((kolmogorov_q(1.6276) - 0.01).abs() < 2e-4);
        assert!((kolmogorov_q(0.8276) - 0.5).abs() < 1e-3);
        // The inverse: at n = 10,000, p = 0.001 is D = 1.9495 / (100 + 0.12 + 0.0011).
        let d = ks_critical(10_000, 1e-3);
        assert!((ks_p_value(d, 1e4) - 1e-3).abs() < 1e-9);
        assert!((d - 1.9495 / 100.1211).abs() < 1e-4, "{d}");
    }

    /// Under the null, p-values are uniform: of 200 KS tests at level 0.05 about 10 reject;
    /// the count is Binomial(200, 0.05), so more than 25 would be a 4.9-sigma event.
    #[test]
    fn ks_p_values_are_calibrated_and_detect_a_shift() {
        let noise = NoiseSource::new(9);
        let mut rejections = 0;
        for r in 0..200u64 {
            let z = noise.normals(Stream::Other, r, 0..500, 1);
            if ks_one_sample(&z, normal_cdf).p_value < 0.05 {
                rejections += 1;
            }
        }
        assert!(rejections <= 25, "{rejections} of 200 rejected");
        let z = noise.normals(Stream::Other, 999, 0..2000, 1);
        let shifted: Vec<f64> = z.iter().map(|v| v + 0.2).collect();
        assert!(ks_one_sample(&shifted, normal_cdf).p_value < 1e-6);
        let w = noise.normals(Stream::Other, 1000, 0..2000, 1);
        assert!(ks_two_sample(&z, &w).p_value > 1e-3);
        assert!(ks_two_sample(&shifted, &w).p_value < 1e-6);
    }

    #[test]
    fn ks_handles_a_point_mass() {
        let x = vec![0.4; 1000];
        let step = |v: f64| if v >= 0.4 { 1.0 } else { 0.0 };
        assert_eq!(ks_one_sample(&x, step).statistic, 0.0);
        let off = vec![0.41; 1000];
        assert_eq!(ks_one_sample(&off, step).statistic, 1.0);
    }

    /// Mean and standard error of an estimator over `reps` independent draws.
    fn replicate(reps: u64, f: impl Fn(u64) -> f64) -> (f64, f64) {
        let v: Vec<f64> = (0..reps).map(f).collect();
        let m = v.iter().sum::<f64>() / reps as f64;
        let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (reps - 1) as f64;
        (m, (var / reps as f64).sqrt())
    }

    /// Against closed forms for N(0,1) vs N(mu,1), each estimator's mean over 12 independent
    /// draws within 5 standard errors (measured from the same draws):
    /// W1 = |mu|; energy distance = 2 E|mu + sqrt2 Z| - 2 E|sqrt2 Z| with
    /// E|m + sZ| = s sqrt(2/pi) exp(-m^2/2s^2) + m (1 - 2 Phi(-m/s)); sliced W1 of a 2-D shift
    /// (mu, 0) = mu E|u_x| = 2 mu / pi; and an energy distance of 0 between equal laws.
    #[test]
    fn distances_match_gaussian_closed_forms() {
        let n = 1000u64;
        let mu = 0.5;
        let draw = |seed: u64, stream_step: u64, d: usize, shift: f64| -> Vec<f64> {
            NoiseSource::new(seed)
                .normals(Stream::Other, stream_step, 0..n, d)
                .chunks(d)
                .flat_map(|r| {
                    let mut r = r.to_vec();
                    r[0] += shift;
                    r
                })
                .collect()
        };
        let check = |name: &str, (m, se): (f64, f64), want: f64| {
            assert!((m - want).abs() < 5.0 * se, "{name}: {m} +- {se} vs {want}");
        };
        check(
            "W1",
            replicate(12, |s| {
                wasserstein_1d(&draw(s, 0, 1, 0.0), &draw(s, 1, 1, mu))
            }),
            mu,
        );
        let e_abs = |m: f64, s: f64| {
            s * (2.0 / std::f64::consts::PI).sqrt() * (-m * m / (2.0 * s * s)).exp()
                + m * (1.0 - 2.0 * normal_cdf(-m / s))
        };
        let want = 2.0 * e_abs(mu, 2f64.sqrt()) - 2.0 * e_abs(0.0, 2f64.sqrt());
        check(
            "energy",
            replicate(12, |s| {
                energy_distance(&draw(s, 0, 1, 0.0), &draw(s, 1, 1, mu), 1)
            }),
            want,
        );
        check(
            "energy null",
            replicate(12, |s| {
                energy_distance(&draw(s, 0, 2, 0.0), &draw(s, 1, 2, 0.0), 2)
            }),
            0.0,
        );
        check(
            "sliced W1",
            replicate(12, |s| {
                sliced_wasserstein(
                    &draw(s, 0, 2, 0.0),
                    &draw(s, 1, 2, mu),
                    2,
                    64,
                    &NoiseSource::new(s),
                )
            }),
            2.0 * mu / std::f64::consts::PI,
        );
    }

    #[test]
    fn chi_square_accepts_the_right_weights_and_rejects_wrong_ones() {
        let (_, p) = chi_square(&[250, 250, 250, 250], &[0.25; 4]);
        assert!(p > 0.5);
        let (_, p) = chi_square(&[400, 200, 200, 200], &[0.25; 4]);
        assert!(p < 1e-6);
    }
}
