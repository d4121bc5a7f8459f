//! Figures and pictures the commands write, built from plain numbers and the core's closed
//! forms.

use std::path::Path;

use anyhow::{Context, Result};
use diffuse_core::samplers::level_at_step;
use diffuse_core::tensor::{from_flat, to_vec};
use diffuse_core::{Denoiser, Mixture, Schedule, device};
use diffuse_plot::{Figure, Heatmap, Hist, Series, Style, heatmap, histogram, lines};

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

/// Samples against a reference draw, as a reader compares them: in 1-D two histograms with the
/// density `theory` on top (at `path_1d`), in 2-D a scatter of both (at `path_2d`); nothing in
/// higher dimensions.
#[allow(clippy::too_many_arguments)]
pub fn versus(
    path_1d: &Path,
    path_2d: &Path,
    title: &str,
    samples: (&str, &[f64]),
    reference: (&str, &[f64]),
    d: usize,
    theory: Option<&Mixture>,
    theory_label: &str,
) -> Result<()> {
    match d {
        1 => histogram_with_theory(
            path_1d,
            title,
            vec![
                Hist {
                    label: samples.0.into(),
                    values: samples.1.to_vec(),
                    color: 0,
                },
                Hist {
                    label: reference.0.into(),
                    values: reference.1.to_vec(),
                    color: 1,
                },
            ],
            theory,
            theory_label,
        ),
        2 => scatter_vs(path_2d, title, samples.1, reference.1),
        _ => Ok(()),
    }
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
    diffuse_plot::scatter(path, &Figure::new(title, "x0", "x1").equal_aspect(), &sets)?;
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

/// Seed 004's picture: the marginal density q_t(x) over (t, x), with paths on top.
pub fn density_map(
    path: &Path,
    m: &Mixture,
    sched: &Schedule,
    to: usize,
    traj: &[Vec<(f64, f64)>],
    data: &[f64],
) -> Result<()> {
    let spread = 3.0 * m.stds().iter().copied().fold(1.0, f64::max);
    let (lo, hi) = diffuse_plot::padded_range(
        m.means()
            .iter()
            .map(|v| v[0] - spread)
            .chain(m.means().iter().map(|v| v[0] + spread))
            .chain(traj.iter().flatten().map(|p| p.1))
            .chain(data.iter().copied().take(1000)),
    );
    let xs = grid(lo, hi, 240);
    let columns: Vec<Vec<f64>> = (1..=to.max(1))
        .map(|t| {
            let q = m.diffused(sched.alpha_bar(t));
            xs.iter().map(|x| q.log_density(&[*x]).exp()).collect()
        })
        .collect();
    let mut all: Vec<f64> = columns
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    all.sort_by(f64::total_cmp);
    let v_max = all.get(all.len() * 99 / 100).copied();
    let overlay: Vec<Series> = traj
        .iter()
        .map(|p| Series::line("", p.clone(), 1).styled(Style::Line(1)))
        .collect();
    heatmap(
        path,
        &Figure::new("Marginal density q_t(x) with paths", "step t", "x"),
        &Heatmap {
            values: columns,
            x_range: (0.0, to.max(1) as f64),
            y_range: (lo, hi),
            v_max,
        },
        &overlay,
    )?;
    Ok(())
}

/// Seed 000's "best guess of z against x_t": a denoiser's eps-hat(x, t) at a few steps.
pub fn guess_plot(
    path: &Path,
    title: &str,
    den: &dyn Denoiser,
    sched: &Schedule,
    from: usize,
    x: &[f64],
    reference: &[f64],
) -> Result<()> {
    let (lo, hi) = diffuse_plot::padded_range(x.iter().chain(reference).copied());
    let (lo, hi) = (lo.min(-3.0), hi.max(3.0));
    let xs = grid(lo, hi, 300);
    let xt = from_flat(&xs, xs.len(), 1, &device::default_device());
    let mut series = vec![];
    let mut steps: Vec<usize> = [from, from * 3 / 4, from / 2, from / 4, from / 10, 1]
        .into_iter()
        .filter(|t| *t >= 1)
        .collect();
    steps.dedup();
    for (i, t) in steps.iter().enumerate() {
        let eps = to_vec(&den.predict(&xt, level_at_step(sched, *t))?.eps())?;
        // Near t = 0 the guess is steep (slope 1/sqrt(1 - alpha-bar)); the figure cuts a line
        // where it leaves the range instead of drawing it along the frame.
        series.push(Series::line(
            format!("t = {t}"),
            xs.iter().copied().zip(eps).collect(),
            i,
        ));
    }
    lines(
        path,
        &Figure::new(title, "x_t", "guessed z").y_range(-4.5, 4.5),
        &series,
    )?;
    Ok(())
}

/// The loss per step and its average over a window of 100 steps (seed 000).
pub fn loss_plot(path: &Path, losses: &[(usize, f64)]) -> Result<()> {
    let raw: Vec<(f64, f64)> = losses.iter().map(|(k, l)| (*k as f64, *l)).collect();
    let w = 100.min(losses.len().max(1));
    let avg: Vec<(f64, f64)> = losses
        .windows(w)
        .map(|win| {
            (
                win[w - 1].0 as f64,
                win.iter().map(|p| p.1).sum::<f64>() / w as f64,
            )
        })
        .collect();
    // Each step's loss as faint dots (a line through thousands of noisy steps is a solid
    // block), their running mean as the line to read, on a log axis: a loss falls by decades.
    let raw = thin(raw, 4000);
    lines(
        path,
        &Figure::new(
            "Training loss",
            "step",
            "MSE of the noise guess (log scale)",
        )
        .y_log(),
        &[
            Series::points("per step", raw, 7).styled(Style::Points(1, 0.25)),
            Series::line(format!("mean of {w} steps"), avg, 3),
        ],
    )?;
    Ok(())
}

/// At most about `max` of `points`, evenly spaced (a figure of 100,000 dots shows no more than
/// one of 4,000).
fn thin(points: Vec<(f64, f64)>, max: usize) -> Vec<(f64, f64)> {
    let every = points.len().div_ceil(max.max(1)).max(1);
    points.into_iter().step_by(every).collect()
}

/// The reverse process as a looping GIF: one grid of the filmed images per sampler step, the
/// last held for two seconds.
pub fn animate(path: &Path, frames: &[Vec<f64>], h: usize, w: usize) -> Result<()> {
    use diffuse_data::images::{grid, to_pixels, write_gif};
    let mut tiles = vec![];
    let (mut gw, mut gh) = (0, 0);
    for f in frames {
        let images: Vec<Vec<u8>> = f.chunks(h * w).map(to_pixels).collect();
        let (g, a, b) = grid(&images, w, h, 1, 8);
        (gw, gh) = (a, b);
        tiles.push(g);
    }
    let mut delays = vec![12u16; tiles.len()];
    if let Some(last) = delays.last_mut() {
        *last = 200;
    }
    write_gif(path, &tiles, gw, gh, 1, &delays)?;
    Ok(())
}

/// Each sample as `dir/images/NNNN.png` (8-bit grayscale, the training size) and the first 100
/// as `dir/grid.png`.
pub fn write_images(dir: &Path, x: &[f64], h: usize, w: usize) -> Result<()> {
    use diffuse_data::images::{grid, to_pixels, write_png};
    let folder = dir.join("images");
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("cannot create {}", folder.display()))?;
    let images: Vec<Vec<u8>> = x.chunks(h * w).map(to_pixels).collect();
    for (i, px) in images.iter().enumerate() {
        write_png(&folder.join(format!("{i:04}.png")), px, w, h, 1)?;
    }
    let (g, gw, gh) = grid(&images[..images.len().min(100)], w, h, 1, 10);
    write_png(&dir.join("grid.png"), &g, gw, gh, 1)?;
    Ok(())
}

