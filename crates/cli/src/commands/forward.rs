//! `diffuse forward`: the forward process step by step and in closed form (seeds 000, 004).

use anyhow::Result;
use diffuse_pipeline::{Forward, diffuse};
use diffuse_plot::Hist;

use crate::args::{DEFAULT_STEPS, ForwardArgs};
use crate::figures::{PathRecorder, density_map, histogram_with_theory, paths, scatter_vs, versus};
use crate::output::Output;
use crate::progress::Bars;

/// `diffuse forward`.
pub fn run(a: &ForwardArgs) -> Result<()> {
    let p = &a.diffusion;
    let request = Forward {
        data: p.data.clone(),
        schedule: p.schedule.clone(),
        steps: p.steps.unwrap_or(DEFAULT_STEPS),
        to: a.to,
        n: p.n,
        batch: p.batch,
        seed: a.common.seed,
    };
    // Paths of the first samples (drawn in 1-D).
    let mut recorder = PathRecorder::new(p.trajectories.min(p.n));
    let f = {
        let mut watch = Bars::watching(Box::new(|rows, t, x| {
            recorder.record(rows.start as usize, t, x);
            Ok(())
        }));
        diffuse(&request, &mut watch)?
    };
    let traj = recorder.finish()?;
    let (d, to, n, sched) = (f.data.dim(), f.to, p.n, &f.schedule);
    let mut out = Output::new(&a.common, "forward")?;
    out.set("data", p.data.clone());
    out.set("schedule", sched.name());
    out.set("steps", p.steps.unwrap_or(DEFAULT_STEPS));
    out.set("to", to);
    out.set("n", n);
    out.set("seed", a.common.seed);
    out.set("closed_form", a.closed_form);
    out.num("alpha_bar", sched.alpha_bar(to));
    let written = if a.closed_form { &f.jumped } else { &f.stepped };
    out.samples(written, d)?;
    out.report(f.report.clone());
    if d == 1 {
        let label = format!("q_{to}(x), closed form");
        versus(
            &out.path("compare.png"),
            &out.path("scatter.png"),
            &format!("Step by step against closed form at step {to}"),
            ("step by step", &f.stepped),
            ("closed form (one jump)", &f.jumped),
            d,
            f.theory.as_ref(),
            &label,
        )?;
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
            f.theory.as_ref(),
            &label,
        )?;
        if !traj.is_empty() {
            paths(
                &out.path("paths.png"),
                &format!("{} forward paths", traj.len()),
                "step t",
                &traj,
            )?;
        }
        if let Some(m) = f.data.analytic() {
            density_map(&out.path("heatmap.png"), m, sched, to, &traj, &f.x0)?;
        }
    } else if d == 2 {
        scatter_vs(
            &out.path("scatter.png"),
            &format!("x at step {to} against the data"),
            written,
            &f.x0,
        )?;
    }
    out.finish()?;
    Ok(())
}
