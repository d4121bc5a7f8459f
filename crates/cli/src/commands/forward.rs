//! `diffuse forward`: the forward process step by step and in closed form (seeds 000, 004).

use anyhow::{Result, bail};
use diffuse_core::metrics::{ks_one_sample, ks_two_sample, project, unit_direction};
use diffuse_core::tensor::{from_flat, to_vec};
use diffuse_core::{Mixture, NoiseSource, Schedule, device, forward};
use diffuse_plot::{Figure, Heatmap, Hist, Series, Style, heatmap};

use super::figures::{PathRecorder, grid, histogram_with_theory, paths, scatter_vs};
use super::{batches, dataset, done, mean_var, positive, schedule};
use crate::args::ForwardArgs;
use crate::output::Output;

/// `diffuse forward`.
pub fn run(a: &ForwardArgs) -> Result<()> {
    let p = &a.diffusion;
    let data = dataset(&p.data)?;
    let sched = schedule(&p.schedule, p.steps)?;
    let to = a.to.unwrap_or(p.steps);
    if to > p.steps {
        bail!("--to {to} is past the schedule's last step {}", p.steps);
    }
    let n = positive("--n", p.n)?;
    positive("--batch", p.batch)?;
    let d = data.dim();
    let mut out = Output::new(a.common.out.as_deref(), "forward")?;
    let noise = NoiseSource::new(a.common.seed);
    let dev = device::default_device();
    let k = p.trajectories.min(n);
    let (mut x0_all, mut stepped, mut jumped) = (vec![], vec![], vec![]);
    let mut paths_rec = PathRecorder::new(if d == 1 { k } else { 0 });
    let bar = crate::progress::bar((n * to.max(1)) as u64, "forward");
    for rows in batches(n, p.batch) {
        let m = (rows.end - rows.start) as usize;
        let x0v = data.sample(&noise, rows.clone());
        let x0 = from_flat(&x0v, m, d, &dev);
        let first = rows.start as usize;
        paths_rec.record(first, 0.0, &x0);
        let x_b = forward::diffuse(x0.clone(), &sched, to, &noise, rows.clone(), &mut |t, x| {
            paths_rec.record(first, t as f64, x);
            bar.inc(m as u64);
        })?;
        let (x_j, _) = forward::jump(x0, &sched, to, &noise, rows)?;
        stepped.extend(to_vec(&x_b)?);
        jumped.extend(to_vec(&x_j)?);
        x0_all.extend(x0v);
    }
    bar.finish_and_clear();
    let traj = paths_rec.finish()?;
    let theory = data.analytic().map(|m| m.diffused(sched.alpha_bar(to)));
    let continuous = theory.as_ref().filter(|q| q.is_continuous());
    out.set("data", p.data.clone());
    out.set("schedule", sched.name());
    out.set("steps", p.steps);
    out.set("to", to);
    out.set("n", n);
    out.set("seed", a.common.seed);
    out.set("closed_form", a.closed_form);
    out.num("alpha_bar", sched.alpha_bar(to));
    let written = if a.closed_form { &jumped } else { &stepped };
    out.samples(written, d)?;
    compare(&mut out, &stepped, &jumped, d, continuous, &noise);
    if d == 1 {
        let label = format!("q_{to}(x), closed form");
        histogram_with_theory(
            &out.path("histogram.png"),
            &format!("x at step {to} of {} ({n} samples)", sched.name()),
            vec![Hist {
                label: if a.closed_form {
                    "closed form"
                } else {
                    "step by step"
                }
                .into(),
                values: written.clone(),
                color: 0,
            }],
            theory.as_ref(),
            &label,
        )?;
        histogram_with_theory(
            &out.path("compare.png"),
            &format!("Step by step vs closed form at step {to}"),
            vec![
                Hist {
                    label: "step by step".into(),
                    values: stepped.clone(),
                    color: 0,
                },
                Hist {
                    label: "closed form (one jump)".into(),
                    values: jumped.clone(),
                    color: 1,
                },
            ],
            theory.as_ref(),
            &label,
        )?;
        if k > 0 {
            paths(
                &out.path("paths.png"),
                &format!("{k} forward paths"),
                "step t",
                &traj,
            )?;
        }
        if let Some(m) = data.analytic() {
            density_map(&out.path("heatmap.png"), m, &sched, to, &traj, &x0_all)?;
        }
    } else if d == 2 {
        scatter_vs(
            &out.path("scatter.png"),
            &format!("x at step {to} against the data"),
            written,
            &x0_all,
        )?;
    }
    done(&out.finish()?);
    Ok(())
}

/// Step-by-step against closed form (two-sample KS, along projections beyond 1-D), and both
/// against the theory when there is one.
fn compare(
    out: &mut Output,
    stepped: &[f64],
    jumped: &[f64],
    d: usize,
    theory: Option<&Mixture>,
    noise: &NoiseSource,
) {
    let (m, v) = mean_var(&stepped.iter().step_by(d).copied().collect::<Vec<_>>());
    out.num("mean_x0", m);
    out.num("variance_x0", v);
    let dirs: Vec<Vec<f64>> = if d == 1 {
        vec![vec![1.0]]
    } else {
        (0..8).map(|i| unit_direction(noise, i, d)).collect()
    };
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
}

/// Seed 004's picture: the marginal density q_t(x) over (t, x), with paths on top.
pub fn density_map(
    path: &std::path::Path,
    m: &Mixture,
    sched: &Schedule,
    to: usize,
    traj: &[Vec<(f64, f64)>],
    data: &[f64],
) -> Result<()> {
    let (lo, hi) = diffuse_plot::padded_range(
        m.means()
            .iter()
            .map(|v| v[0] - 3.0 * m.stds().iter().copied().fold(1.0, f64::max))
            .chain(
                m.means()
                    .iter()
                    .map(|v| v[0] + 3.0 * m.stds().iter().copied().fold(1.0, f64::max)),
            )
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
