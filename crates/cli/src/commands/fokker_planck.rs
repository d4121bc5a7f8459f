//! `diffuse fokker-planck`: Langevin chains against the density's drift-diffusion equation
//! (seed 000, approach 3). Writes densities.png, distance.png and summary.json.

use anyhow::Result;
use diffuse_pipeline::{Dynamics, compare};
use diffuse_plot::{Figure, Hist, Series, Style, histogram, lines};

use crate::args::FokkerPlanckArgs;
use crate::output::Output;
use crate::progress::Bars;

/// `diffuse fokker-planck`.
pub fn run(a: &FokkerPlanckArgs) -> Result<()> {
    let d = Dynamics {
        energy: a.energy.clone(),
        start: a.start,
        chains: a.chains,
        delta: a.delta,
        times: a.times.clone(),
        cells: a.cells,
        seed: a.common.seed,
    };
    // The request is checked before the folder is claimed: a bad flag loses nothing.
    d.check()?;
    let mut out = Output::new(&a.common, "fokker-planck")?;
    let c = compare(&d, &mut Bars::new())?;

    // Where the chains and the densities are: the histograms' range.
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for s in &c.snapshots {
        let (l, h) = diffuse_plot::padded_range(s.states.iter().copied());
        lo = lo.min(l);
        hi = hi.max(h);
    }
    let hists: Vec<Hist> = c
        .snapshots
        .iter()
        .enumerate()
        .map(|(i, s)| Hist {
            // t = steps x delta: 70 x 0.01 is 0.7000000000000001 in floats; the label says 0.7.
            label: format!("chains, t = {}", (s.t * 1e9).round() / 1e9),
            values: s.states.clone(),
            color: i,
        })
        .collect();
    let mut curves: Vec<Series> = c
        .snapshots
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let pts = s
                .density
                .iter()
                .copied()
                .filter(|(x, _)| *x >= lo && *x <= hi)
                .collect();
            Series::line("", pts, i)
        })
        .collect();
    let stationary = (0..=400)
        .map(|i| lo + (hi - lo) * i as f64 / 400.0)
        .map(|x| (x, c.energy.stationary_density(x)))
        .collect();
    curves.push(Series::line("exp(-E) / Z", stationary, 7).styled(Style::Dashed));
    histogram(
        &out.path("densities.png"),
        &Figure::new(
            format!(
                "{} chains (bars) against the Fokker-Planck density (lines), {}",
                a.chains, a.energy
            ),
            "x",
            "density",
        )
        .x_range(lo, hi),
        &hists,
        80,
        &curves,
    )?;

    let col = |k: usize| c.distances.iter().map(|r| (r[0], r[k])).collect::<Vec<_>>();
    let (t0, t1) = c
        .distances
        .first()
        .zip(c.distances.last())
        .map_or((0.0, 1.0), |(f, l)| (f[0], l[0]));
    lines(
        &out.path("distance.png"),
        &Figure::new(
            "KS distances over time (the grey line: sampling noise, p = 0.001)",
            "t = steps x delta",
            "sup |F - G|",
        ),
        &[
            Series::line("chains against the equation", col(1), 0),
            Series::line("chains against exp(-E)/Z", col(2), 1),
            Series::line("equation against exp(-E)/Z", col(3), 2),
            Series::line("", vec![(t0, c.critical), (t1, c.critical)], 7).styled(Style::Dashed),
        ],
    )?;
    if let Some(last) = c.snapshots.last() {
        out.samples(&last.states, 1)?;
    }
    out.report(c.report);
    out.finish()?;
    Ok(())
}
