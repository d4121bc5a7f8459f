//! Evaluation protocols: samples against a law in closed form or fresh draws of the data (KS
//! along projections, energy distances, the excess energy distance with its reference rows),
//! chains against their stationary law, seed 000's prompt check; and (classifier.rs) images
//! judged by a classifier; (colour.rs) colour Fashion-MNIST pictures judged by class and colour;
//! (prompts.rs) a text-to-image model's prompts of every (colour, class) pair, judged so.

mod classifier;
mod colour;
mod prompts;

pub use classifier::{
    ClassifierRun, Verdict, image_set, judge_images, shipped_verdict, test_split, train_classifier,
};
pub use colour::{ColourJudge, image_files, judge_colour_images, parse_pair};
pub use prompts::{Judged, PromptCheck, judge_prompts, pair_prompts, summarise};

use anyhow::{Result, bail};
use diffuse_core::Mixture;
use diffuse_core::NoiseSource;
use diffuse_core::metrics::{
    ExcessEnergy, chi_square, energy_distance, excess_energy_distance, ks_one_sample,
    ks_two_sample, project, sliced_wasserstein, unit_direction,
};
use diffuse_data::{Dataset, Source, Table};

use crate::positive;
use crate::report::Report;

/// Reference draws for the excess energy distance start at this row of the data stream, far
/// from the rows other commands use, so that `sample` and `eval` with one seed compare
/// against the same draws.
const EXCESS_ROWS: u64 = 1 << 43;

/// Mean and unbiased variance.
pub fn mean_var(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let v = x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, v)
}

/// The excess energy distance of the first (at most 2,000) rows of `x` to `data`, averaged over
/// 5 pairs of fresh draws; None for a data file (it has no independent draws) and for images
/// (O(n^2) distances between pixel vectors say little about pictures and cost minutes).
pub fn excess_energy(
    x: &[f64],
    d: usize,
    data: &Dataset,
    noise: &NoiseSource,
) -> Option<(usize, ExcessEnergy)> {
    if matches!(data.source, Source::Table(_) | Source::Images(_)) {
        return None;
    }
    let m = (x.len() / d).min(2000) as u64;
    let mut reference = |k: usize| {
        let start = EXCESS_ROWS + k as u64 * m;
        data.sample(noise, start..start + m)
    };
    let e = excess_energy_distance(&x[..m as usize * d], d, 5, &mut reference);
    Some((m as usize, e))
}

/// [`excess_energy`] as a report (empty where it does not apply).
pub fn excess_energy_report(x: &[f64], d: usize, data: &Dataset, noise: &NoiseSource) -> Report {
    let mut r = Report::new();
    if let Some((m, e)) = excess_energy(x, d, data, noise) {
        r.set("excess_energy_n", m);
        r.set("excess_energy_draws", e.draws);
        r.num("energy_distance_mean", e.distance);
        r.num("energy_distance_floor", e.floor);
        r.num("excess_energy_distance", e.excess);
    }
    if let Source::Mixture(q) = &data.source {
        r.extend(near_atoms(x, d, q));
    }
    r
}

/// For data made of point masses (seed 004's four points): how many samples ended near one, by
/// atom, within a sixth of the smallest spacing between atoms (1 for seed 004's {-15, -5, 1,
/// 15}), and whether those came in the data's proportions (chi-square); empty for other data.
pub fn near_atoms(x: &[f64], d: usize, q: &Mixture) -> Report {
    let mut r = Report::new();
    let atoms = q.means();
    if atoms.len() < 2 || q.stds().iter().any(|s| *s != 0.0) {
        return r;
    }
    let mut spacing = f64::INFINITY;
    for (i, a) in atoms.iter().enumerate() {
        for b in &atoms[..i] {
            let d2: f64 = a.iter().zip(b).map(|(u, v)| (u - v) * (u - v)).sum();
            spacing = spacing.min(d2.sqrt());
        }
    }
    let radius = spacing / 6.0;
    let mut counts = vec![0usize; atoms.len()];
    for row in x.chunks(d) {
        let (c, dist) = nearest(atoms, row);
        if dist <= radius {
            counts[c] += 1;
        }
    }
    let near: usize = counts.iter().sum();
    r.num("atom_radius", radius);
    r.num(
        "fraction_within_atom_radius",
        near as f64 / (x.len() / d).max(1) as f64,
    );
    r.set("atom_counts_within_radius", counts.clone());
    if near > 0 {
        r.num(
            "atom_weights_chi_square_p",
            chi_square(&counts, q.weights()).1,
        );
    }
    r
}

