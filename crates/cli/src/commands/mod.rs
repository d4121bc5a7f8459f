//! One module per subcommand; each reads its inputs, calls the library, and writes outputs.

mod bench;
mod chains;
mod classify;
mod converge;
mod demo;
mod eval;
mod figures;
mod forward;
mod learn;
mod nll;
mod tour;
mod undiffuse;

use anyhow::{Context, Result, bail};

use crate::args::Command;

/// Runs a parsed command.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Langevin(a) => chains::langevin(&a),
        Command::Metropolis(a) => chains::metropolis(&a),
        Command::Forward(a) => forward::run(&a),
        Command::Undiffuse(a) => undiffuse::run(&a),
        Command::Eval(a) => eval::run(&a),
        Command::Classifier(a) => classify::train(&a),
        Command::Bench(a) => bench::run(&a),
        Command::Train(a) => learn::train(&a),
        Command::Sample(a) => learn::sample(&a),
        Command::Converge(a) => converge::run(&a),
        Command::Nll(a) => nll::run(&a),
        Command::Tour(a) => tour::run(&a),
        Command::Demo(a) => demo::run(&a),
    }
}

/// Mean and unbiased variance.
pub(crate) fn mean_var(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let v = x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, v)
}

/// Refuses counts of zero with a message naming the option.
pub(crate) fn positive(name: &str, v: usize) -> Result<usize> {
    if v == 0 {
        bail!("{name} must be at least 1 (got 0)");
    }
    Ok(v)
}

/// Parses a data spec and prints its warnings.
pub(crate) fn dataset(spec: &str) -> Result<diffuse_data::Dataset> {
    let d = diffuse_data::Dataset::parse(spec).with_context(|| format!("--data {spec}"))?;
    for w in &d.warnings {
        eprintln!("warning: {w}");
    }
    Ok(d)
}

/// Reads a CSV of samples and the data spec they are compared with; their dimensions must agree.
pub(crate) fn samples_and_data(
    samples: &std::path::Path,
    spec: &str,
) -> Result<(diffuse_data::Table, diffuse_data::Dataset)> {
    let table = diffuse_data::read_csv(samples).context("--samples")?;
    let data = dataset(spec)?;
    if table.dim() != data.dim() {
        bail!(
            "{} has {} columns but --data {spec} has {} dimensions",
            samples.display(),
            table.dim(),
            data.dim()
        );
    }
    Ok((table, data))
}

/// Parses a schedule spec with T steps.
pub(crate) fn schedule(spec: &str, steps: usize) -> Result<diffuse_core::Schedule> {
    positive("--steps", steps)?;
    diffuse_core::Schedule::parse(spec, steps).with_context(|| format!("--schedule {spec}"))
}

/// The row ranges of `n` samples in batches of `batch`.
pub(crate) fn batches(n: usize, batch: usize) -> impl Iterator<Item = std::ops::Range<u64>> {
    let batch = batch.max(1);
    (0..n)
        .step_by(batch)
        .map(move |s| s as u64..(s + batch).min(n) as u64)
}

/// Prints where the outputs went.
pub(crate) fn done(summary: &std::path::Path) {
    if let Some(dir) = summary.parent() {
        eprintln!("wrote {}", dir.display());
    }
}

/// Reference draws for the excess energy distance start at this row of the data stream, far
/// from the rows other commands use, so that `sample` and `eval` with one --seed compare
/// against the same draws.
const EXCESS_ROWS: u64 = 1 << 43;

/// The excess energy distance of the first (at most 2,000) rows of `x` to `data`, averaged over
/// 5 pairs of fresh draws; None for a data file (it has no independent draws) and for images
/// (O(n^2) distances between pixel vectors say little about pictures and cost minutes).
pub(crate) fn excess_energy(
    x: &[f64],
    d: usize,
    data: &diffuse_data::Dataset,
    noise: &diffuse_core::NoiseSource,
) -> Option<(usize, diffuse_core::metrics::ExcessEnergy)> {
    if matches!(
        data.source,
        diffuse_data::Source::Table(_) | diffuse_data::Source::Images(_)
    ) {
        return None;
    }
    let m = (x.len() / d).min(2000) as u64;
    let mut reference = |k: usize| {
        let start = EXCESS_ROWS + k as u64 * m;
        data.sample(noise, start..start + m)
    };
    let e =
        diffuse_core::metrics::excess_energy_distance(&x[..m as usize * d], d, 5, &mut reference);
    Some((m as usize, e))
}

/// Writes an [`excess_energy`] result into a summary.
pub(crate) fn report_excess(
    out: &mut crate::output::Output,
    excess: Option<(usize, diffuse_core::metrics::ExcessEnergy)>,
) {
    if let Some((m, e)) = excess {
        out.set("excess_energy_n", m);
        out.set("excess_energy_draws", e.draws);
        out.num("energy_distance_mean", e.distance);
        out.num("energy_distance_floor", e.floor);
        out.num("excess_energy_distance", e.excess);
    }
}
