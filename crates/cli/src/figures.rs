//! Figures shared by several commands, built from plain numbers and the core's closed forms.

use std::path::Path;

use anyhow::Result;
use diffuse_core::Mixture;
use diffuse_plot::{Figure, Hist, Series, Style, histogram, lines};

/// Paths over time: `paths[i]` is a list of (time, value).
pub fn paths(path: &Path, title: &str, x_label: &str, paths: &[Vec<(f64, f64)>]) -> Result<()> {
    let series: Vec<Series> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| Series::line("", p.clone(), i).styled(Style::Line(1)))
        .collect();
    lines(path, &Figure::new(title, x_label, "x"), &series)?;
    Ok(())
}

/// A grid of `n` points over [lo, hi].
pub fn grid(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    diffuse_core::schedule::linspace(lo, hi, n)
}

/// The density curve of a 1-D mixture over [lo, hi]; point masses (std 0) become spikes drawn
/// as vertical dashed lines up to `height`.
pub fn theory_curves(m: &Mixture, lo: f64, hi: f64, height: f64, label: &str) -> Vec<Series> {
    let atoms: Vec<f64> = m
        .means()
        .iter()
        .zip(m.stds())
        .filter(|(_, s)| **s == 0.0)
        .map(|(mu, _)| mu[0])
        .collect();
    if !atoms.is_empty() {
        return atoms
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let l = if i == 0 {
                    format!("{label} (point masses)")
                } else {
                    String::new()
                };
                Series::line(l, vec![(*a, 0.0), (*a, height)], 3).styled(Style::Dashed)
            })
            .collect();
    }
    let pts = grid(lo, hi, 600)
        .into_iter()
        .map(|x| (x, m.log_density(&[x]).exp()))
        .collect();
    vec![Series::line(label, pts, 3)]
}

/// A density histogram of 1-D samples with the theory curve of `theory` on top.
pub fn histogram_with_theory(
    path: &Path,
    title: &str,
    hists: Vec<Hist>,
    theory: Option<&Mixture>,
    theory_label: &str,
) -> Result<()> {
    let (lo, hi) = diffuse_plot::padded_range(hists.iter().flat_map(|h| h.values.iter().copied()));
    let bins = 80;
    // Height of spikes: the tallest bar.
    let top = hists
        .iter()
        .flat_map(|h| diffuse_plot::density(&h.values, lo, hi, bins))
        .fold(0.0, f64::max);
    let curves = theory
        .map(|m| theory_curves(m, lo, hi, top, theory_label))
        .unwrap_or_default();
    histogram(
        path,
        &Figure::new(title, "x", "density").x_range(lo, hi),
        &hists,
        bins,
        &curves,
    )?;
    Ok(())
}

/// A 2-D scatter of samples against data.
pub fn scatter_vs(path: &Path, title: &str, samples: &[f64], data: &[f64]) -> Result<()> {
    let pts = |v: &[f64]| {
        v.chunks(2)
            .take(3000)
            .map(|r| (r[0], r[1]))
            .collect::<Vec<_>>()
    };
    let sets = [
        Series::points("data", pts(data), 7).styled(Style::Points(2, 0.35)),
        Series::points("samples", pts(samples), 0).styled(Style::Points(2, 0.5)),
    ];
    diffuse_plot::scatter(path, &Figure::new(title, "x0", "x1"), &sets)?;
    Ok(())
}

/// The paths of the first `k` samples (global rows 0..k) of a run drawn in batches, first
/// coordinate against time.
pub struct PathRecorder {
    paths: Vec<Vec<(f64, f64)>>,
    error: Option<diffuse_core::CoreError>,
}

impl PathRecorder {
    /// Records the first `k` samples.
    pub fn new(k: usize) -> Self {
        Self {
            paths: vec![vec![]; k],
            error: None,
        }
    }

    /// Adds time `t` for the rows of `x`, a batch whose first global row is `first`, that are
    /// among the first `k` samples.
    pub fn record(&mut self, first: usize, t: f64, x: &burn::tensor::Tensor<2>) {
        let (k, m) = (self.paths.len(), x.dims()[0]);
        if first >= k || self.error.is_some() {
            return;
        }
        match diffuse_core::tensor::to_vec(&x.clone().slice([0..k.min(first + m) - first, 0..1])) {
            Ok(v) => v
                .iter()
                .enumerate()
                .for_each(|(i, xi)| self.paths[first + i].push((t, *xi))),
            Err(e) => self.error = Some(e),
        }
    }

    /// The paths, or the first error met while reading them.
    pub fn finish(self) -> Result<Vec<Vec<(f64, f64)>>> {
        match self.error {
            Some(e) => Err(e.into()),
            None => Ok(self.paths),
        }
    }
}
