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
    if let Some(m) = &a.model {
        return prompts(a, m);
    }
    if let Some(v) = &a.vae {
        return vae(a, v);
    }
    let Some(samples) = a.samples.as_deref() else {
        bail!("--samples or --model is needed");
    };
    if let Some(c) = &a.classifier {
        return judge(a, samples, c);
    }
    let Some(spec) = a.data.as_deref() else {
        bail!("--data is needed without --classifier");
    };
    let table = diffuse_data::read_csv(samples).context("--samples")?;
    let data = dataset(spec, &mut Bars::new())?;
    if table.dim() != data.dim() {
        bail!(
            "{} has {} columns but --data {spec} has {} dimensions",
            samples.display(),
            table.dim(),
            data.dim()
        );
    }
    let report = eval::against_law(&table, &data, a.projections, a.max_energy_n, a.common.seed)?;
    let mut out = Output::new(&a.common, "eval")?;
    out.set("samples", samples.display().to_string());
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
fn judge(a: &EvalArgs, samples: &Path, classifier: &Path) -> Result<()> {
    // A folder of pictures without samples.csv (a Stable Diffusion pipeline's output): colour
    // Fashion-MNIST pictures, judged by class and colour.
    if samples.is_dir() && !samples.join("samples.csv").exists() {
        let report = eval::judge_colour_images(samples, a.class.as_deref(), classifier)?;
        let mut out = Output::new(&a.common, "eval")?;
        out.set("samples", samples.display().to_string());
        out.set("classifier", classifier.display().to_string());
        out.report(report);
        return out.finish_and_print();
    }
    let (table, asked) = samples_with_labels(samples, a.class.as_deref())?;
    let report = eval::judge_images(
        samples,
        &table,
        &asked,
        classifier,
        a.data.as_deref(),
        a.common.seed,
        &mut Bars::new(),
    )?;
    let mut out = Output::new(&a.common, "eval")?;
    out.set("samples", samples.display().to_string());
    out.set("classifier", classifier.display().to_string());
    out.report(report);
    out.finish_and_print()
}

/// `diffuse eval --model M --prompts P`: pictures of prompts naming a colour and a class drawn
/// by a text-to-image model trained on colour-fashion, judged by class and colour, in a table
/// (prompts.csv), a grid of the trained prompts and one of the held-out ones.
fn prompts(a: &EvalArgs, model: &Path) -> Result<()> {
    use diffuse_pipeline::sd::{StableDiffusion, is_pipeline};
    let folder = diffuse_pipeline::shipped::model_folder(model)?;
    if !is_pipeline(&folder) {
        bail!(
            "--model {}: not a text-to-image folder (model_index.json): give colour-fashion or a \
             folder of `diffuse train --model latent`",
            model.display()
        );
    }
    let classifier = a
        .classifier
        .clone()
        .unwrap_or_else(|| PathBuf::from("fashion-mnist-classifier"));
    let checks = eval::pair_prompts(&a.prompts)?;
    let judge = eval::ColourJudge::load(&classifier)?;
    let sd = StableDiffusion::load(&folder, &a.compute.device()?)
        .with_context(|| format!("--model {}", model.display()))?;
    if sd.default_size() != diffuse_data::colour::SIZE {
        bail!(
            "--model {}: draws {s}x{s} pictures; the judges read colour-fashion's {c}x{c}",
            model.display(),
            s = sd.default_size(),
            c = diffuse_data::colour::SIZE
        );
    }
    let mut out = Output::new(&a.common, "eval")?;
    out.set("device", a.compute.name());
    let (default_guidance, default_steps) = sd.default_guidance_and_steps();
    let scales = if a.guidance.is_empty() {
        vec![default_guidance]
    } else {
        a.guidance.clone()
    };
    let steps = a.nfe.unwrap_or(default_steps);
    let mut csv = String::from("guidance,prompt,pair,held_out,class,colour,both,blue_to_red\n");
    let (mut rows, mut sweep) = (vec![], vec![]);
    for (gi, &g) in scales.iter().enumerate() {
        if scales.len() > 1 {
            eprintln!("guidance {g} ({} of {})", gi + 1, scales.len());
        }
        let judged = eval::judge_prompts(
            &sd,
            &checks,
            a.n,
            a.common.seed,
            Some(g),
            Some(steps),
            &judge,
            &mut Bars::new(),
        )?;
        for j in &judged {
            let [k, c, b] = j.accuracies();
            let ratio = j.report.get("blue_to_red").and_then(|v| v.as_f64());
            csv.push_str(&format!(
                "{g},\"{}\",{},{},{k},{c},{b},{}\n",
                j.check.prompt.replace('"', "\"\""),
                j.check.pair_name(),
                j.check.held_out(),
                ratio.map_or(String::new(), |r| format!("{r:.4}"))
            ));
            rows.push(serde_json::json!({
                "guidance": g, "prompt": j.check.prompt, "pair": j.check.pair_name(),
                "held_out": j.check.held_out(), "class": k, "colour": c, "both": b,
            }));
        }
        // One row per prompt, its first eight pictures; the held-out pairs in a grid of their
        // own; with several scales, one pair of grids per scale.
        let side = diffuse_data::colour::SIZE;
        let suffix = if scales.len() > 1 {
            format!("-g{g}")
        } else {
            String::new()
        };
        for (name, held) in [("grid-trained", false), ("grid-held-out", true)] {
            let pictures: Vec<Vec<u8>> = judged
                .iter()
                .filter(|j| j.check.held_out() == held)
                .flat_map(|j| {
                    let mut row = j.pictures.iter().take(8).cloned().collect::<Vec<_>>();
                    row.resize(8, vec![0; side * side * 3]);
                    row
                })
                .collect();
            if !pictures.is_empty() {
                let (g, gw, gh) = diffuse_data::images::grid(&pictures, side, side, 3, 8);
                let path = out.path(&format!("{name}{suffix}.png"));
                diffuse_data::images::write_png(&path, &g, gw, gh, 3)?;
            }
        }
        sweep.push((g, eval::summarise(&judged)));
    }
    std::fs::write(out.path("prompts.csv"), csv).context("prompts.csv")?;
    if sweep.len() > 1 {
        guidance_figure(&out.path("guidance.png"), &sweep)?;
        let by_scale: Vec<serde_json::Value> = sweep
            .iter()
            .map(|(g, r)| serde_json::json!({ "guidance": g, "summary": r.clone().into_map() }))
            .collect();
        out.set("by_guidance", by_scale);
    }
    out.set("model", model.display().to_string());
    out.set("prompts", a.prompts.clone());
    out.set("n", a.n);
    out.set("guidance", scales.clone());
    out.set("steps", steps);
    out.set("classifier", classifier.display().to_string());
    if let Some((_, first)) = sweep.into_iter().next() {
        out.report(first);
    }
    out.set("table", rows);
    out.finish_and_print()
}

