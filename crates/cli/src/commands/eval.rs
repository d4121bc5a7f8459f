//! `diffuse eval`: how close samples are to a data distribution, or (with --classifier) how a
//! classifier judges generated images.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use diffuse_pipeline::{dataset, eval};

use crate::args::EvalArgs;
use crate::output::Output;
use crate::progress::Bars;

/// `diffuse eval`.
pub fn run(a: &EvalArgs) -> Result<()> {
    if let Some(c) = &a.classifier {
        return judge(a, c);
    }
    let Some(spec) = a.data.as_deref() else {
        bail!("--data is needed without --classifier");
    };
    let table = diffuse_data::read_csv(&a.samples).context("--samples")?;
    let data = dataset(spec, &mut Bars::new())?;
    if table.dim() != data.dim() {
        bail!(
            "{} has {} columns but --data {spec} has {} dimensions",
            a.samples.display(),
            table.dim(),
            data.dim()
        );
    }
    let report = eval::against_law(&table, &data, a.projections, a.max_energy_n, a.common.seed)?;
    let mut out = Output::new(&a.common, "eval")?;
    out.set("samples", a.samples.display().to_string());
    out.set("data", spec);
    out.report(report);
    out.finish_and_print()
}

/// The samples CSV and the class asked for each sample: `--samples` may be a `diffuse sample`
/// folder (its samples.csv, and labels.csv or the summary's label).
fn samples_with_labels(
    path: &Path,
    class: Option<&str>,
) -> Result<(diffuse_data::Table, Vec<Option<String>>)> {
    let (csv, folder): (PathBuf, Option<&Path>) = if path.is_dir() {
        (path.join("samples.csv"), Some(path))
    } else {
        (path.to_path_buf(), None)
    };
    let table = diffuse_data::read_csv(&csv).context("--samples")?;
    let n = table.len();
    if let Some(c) = class {
        return Ok((table, vec![Some(c.to_string()); n]));
    }
    let Some(dir) = folder else {
        return Ok((table, vec![None; n]));
    };
    if let Ok(text) = std::fs::read_to_string(dir.join("labels.csv")) {
        let labels: Vec<Option<String>> = text
            .lines()
            .skip(1)
            .map(|l| Some(l.trim().to_string()))
            .collect();
        if labels.len() != n {
            bail!(
                "{}: {} labels for {n} samples",
                dir.join("labels.csv").display(),
                labels.len()
            );
        }
        return Ok((table, labels));
    }
    Ok((table, vec![None; n]))
}

/// `diffuse eval --classifier DIR`: accuracy of the requested classes and the Frechet distance
/// on the classifier's features.
fn judge(a: &EvalArgs, classifier: &Path) -> Result<()> {
    // A folder of pictures without samples.csv (a Stable Diffusion pipeline's output): colour
    // Fashion-MNIST pictures, judged by class and colour.
    if a.samples.is_dir() && !a.samples.join("samples.csv").exists() {
        let report = eval::judge_colour_images(&a.samples, a.class.as_deref(), classifier)?;
        let mut out = Output::new(&a.common, "eval")?;
        out.set("samples", a.samples.display().to_string());
        out.set("classifier", classifier.display().to_string());
        out.report(report);
        return out.finish_and_print();
    }
    let (table, asked) = samples_with_labels(&a.samples, a.class.as_deref())?;
    let report = eval::judge_images(
        &a.samples,
        &table,
        &asked,
        classifier,
        a.data.as_deref(),
        a.common.seed,
        &mut Bars::new(),
    )?;
    let mut out = Output::new(&a.common, "eval")?;
    out.set("samples", a.samples.display().to_string());
    out.set("classifier", classifier.display().to_string());
    out.report(report);
    out.finish_and_print()
}
