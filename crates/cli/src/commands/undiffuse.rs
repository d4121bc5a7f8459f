//! `diffuse undiffuse`: the reverse process driven by the exact denoiser of the data (seed 000's
//! `Undiffuse` with the ideal `GuessZ`; seed 004's reverse SDE and probability-flow ODE).

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use diffuse_core::metrics::{
    chi_square, energy_distance, ks_one_sample, ks_two_sample, project, unit_direction,
};
use diffuse_core::samplers::{
    self, BatchNoise, Churn, GridKind, OdeMethod, Sampler, SigmaMethod, SigmaRange, Variance,
    level_at_step,
};
use diffuse_core::tensor::{from_flat, to_vec};
use diffuse_core::{Denoiser, Mixture, NoiseSource, Schedule, device, forward};
use diffuse_plot::{Figure, Hist, Series, lines};

use super::figures::{PathRecorder, grid, histogram_with_theory, paths, scatter_vs};
use super::forward::density_map;
use super::{batches, dataset, done, positive, schedule};
use crate::args::{PriorName, SamplerArgs, SamplerName, UndiffuseArgs, VarianceName};
use crate::output::Output;

pub(crate) fn sampler_name(a: &SamplerArgs) -> String {
    a.sampler
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_string())
}

/// Samples on which an adaptive solver chooses the steps every batch then takes.
const PILOT: usize = 256;

/// The sampler `a` names, for a run over `span` steps that ends at step `to`.
pub(crate) fn sampler(a: &SamplerArgs, span: usize, to: usize) -> Result<Sampler> {
    let given_levels = match a.grid.as_deref().map(GridKind::parse) {
        Some(Ok(GridKind::Given(levels))) => Some(levels.len()),
        _ => None,
    };
    let nfe = match (a.nfe, given_levels) {
        (Some(0), _) => bail!("--nfe must be at least 1 (got 0)"),
        (Some(n), _) => n,
        // A grid of given levels takes one evaluation a level (heun: twice).
        (None, Some(k)) if a.sampler == SamplerName::Heun => 2 * k - 1,
        (None, Some(k)) => k,
        (None, None) => 50.min(span.max(1) * 2),
    };
    let grid_name = a.grid.clone().unwrap_or_else(|| {
        if a.sampler == SamplerName::Ddim {
            "trailing"
        } else {
            "karras"
        }
        .into()
    });
    let grid = GridKind::parse(&grid_name).context("--grid")?;
    let eta = |default: f64| -> Result<f64> {
        let e = a.eta.unwrap_or(default);
        if !(e.is_finite() && e >= 0.0) {
            bail!("--eta must be a non-negative number (got {e})");
        }
        Ok(e)
    };
    let range = SigmaRange {
        max: a.sigma_max,
        min: a.sigma_min,
    };
    let sigma = |method: SigmaMethod, steps: usize| Sampler::Sigma {
        method,
        grid: grid.clone(),
        steps: steps.max(1),
        range,
    };
    let sigma_samplers = [
        SamplerName::Euler,
        SamplerName::EulerAncestral,
        SamplerName::Heun,
        SamplerName::Lms,
        SamplerName::DpmPP2M,
        SamplerName::DpmPP3M,
        SamplerName::DpmPP3MDiffusers,
        SamplerName::Unipc,
    ];
    if range != SigmaRange::FULL && !sigma_samplers.contains(&a.sampler) {
        bail!(
            "--sigma-max and --sigma-min apply to the sigma-grid samplers (euler, heun, lms, dpmpp-*, unipc)"
        );
    }
    if a.grid.is_some()
        && matches!(
            a.sampler,
            SamplerName::Ddpm | SamplerName::Sde | SamplerName::Ode
        )
    {
        bail!(
            "--grid applies to ddim and the sigma-grid samplers (euler, heun, lms, dpmpp-*, unipc), not to {}",
            sampler_name(a)
        );
    }
    Ok(match a.sampler {
        SamplerName::Ddpm => Sampler::Ddpm(match a.variance {
            VarianceName::Posterior => Variance::Posterior,
            VarianceName::Beta => Variance::Beta,
        }),
        SamplerName::Ddim => {
            let GridKind::Timesteps(spacing) = grid else {
                bail!(
                    "--grid {grid_name}: ddim runs on the model's own steps (leading, trailing or linspace)"
                );
            };
            Sampler::Ddim {
                eta: eta(0.0)?,
                spacing,
                steps: nfe.min(span.max(1)),
            }
        }
        SamplerName::Euler => sigma(SigmaMethod::Euler, nfe),
        SamplerName::EulerAncestral => sigma(SigmaMethod::EulerAncestral { eta: eta(1.0)? }, nfe),
        // Heun: two evaluations a step, one on the last step to sigma = 0.
        SamplerName::Heun => {
            let churn = Churn {
                s_churn: a.churn,
                ..Churn::default()
            };
            sigma(
                SigmaMethod::Heun(churn),
                if to == 0 { nfe.div_ceil(2) } else { nfe / 2 },
            )
        }
        SamplerName::Lms => sigma(SigmaMethod::Lms { order: 4 }, nfe),
        SamplerName::DpmPP2M => sigma(SigmaMethod::DpmPP2M, nfe),
        SamplerName::DpmPP3M => sigma(
            SigmaMethod::DpmPP3M {
                diffusers_form: false,
            },
            nfe,
        ),
        SamplerName::DpmPP3MDiffusers => sigma(
            SigmaMethod::DpmPP3M {
                diffusers_form: true,
            },
            nfe,
        ),
        SamplerName::Unipc => sigma(SigmaMethod::UniPc, nfe),
        SamplerName::Sde => Sampler::Sde {
            steps: match a.grid_steps {
                Some(0) => bail!("--grid-steps must be at least 1 (got 0)"),
                Some(g) => g,
                None => 4 * span.max(1),
            },
        },
        SamplerName::Ode => {
            if !(a.tol.is_finite() && a.tol > 0.0) {
                bail!("--tol must be a positive number");
            }
            Sampler::Ode {
                method: OdeMethod::Rk45 {
                    rtol: a.tol,
                    atol: a.tol,
                },
            }
        }
    })
}