/// The directions along which samples of dimension d are compared: the axis in 1-D, else `k`
/// seeded random unit vectors.
fn directions(d: usize, k: usize, noise: &NoiseSource) -> Vec<Vec<f64>> {
    if d == 1 {
        vec![vec![1.0]]
    } else {
        (0..k as u64).map(|i| unit_direction(noise, i, d)).collect()
    }
}

/// Samples x_B of a reverse run against a fresh draw `reference` of q_B and, when known, q_B
/// itself (`theory`): the smallest KS p-value over 8 projections against each, the energy
/// distance (2-D and up), and for point masses at B = 0 how far samples ended from them and
/// whether they were reached in the right proportions (chi-square).
pub fn against_marginal(
    x: &[f64],
    reference: &[f64],
    d: usize,
    theory: Option<&Mixture>,
    to: usize,
    noise: &NoiseSource,
) -> Report {
    let mut out = Report::new();
    // A KS test needs a continuous CDF: point masses are judged by distance and counts.
    let continuous = theory.filter(|q| q.is_continuous());
    let dirs = directions(d, 8, noise);
    let (mut p_ref, mut p_theory) = (f64::INFINITY, f64::INFINITY);
    for u in &dirs {
        let px = project(x, u);
        p_ref = p_ref.min(ks_two_sample(&px, &project(reference, u)).p_value);
        if let Some(q) = continuous {
            let qu = q.projected(u);
            p_theory = p_theory.min(ks_one_sample(&px, |v| qu.cdf_1d(v)).p_value);
        }
    }
    out.set("projections", dirs.len());
    out.num("ks_vs_diffused_reference_p", p_ref);
    if continuous.is_some() {
        out.num("ks_vs_theory_p", p_theory);
    }
    if d > 1 {
        let m = (x.len() / d).min(2000) * d;
        out.num(
            "energy_distance_vs_reference",
            energy_distance(&x[..m], &reference[..m], d),
        );
    }
    if let Some(q) = theory.filter(|q| to == 0 && q.stds().iter().all(|s| *s == 0.0)) {
        let mut counts = vec![0usize; q.weights().len()];
        let mut worst: f64 = 0.0;
        for row in x.chunks(d) {
            let (c, dist) = nearest(q.means(), row);
            counts[c] += 1;
            worst = worst.max(dist);
        }
        out.num("max_distance_to_nearest_atom", worst);
        out.set("atom_counts", counts.clone());
        if counts.len() > 1 {
            let (stat, p) = chi_square(&counts, q.weights());
            out.num("chi_square", stat);
            out.num("chi_square_p", p);
        }
    }
    out
}

/// The index of the point nearest to `row`, and its Euclidean distance.
fn nearest(points: &[Vec<f64>], row: &[f64]) -> (usize, f64) {
    points
        .iter()
        .enumerate()
        .map(|(c, mu)| {
            let d2: f64 = mu.iter().zip(row).map(|(a, b)| (a - b) * (a - b)).sum();
            (c, d2.sqrt())
        })
        .fold(
            (0, f64::INFINITY),
            |best, cur| {
                if cur.1 < best.1 { cur } else { best }
            },
        )
}

/// Seed 000's prompt: the fraction of samples on the side `label` asks for ("right": first
/// coordinate at or above zero; anything else: below).
pub fn fraction_matching_sign(x: &[f64], d: usize, label: &str) -> f64 {
    let want_right = label == "right";
    let hits = x.chunks(d).filter(|r| (r[0] >= 0.0) == want_right).count();
    hits as f64 / (x.len() / d).max(1) as f64
}

