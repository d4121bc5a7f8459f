//! `diffuse eval`: how close samples are to a data distribution.

use anyhow::{Result, bail};
use diffuse_core::NoiseSource;
use diffuse_core::metrics::{
    energy_distance, ks_one_sample, ks_two_sample, project, sliced_wasserstein, unit_direction,
};
use diffuse_data::Source;

use super::{done, excess_energy, mean_var, positive, report_excess, samples_and_data};
use crate::args::EvalArgs;
use crate::output::Output;

/// `diffuse eval`.
pub fn run(a: &EvalArgs) -> Result<()> {
    if let Some(c) = &a.classifier {
        return super::classify::judge(a, c);
    }
    let Some(spec) = a.data.as_deref() else {
        bail!("--data is needed without --classifier");
    };
    let (table, data) = samples_and_data(&a.samples, spec)?;
    let d = table.dim();
    positive("--projections", a.projections)?;
    positive("--max-energy-n", a.max_energy_n)?;
    let x = &table.values;
    let n = table.len();
    let noise = NoiseSource::new(a.common.seed);
    // The comparison sample: the data file itself, or a fresh draw of the same size.
    let y = match &data.source {
        Source::Table(t) => t.values.clone(),
        _ => data.sample(&noise, 0..n as u64),
    };
    let mut out = Output::new(a.common.out.as_deref(), "eval")?;
    out.set("samples", a.samples.display().to_string());
    out.set("data", spec);
    out.set("n", n);
    out.set("reference_n", y.len() / d);
    for j in 0..d {
        let (m, v) = mean_var(&x.iter().skip(j).step_by(d).copied().collect::<Vec<_>>());
        out.num(&format!("mean_{j}"), m);
        out.num(&format!("std_{j}"), v.sqrt());
    }
    let dirs: Vec<Vec<f64>> = if d == 1 {
        vec![vec![1.0]]
    } else {
        (0..a.projections as u64)
            .map(|i| unit_direction(&noise, i, d))
            .collect()
    };
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
    let m = n.min(y.len() / d).min(a.max_energy_n);
    out.set("energy_n", m);
    out.num(
        "energy_distance",
        energy_distance(&x[..m * d], &y[..m * d], d),
    );
    report_excess(&mut out, excess_energy(x, d, &data, &noise));
    out.num(
        "sliced_wasserstein",
        sliced_wasserstein(x, &y, d, a.projections, &noise),
    );
    let path = out.finish()?;
    if let Ok(text) = std::fs::read_to_string(&path) {
        println!("{text}");
    }
    done(&path);
    Ok(())
}