fn parse_start(s: &str, d: usize) -> Result<Vec<f64>> {
    let v = s
        .split(',')
        .map(|t| t.trim().parse::<f64>().ok().filter(|x| x.is_finite()))
        .collect::<Option<Vec<f64>>>()
        .with_context(|| format!("--start {s}: expected {d} comma-separated finite numbers"))?;
    if v.len() != d {
        bail!("--start {s} has {} coordinates, the data has {d}", v.len());
    }
    Ok(v)
}

/// `diffuse undiffuse`.
pub fn run(a: &UndiffuseArgs) -> Result<()> {
    let p = &a.diffusion;
    let data = dataset(&p.data)?;
    let sched = schedule(&p.schedule, p.steps)?;
    let from = a.from.unwrap_or(p.steps);
    if from > p.steps {
        bail!("--from {from} is past the schedule's last step {}", p.steps);
    }
    if a.to > from {
        bail!(
            "--to {} must not be after --from {from}: the reverse process runs from A down to B",
            a.to
        );
    }
    let n = positive("--n", p.n)?;
    positive("--batch", p.batch)?;
    positive("--reference", a.reference)?;
    let d = data.dim();
    let start = a.start.as_deref().map(|s| parse_start(s, d)).transpose()?;
    let sampler = sampler(&a.sampling, from - a.to, a.to)?;
    let noise = NoiseSource::new(a.common.seed);
    let dev = device::default_device();
    let exact = data.exact(a.reference, &noise)?;
    let den = exact.denoiser(&dev);
    let mut out = Output::new(a.common.out.as_deref(), "undiffuse")?;

    // x_A for global rows `rows`: a given point, N(0, I), or data diffused to A in closed form.
    let start_of = |rows: std::ops::Range<u64>| -> Result<burn::tensor::Tensor<2>> {
        let m = (rows.end - rows.start) as usize;
        Ok(match (&start, a.prior) {
            (Some(s), _) => from_flat(&s.repeat(m), m, d, &dev),
            (None, PriorName::Normal) => BatchNoise::new(noise, rows).prior(d, &dev),
            (None, PriorName::Diffused) => {
                let x0 = from_flat(&data.sample(&noise, rows.clone()), m, d, &dev);
                forward::jump(x0, &sched, from, &noise, rows)?.0
            }
        })
    };
    // An adaptive solver picks its steps once, on the first samples, and every batch follows them.
    let pilot = start_of(0..n.min(PILOT) as u64)?;
    let fitting = fitting_spinner(&sampler, &den, &sched, &pilot, from)?;
    let fixed = samplers::fix_grid(&sampler, &den, &sched, pilot, from, a.to)?;
    fitting.finish_and_clear();
    let sampler = fixed.sampler.clone();
    let k = if d == 1 { p.trajectories.min(n) } else { 0 };
    let mut paths_rec = PathRecorder::new(k);
    let (mut finals, mut nfe) = (vec![], 0);
    let bar = crate::progress::bar(n as u64, "undiffuse");
    for rows in batches(n, p.batch) {
        let m = (rows.end - rows.start) as usize;
        let batch = BatchNoise::new(noise, rows.clone());
        let x = start_of(rows.clone())?;
        let first = rows.start as usize;
        paths_rec.record(first, from as f64, &x);
        let (x_b, evals) =
            samplers::run(&sampler, &den, &sched, x, from, a.to, &batch, &mut |e| {
                paths_rec.record(first, e.t, e.x)
            })?;
        nfe = evals;
        finals.extend(to_vec(&x_b)?);
        bar.inc(m as u64);
    }
    bar.finish_and_clear();
    let traj = paths_rec.finish()?;
    if finals.iter().any(|v| !v.is_finite()) {
        bail!(
            "the reverse process produced non-finite values: try more --grid-steps or a smaller --tol"
        );
    }

    // A reference draw of q_B: fresh data (rows n..2n) diffused to B in closed form.
    let reference = {
        let rows = n as u64..2 * n as u64;
        let x0 = from_flat(&data.sample(&noise, rows.clone()), n, d, &dev);
        to_vec(&forward::jump(x0, &sched, a.to, &noise, rows)?.0)?
    };
    let theory = data.analytic().map(|m| m.diffused(sched.alpha_bar(a.to)));
    // A KS test needs a continuous CDF: point masses at B = 0 are judged by distance and counts.
    let continuous = theory.as_ref().filter(|q| q.is_continuous());

    out.set("data", p.data.clone());
    out.set("schedule", sched.name());
    out.set("steps", p.steps);
    out.set("sampler", sampler_name(&a.sampling));
    record_sampler(&mut out, &fixed, &a.sampling);
    out.set("from", from);
    out.set("to", a.to);
    out.set(
        "prior",
        if start.is_some() {
            "start point".to_string()
        } else {
            format!("{:?}", a.prior).to_lowercase()
        },
    );
    out.set("n", n);
    out.set("seed", a.common.seed);
    out.set("nfe", nfe);
    if data.analytic().is_none() {
        out.set("exact_denoiser_reference_points", exact.weights().len());
    }
    out.samples(&finals, d)?;
    metrics(
        &mut out,
        &finals,
        &reference,
        d,
        continuous,
        theory.as_ref(),
        a.to,
        &noise,
    );
    if a.to == 0 && d > 1 {
        super::report_excess(&mut out, super::excess_energy(&finals, d, &data, &noise));
    }

    if d == 1 {
        let title = format!(
            "Undiffused to step {} by {} ({n} samples, {nfe} evaluations)",
            a.to,
            sampler_name(&a.sampling)
        );
        histogram_with_theory(
            &out.path("histogram.png"),
            &title,
            vec![Hist {
                label: "undiffused".into(),
                values: finals.clone(),
                color: 0,
            }],
            theory.as_ref(),
            &format!("q_{}(x)", a.to),
        )?;
        histogram_with_theory(
            &out.path("compare.png"),
            &format!(
                "Undiffused from {from} to {} vs diffused from 0 to {}",
                a.to, a.to
            ),
            vec![
                Hist {
                    label: format!("undiffused {from} -> {}", a.to),
                    values: finals.clone(),
                    color: 0,
                },
                Hist {
                    label: format!("diffused 0 -> {}", a.to),
                    values: reference.clone(),
                    color: 1,
                },
            ],
            theory.as_ref(),
            &format!("q_{}(x)", a.to),
        )?;
        if k > 0 {
            paths(
                &out.path("paths.png"),
                &format!("{k} reverse paths ({})", sampler_name(&a.sampling)),
                "step t",
                &traj,
            )?;
        }
        guess_plot(
            &out.path("guess.png"),
            "Best guess of the noise z given x_t (exact denoiser)",
            &den,
            &sched,
            from,
            &finals,
            &reference,
        )?;
        if let Some(m) = data.analytic() {
            density_map(&out.path("heatmap.png"), m, &sched, from, &traj, &reference)?;
        }
    } else if d == 2 {
        scatter_vs(
            &out.path("scatter.png"),
            &format!("Undiffused to step {} against q_{}", a.to, a.to),
            &finals,
            &reference,
        )?;
    }
    done(&out.finish()?);
    Ok(())
}