/// A model's samples against its training data.
pub struct DataComparison {
    /// The data.
    pub data: Dataset,
    /// A fresh draw of it (rows n..2n).
    pub reference: Vec<f64>,
    /// The energy distance to it and, when asked, the excess energy distance.
    pub report: Report,
}

/// Samples `x` of a model trained on `spec` against `n` fresh draws of it (rows n..2n); None
/// when the spec no longer parses (a file that moved). `excess`: also the excess energy
/// distance (for samples asked for nothing in particular).
pub fn against_data(
    spec: &str,
    x: &[f64],
    d: usize,
    n: usize,
    seed: u64,
    excess: bool,
) -> Option<DataComparison> {
    let data = Dataset::parse(spec).ok()?;
    let noise = NoiseSource::new(seed);
    let reference = data.sample(&noise, n as u64..2 * n as u64);
    let m = n.min(2000);
    let mut report = Report::new();
    report.num(
        "energy_distance_vs_data",
        energy_distance(&x[..m * d], &reference[..m * d], d),
    );
    if excess {
        report.extend(excess_energy_report(x, d, &data, &noise));
    }
    Some(DataComparison {
        data,
        reference,
        report,
    })
}

/// The most random directions [`against_law`] takes.
pub const MAX_PROJECTIONS: usize = 100_000;

/// How close samples `table` are to the law of `data`: per-coordinate moments, KS tests along
/// `projections` random directions (two-sample against the data, one-sample against its
/// closed form), the energy distance on at most `max_energy_n` rows, the excess energy
/// distance, sliced Wasserstein-1.
pub fn against_law(
    table: &Table,
    data: &Dataset,
    projections: usize,
    max_energy_n: usize,
    seed: u64,
) -> Result<Report> {
    positive("--projections", projections)?;
    positive("--max-energy-n", max_energy_n)?;
    // Each direction sorts both samples twice (KS and sliced Wasserstein); the smallest
    // p-value and the average settle long before this many.
    if projections > MAX_PROJECTIONS {
        bail!(
            "--projections {projections} is more than {MAX_PROJECTIONS}: each costs sorts of \
             both samples, and the measures settle long before"
        );
    }
    let d = table.dim();
    // The directions, and the projections of both samples on one of them.
    crate::budget::check(
        &format!("--projections {projections}"),
        projections as f64 * (d as f64 * 8.0 + 24.0) + (table.len() as f64) * 8.0 * 4.0,
    )?;
    let x = &table.values;
    let n = table.len();
    let noise = NoiseSource::new(seed);
    // The comparison sample: the data file itself, or a fresh draw of the same size.
    let y = match &data.source {
        Source::Table(t) => t.values.clone(),
        _ => data.sample(&noise, 0..n as u64),
    };
    let mut out = Report::new();
    out.set("n", n);
    out.set("reference_n", y.len() / d);
    for j in 0..d {
        let (m, v) = mean_var(&x.iter().skip(j).step_by(d).copied().collect::<Vec<_>>());
        out.num(&format!("mean_{j}"), m);
        out.num(&format!("std_{j}"), v.sqrt());
    }
    let dirs = directions(d, projections, &noise);
    let (mut p_two, mut p_theory, mut d_theory) = (f64::INFINITY, f64::INFINITY, 0.0f64);
    for u in &dirs {
        let px = project(x, u);
        p_two = p_two.min(ks_two_sample(&px, &project(&y, u)).p_value);
        if let Some(m) = data.analytic() {
            let q = m.projected(u);
            let ks = ks_one_sample(&px, |v| q.cdf_1d(v));
            p_theory = p_theory.min(ks.p_value);
            d_theory = d_theory.max(ks.statistic);
        }
    }
    out.set("projections", dirs.len());
    out.num("ks_two_sample_min_p", p_two);
    if data.analytic().is_some() {
        out.num("ks_statistic", d_theory);
        out.num("ks_min_p", p_theory);
        // Bonferroni: the smallest of several p-values, times their number.
        out.num("ks_p_bonferroni", (p_theory * dirs.len() as f64).min(1.0));
    }
    let m = n.min(y.len() / d).min(max_energy_n);
    out.set("energy_n", m);
    out.num(
        "energy_distance",
        energy_distance(&x[..m * d], &y[..m * d], d),
    );
    out.extend(excess_energy_report(x, d, data, &noise));
    out.num(
        "sliced_wasserstein",
        sliced_wasserstein(x, &y, d, projections, &noise),
    );
    Ok(out)
}