/// Colour pictures (8-bit RGB, interleaved) as `dir/images/NNNN.png` and all of them (at most
/// 100) tiled in `columns` columns as `dir/<grid_name>`.
pub fn write_rgb_images(
    dir: &Path,
    images: &[Vec<u8>],
    w: usize,
    h: usize,
    columns: usize,
    grid_name: &str,
) -> Result<()> {
    use diffuse_data::images::{grid, write_png};
    let folder = dir.join("images");
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("cannot create {}", folder.display()))?;
    for (i, px) in images.iter().enumerate() {
        write_png(&folder.join(format!("{i:04}.png")), px, w, h, 3)?;
    }
    let (g, gw, gh) = grid(&images[..images.len().min(100)], w, h, 3, columns);
    write_png(&dir.join(grid_name), &g, gw, gh, 3)?;
    Ok(())
}

/// Colour frames (each a list of RGB pictures, tiled `columns` wide) as a looping GIF, the last
/// frame held for two seconds.
pub fn animate_rgb(
    path: &Path,
    frames: &[Vec<Vec<u8>>],
    w: usize,
    h: usize,
    columns: usize,
    delay: u16,
) -> Result<()> {
    use diffuse_data::images::{grid, write_gif};
    let mut tiles = vec![];
    let (mut gw, mut gh) = (0, 0);
    for f in frames {
        let (g, a, b) = grid(f, w, h, 3, columns);
        (gw, gh) = (a, b);
        tiles.push(g);
    }
    let mut delays = vec![delay; tiles.len()];
    if let Some(last) = delays.last_mut() {
        *last = 200;
    }
    write_gif(path, &tiles, gw, gh, 3, &delays)?;
    Ok(())
}