fn metrics(
    out: &mut Output,
    x: &[f64],
    reference: &[f64],
    d: usize,
    theory: Option<&Mixture>,
    atoms: Option<&Mixture>,
    to: usize,
    noise: &NoiseSource,
) {
    let dirs: Vec<Vec<f64>> = if d == 1 {
        vec![vec![1.0]]
    } else {
        (0..8).map(|i| unit_direction(noise, i, d)).collect()
    };
    let (mut p_ref, mut p_theory) = (f64::INFINITY, f64::INFINITY);
    for u in &dirs {
        let px = project(x, u);
        p_ref = p_ref.min(ks_two_sample(&px, &project(reference, u)).p_value);
        if let Some(q) = theory {
            let qu = q.projected(u);
            p_theory = p_theory.min(ks_one_sample(&px, |v| qu.cdf_1d(v)).p_value);
        }
    }
    out.set("projections", dirs.len());
    out.num("ks_vs_diffused_reference_p", p_ref);
    if theory.is_some() {
        out.num("ks_vs_theory_p", p_theory);
    }
    if d > 1 {
        let m = (x.len() / d).min(2000) * d;
        out.num(
            "energy_distance_vs_reference",
            energy_distance(&x[..m], &reference[..m], d),
        );
    }
    // Point masses at B = 0: how far each sample ended from its nearest atom, and whether the
    // atoms were reached in the right proportions.
    if let Some(q) = atoms.filter(|q| to == 0 && q.stds().iter().all(|s| *s == 0.0)) {
        let mut counts = vec![0usize; q.weights().len()];
        let mut worst: f64 = 0.0;
        for row in x.chunks(d) {
            let (c, dist) = q
                .means()
                .iter()
                .enumerate()
                .map(|(c, mu)| {
                    (
                        c,
                        mu.iter()
                            .zip(row)
                            .map(|(a, b)| (a - b) * (a - b))
                            .sum::<f64>()
                            .sqrt(),
                    )
                })
                .fold(
                    (0, f64::INFINITY),
                    |best, cur| if cur.1 < best.1 { cur } else { best },
                );
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
}

/// Seed 000's "best guess of z against x_t": the exact denoiser's eps-hat(x, t) at a few steps.
pub(crate) fn guess_plot(
    path: &std::path::Path,
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
    let dev = device::default_device();
    let xt = from_flat(&xs, xs.len(), 1, &dev);
    let mut series = vec![];
    let mut steps: Vec<usize> = [from, from * 3 / 4, from / 2, from / 4, from / 10, 1]
        .into_iter()
        .filter(|t| *t >= 1)
        .collect();
    steps.dedup();
    for (i, t) in steps.iter().enumerate() {
        let eps = to_vec(&den.predict(&xt, level_at_step(sched, *t))?.eps())?;
        // Near t = 0 the guess is steep (slope 1/sqrt(1 - alpha-bar)): clip to the plotted range.
        series.push(Series::line(
            format!("t = {t}"),
            xs.iter()
                .copied()
                .zip(eps.into_iter().map(|e| e.clamp(-4.5, 4.5)))
                .collect(),
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

/// Records the settings of the sampler that ran (after [`samplers::fix_grid`]) in a summary:
/// its grid, and for a fitted or adaptive grid the levels chosen and what choosing them cost.
pub(crate) fn record_sampler(out: &mut Output, fixed: &samplers::Fixed, a: &SamplerArgs) {
    match &fixed.sampler {
        Sampler::Ddpm(v) => out.set("variance", format!("{v:?}").to_lowercase()),
        Sampler::Sde { steps } => out.set("grid_steps", *steps),
        Sampler::Ode {
            method: OdeMethod::Dopri5(grid),
        } => {
            out.num("tol", a.tol);
            out.set("adaptive_steps", grid.len() - 1);
        }
        Sampler::Ddim {
            eta,
            spacing,
            steps,
        } => {
            out.num("eta", *eta);
            out.set("grid", format!("{spacing:?}").to_lowercase());
            out.set("grid_steps", *steps);
        }
        Sampler::Sigma {
            grid, steps, range, ..
        } => {
            let name = match grid {
                GridKind::Given(levels) => {
                    out.set("grid_sigmas", levels.clone());
                    if a.grid.as_deref() == Some("fitted") {
                        "fitted".to_string()
                    } else {
                        "sigmas".to_string()
                    }
                }
                GridKind::Karras { rho } => format!("karras:{rho}"),
                other => format!("{other:?}").to_lowercase(),
            };
            out.set("grid", name);
            out.set("grid_steps", *steps);
            if let Some(v) = range.max {
                out.num("sigma_max", v);
            }
            if let Some(v) = range.min {
                out.num("sigma_min", v);
            }
        }
        Sampler::Ode { .. } => {}
    }
    if fixed.pilot_nfe > 0 {
        // Evaluations on the pilot batch that chose the grid, not counted in nfe.
        out.set("pilot_nfe", fixed.pilot_nfe);
    }
    if let Some(fit) = &fixed.fit {
        // Mean absolute end-point error on the pilot against an accurate solve.
        out.num("fit_error_exponential", fit.error_exponential);
        out.num("fit_error_karras", fit.error_karras);
        out.num("fit_error_fitted", fit.error_fitted);
    }
}

/// A spinner while a `--grid fitted` grid is fitted; hidden otherwise. When one evaluation on
/// the pilot says the fit will take more than a minute, says how long first.
pub(crate) fn fitting_spinner(
    sampler: &Sampler,
    den: &dyn Denoiser,
    sched: &Schedule,
    pilot: &burn::tensor::Tensor<2>,
    from: usize,
) -> Result<indicatif::ProgressBar> {
    let Sampler::Sigma {
        grid: GridKind::Fitted,
        ..
    } = sampler
    else {
        return Ok(indicatif::ProgressBar::hidden());
    };
    let clock = std::time::Instant::now();
    den.predict(pilot, level_at_step(sched, from))?;
    // Fits here took 65,000 to 94,000 evaluations of the pilot (README, "Fitted grids").
    let minutes = clock.elapsed().as_secs_f64() * 80_000.0 / 60.0;
    if minutes > 1.0 {
        eprintln!(
            "fitting the grid takes about {minutes:.0} minutes ({} pilot rows, ~80,000 evaluations); reuse its levels (grid_sigmas) with --grid sigmas:...",
            pilot.dims()[0]
        );
    }
    Ok(crate::progress::spinner(
        "fitting the grid on the pilot samples",
    ))
}