/// Final states of chains against their stationary law exp(-E)/Z: mean, variance (and the law's),
/// and the KS test.
pub fn against_stationary(energy: &diffuse_core::mcmc::Energy, states: &[f64]) -> Report {
    let (m, v) = mean_var(states);
    let ks = ks_one_sample(states, |x| energy.stationary_cdf(x));
    let mut out = Report::new();
    out.num("mean", m);
    out.num("variance", v);
    out.num("stationary_variance", energy.stationary_variance());
    out.num("ks_statistic", ks.statistic);
    out.num("ks_p_value", ks.p_value);
    out
}

/// The forward process step by step against its closed-form jump (two-sample KS, along 8
/// projections beyond 1-D), and both against q_t itself when it is known (`theory`, continuous).
pub fn step_vs_closed_form(
    stepped: &[f64],
    jumped: &[f64],
    d: usize,
    theory: Option<&Mixture>,
    noise: &NoiseSource,
) -> Report {
    let mut out = Report::new();
    let (m, v) = mean_var(&stepped.iter().step_by(d).copied().collect::<Vec<_>>());
    out.num("mean_x0", m);
    out.num("variance_x0", v);
    let dirs = directions(d, 8, noise);
    let mut p_two = f64::INFINITY;
    let (mut p_step, mut p_jump) = (f64::INFINITY, f64::INFINITY);
    for u in &dirs {
        let (ps, pj) = (project(stepped, u), project(jumped, u));
        p_two = p_two.min(ks_two_sample(&ps, &pj).p_value);
        if let Some(q) = theory {
            let qu = q.projected(u);
            p_step = p_step.min(ks_one_sample(&ps, |x| qu.cdf_1d(x)).p_value);
            p_jump = p_jump.min(ks_one_sample(&pj, |x| qu.cdf_1d(x)).p_value);
        }
    }
    out.set("projections", dirs.len());
    out.num("ks_step_vs_closed_form_p", p_two);
    if theory.is_some() {
        out.num("ks_step_vs_theory_p", p_step);
        out.num("ks_closed_form_vs_theory_p", p_jump);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seed 004's points: the radius is a sixth of the smallest spacing (6), a sample 1.5 away
    /// from every point is not near one, and the counts by point are tested against the weights.
    #[test]
    fn samples_near_point_masses_are_counted_by_point() {
        let q = Mixture::new(
            vec![0.25; 4],
            vec![vec![-15.0], vec![-5.0], vec![1.0], vec![15.0]],
            vec![0.0; 4],
        )
        .unwrap();
        let x = [-15.2, -5.0, 0.1, 15.9, 2.5, 1.0, -4.5, 14.0];
        let r = near_atoms(&x, 1, &q);
        assert_eq!(r.get("atom_radius").unwrap().as_f64(), Some(1.0));
        assert_eq!(
            r.get("fraction_within_atom_radius").unwrap().as_f64(),
            Some(7.0 / 8.0)
        );
        assert_eq!(
            r.get("atom_counts_within_radius").unwrap(),
            &serde_json::json!([1, 2, 2, 2])
        );
        assert!(
            r.get("atom_weights_chi_square_p")
                .unwrap()
                .as_f64()
                .unwrap()
                > 0.5
        );
        let wide = Mixture::new(vec![1.0], vec![vec![0.0]], vec![1.0]).unwrap();
        assert!(near_atoms(&x, 1, &wide).get("atom_radius").is_none());
    }
}