/// The shares of right pictures against the guidance scale: class, colour and both, for the
/// trained and the held-out prompts.
fn guidance_figure(path: &Path, sweep: &[(f64, diffuse_pipeline::Report)]) -> Result<()> {
    use diffuse_plot::{Figure, Series, lines};
    let mut series = vec![];
    let mut colour = 0;
    for (key, label) in [("trained", "trained pairs"), ("held_out", "held-out pairs")] {
        for what in ["class", "colour", "both"] {
            let points: Vec<(f64, f64)> = sweep
                .iter()
                .filter_map(|(g, r)| {
                    r.get(&format!("{key}_{what}_mean"))
                        .and_then(|v| v.as_f64())
                        .map(|v| (*g, v))
                })
                .collect();
            if !points.is_empty() {
                series.push(Series::line(format!("{label}: {what}"), points, colour));
            }
            colour += 1;
        }
    }
    let fig = Figure::new(
        "Pictures right by the judges, against the guidance scale",
        "guidance scale",
        "share of pictures (mean over prompts)",
    )
    .y_range(0.0, 1.05);
    lines(path, &fig, &series)?;
    Ok(())
}

/// `diffuse eval --vae V`: one test image of each label over its reconstruction, and the PSNR
/// of the reconstructions of the first 1,000 test images.
fn vae(a: &EvalArgs, arg: &Path) -> Result<()> {
    let folder = diffuse_pipeline::shipped::model_folder(arg)?;
    let dir = if diffuse_pipeline::sd::is_pipeline(&folder) {
        folder.join("vae")
    } else {
        folder
    };
    let (vae, config) = diffuse_nn::sd::AutoencoderKl::load(&dir, &a.compute.device()?)
        .with_context(|| format!("--vae {}", arg.display()))?;
    let spec = a.data.as_deref().unwrap_or("colour-fashion-test");
    let test = dataset(spec, &mut Bars::new())?;
    let (Some((h, w)), Some(channels)) = (test.image_shape(), test.image_channels()) else {
        bail!("--data {spec}: not images");
    };
    if channels != config.in_channels {
        bail!(
            "--vae {} reads {}-channel images; --data {spec} has {channels}",
            arg.display(),
            config.in_channels
        );
    }
    let mut out = Output::new(&a.common, "eval")?;
    out.set("device", a.compute.name());
    let (psnr, n) = diffuse_pipeline::psnr(&vae, &test)?;
    let (originals, recons) = diffuse_pipeline::reconstructions(&vae, &test)?;
    let cols = if spec.starts_with("colour-fashion") {
        10
    } else {
        originals.len().min(10)
    };
    for (name, pictures) in [
        ("originals.png", &originals),
        ("reconstructions.png", &recons),
    ] {
        let (g, gw, gh) = diffuse_data::images::grid(pictures, w, h, channels, cols);
        diffuse_data::images::write_png(&out.path(name), &g, gw, gh, channels)?;
    }
    out.set("vae", arg.display().to_string());
    out.set("data", spec);
    out.num("psnr_db", psnr);
    out.set("psnr_images", n);
    out.num("scaling_factor", config.scaling_factor);
    out.finish_and_print()
}
