//! Images judged by a classifier trained here: the class accuracy of what was asked for, and a
//! Frechet distance on its features against real images, next to the floor that as many real
//! training images reach.

use std::path::Path;

use anyhow::{Context, Result, bail};
use diffuse_core::frechet::frechet_distance_of;
use diffuse_core::{NoiseSource, device};
use diffuse_data::images::{ImageSet, to_pixels};
use diffuse_data::{Dataset, Source, Table};
use diffuse_nn::{ClassifierConfig, ClassifierRecord, classify};
use serde_json::{Map, Value, json};

use crate::report::Report;
use crate::run::Watch;
use crate::shipped::{CLASSIFIERS, Found, find};
use crate::{dataset, positive};

/// The images of an image data spec, or an error naming the option.
pub fn image_set(spec: &str, option: &str, watch: &mut dyn Watch) -> Result<(Dataset, ImageSet)> {
    let data = dataset(spec, watch).with_context(|| option.to_string())?;
    match &data.source {
        Source::Images(im) if im.channels != 1 => bail!(
            "{option} {spec}: RGB images; the classifier reads gray images (for colour-fashion \
             it judges each image's brightness)"
        ),
        Source::Images(im) => {
            let im = im.clone();
            Ok((data, im))
        }
        _ => bail!("{option} {spec}: a classifier needs image data"),
    }
}

/// The test split that goes with a training spec (fashion-mnist -> fashion-mnist-test,
/// mnist:DIR -> mnist-test:DIR).
pub fn test_split(spec: &str) -> Option<String> {
    let (kind, rest) = spec
        .split_once(':')
        .map_or((spec, None), |(k, r)| (k, Some(r)));
    let test = match kind {
        "fashion-mnist" => "fashion-mnist-test",
        "colour-fashion" => "colour-fashion-test",
        "mnist" => "mnist-test",
        _ => return None,
    };
    Some(match rest {
        Some(r) => format!("{test}:{r}"),
        None => test.to_string(),
    })
}

/// A classifier training run.
#[derive(Debug, Clone)]
pub struct ClassifierRun {
    /// Labelled images to learn.
    pub data: String,
    /// Labelled images to score it on (default: the test split of `data`).
    pub test_data: Option<String>,
    /// Optimiser steps.
    pub steps: usize,
    /// Images per step.
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Channels of the first convolution.
    pub channels: usize,
    /// Seed of all randomness.
    pub seed: u64,
    /// Where it trains and is scored.
    pub device: burn::tensor::Device,
}

/// Trains a classifier into the folder `dir` and scores it on the test split: the test
/// accuracy, per class, and the mean of the last 100 losses.
pub fn train_classifier(run: &ClassifierRun, dir: &Path, watch: &mut dyn Watch) -> Result<Report> {
    let (data, train_set) = image_set(&run.data, "--data", watch)?;
    let test_spec = match (&run.test_data, test_split(&run.data)) {
        (Some(t), _) => t.clone(),
        (None, Some(t)) => t,
        (None, None) => bail!("--test-data is needed for --data {}", run.data),
    };
    let (_, test_set) = image_set(&test_spec, "--test-data", watch)?;
    if (test_set.height, test_set.width) != (train_set.height, train_set.width)
        || test_set.classes != train_set.classes
    {
        bail!(
            "--test-data {test_spec} does not have the size and classes of --data {}",
            run.data
        );
    }
    positive("--steps", run.steps)?;
    positive("--batch", run.batch)?;
    positive("--channels", run.channels)?;
    if !(run.lr.is_finite() && run.lr > 0.0) {
        bail!("--lr must be a positive number (got {})", run.lr);
    }
    let cfg = ClassifierConfig {
        channels: run.channels,
        ..ClassifierConfig::small(train_set.height, train_set.width, train_set.classes.len())
    };
    // A batch's activations: three convolutions' maps (channels, 2x and 4x at halved sizes)
    // and their gradients, about eight floats per unit, plus the images.
    let pixels = (train_set.height * train_set.width) as f64;
    let per_example = 8.0 * 4.0 * pixels * run.channels as f64 * (1.0 + 0.5 + 0.25) + pixels * 24.0;
    crate::budget::check(
        &format!("--batch {}", run.batch),
        run.batch as f64 * per_example,
    )?;
    let noise = NoiseSource::new(run.seed);
    let draw = |rows: std::ops::Range<u64>| {
        let x = data.sample(&noise, rows.clone());
        let l = data.sample_labels(&noise, rows).unwrap_or_default();
        Ok((x, l))
    };
    watch.begin("train classifier", run.steps as u64);
    let mut last = vec![];
    let model = diffuse_nn::train_classifier(
        &cfg,
        &draw,
        run.steps,
        run.batch,
        run.lr,
        run.seed,
        &run.device,
        &mut |k, l| {
            last.push(l);
            watch.advance(1).map_err(|e| diffuse_nn::NnError::Stopped {
                step: k,
                reason: format!("{e:#}"),
            })
        },
    )?;
    watch.finish();
    let model = burn::module::Module::valid(&model);
    let dev = run.device.clone();
    let x: Vec<f64> = (0..test_set.len())
        .flat_map(|i| test_set.unit_row(i).collect::<Vec<_>>())
        .collect();
    let (pred, _) = classify(&model, &x, test_set.dim(), &dev)?;
    let k = test_set.classes.len();
    let mut hits = vec![0usize; k];
    let mut counts = vec![0usize; k];
    for (p, l) in pred.iter().zip(&test_set.labels) {
        counts[*l] += 1;
        hits[*l] += usize::from(p == l);
    }
    let accuracy = hits.iter().sum::<usize>() as f64 / test_set.len() as f64;
    let mut record = ClassifierRecord::new(cfg, train_set.classes.clone(), run.data.clone());
    record.test_data = test_spec.clone();
    record.test_accuracy = accuracy;
    record.trained_steps = run.steps;
    diffuse_nn::save_classifier(dir, &model, &record)?;
    let tail = &last[last.len().saturating_sub(100)..];
    let mut out = Report::new();
    out.set("data", run.data.clone());
    out.set("test_data", test_spec);
    out.set("test_n", test_set.len());
    out.num("test_accuracy", accuracy);
    let per_class: Map<String, Value> = (0..k)
        .map(|c| {
            let acc = hits[c] as f64 / counts[c].max(1) as f64;
            (train_set.classes[c].clone(), json!(acc))
        })
        .collect();
    out.set("test_accuracy_per_class", Value::Object(per_class));
    out.num(
        "final_loss_mean_of_last_100",
        tail.iter().sum::<f64>() / tail.len().max(1) as f64,
    );
    out.set("steps", run.steps);
    out.set("batch", run.batch);
    Ok(out)
}

/// What a shipped judge sees in a model's images: the class it finds in each.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The shipped classifier's name.
    pub judge: &'static str,
    /// Its classes.
    pub classes: Vec<String>,
    /// The class it finds in each image (an index into `classes`).
    pub found: Vec<usize>,
}

impl Verdict {
    /// How many images of each class it found, most first (classes found in none left out).
    pub fn counts(&self) -> Vec<(String, usize)> {
        let mut c = vec![0usize; self.classes.len()];
        for f in &self.found {
            c[*f] += 1;
        }
        let mut out: Vec<(String, usize)> = self
            .classes
            .iter()
            .cloned()
            .zip(c)
            .filter(|(_, k)| *k > 0)
            .collect();
        out.sort_by_key(|c| std::cmp::Reverse(c.1));
        out
    }

    /// The fraction of images found to be of the class asked for each (by name; `None`: not
    /// asked), or `None` when nothing was asked.
    pub fn accuracy(&self, asked: &[String]) -> Option<f64> {
        if asked.len() != self.found.len() || asked.is_empty() {
            return None;
        }
        let hits = asked
            .iter()
            .zip(&self.found)
            .filter(|(a, f)| self.classes[**f] == **a)
            .count();
        Some(hits as f64 / asked.len() as f64)
    }

    /// What a front end records of it: `judge`, `judge_counts` (class: images) and, when
    /// classes were asked for, `judge_accuracy`.
    pub fn report(&self, asked: &[String]) -> crate::Report {
        let mut out = crate::Report::new();
        out.set("judge", self.judge);
        let counts: serde_json::Map<String, serde_json::Value> = self
            .counts()
            .into_iter()
            .map(|(c, k)| (c, serde_json::json!(k)))
            .collect();
        out.set("judge_counts", serde_json::Value::Object(counts));
        if let Some(a) = self.accuracy(asked) {
            out.num("judge_accuracy", a);
        }
        out
    }
}

/// The shipped classifier trained on `data` (a model's training data spec), judging `x` (rows of
/// `h * w` pixels in [-1, 1], as a viewer sees them: rounded to 8 bits first); `None` when no
/// judge of that data ships or its image size differs.
pub fn shipped_verdict(data: &str, x: &[f64], h: usize, w: usize) -> Result<Option<Verdict>> {
    let dev = device::cpu();
    for s in CLASSIFIERS {
        let (model, record) = diffuse_nn::load_classifier_bytes(
            s.config,
            s.weights.to_vec(),
            Path::new(s.name),
            &dev,
        )
        .with_context(|| format!("the shipped classifier {}", s.name))?;
        let kind = |spec: &str| spec.split(':').next().unwrap_or_default().to_string();
        if kind(&record.data) != kind(data) || (record.config.height, record.config.width) != (h, w)
        {
            continue;
        }
        let px: Vec<f64> = to_pixels(x)
            .iter()
            .map(|v| f64::from(*v) / 127.5 - 1.0)
            .collect();
        let (found, _) = classify(&model, &px, h * w, &dev)?;
        return Ok(Some(Verdict {
            judge: s.name,
            classes: record.classes,
            found,
        }));
    }
    Ok(None)
}

/// The classifier `--classifier` names: a folder, or a shipped one by name.
pub fn load_judge(
    classifier: &Path,
) -> Result<(diffuse_nn::Classifier, diffuse_nn::ClassifierRecord)> {
    let dev = device::cpu();
    match find(classifier, CLASSIFIERS, "--classifier")? {
        Found::Folder(f) => diffuse_nn::load_classifier(&f, &dev),
        Found::Shipped(s) => {
            diffuse_nn::load_classifier_bytes(s.config, s.weights.to_vec(), classifier, &dev)
        }
    }
    .context("--classifier")
}

/// Judges images (rows of `table`, pixels in [-1, 1], read from `samples`) with the classifier `classifier` (a
/// folder or a shipped one): how many of each class it sees; with `asked` (the class asked for
/// each sample, by name), the accuracy overall and per class; the Frechet distance on its
/// features against real images of the classes asked for (`reference`, default the
/// classifier's test set) and the floor, the same distance for as many real training images.
pub fn judge_images(
    samples: &Path,
    table: &Table,
    asked: &[Option<String>],
    classifier: &Path,
    reference: Option<&str>,
    seed: u64,
    watch: &mut dyn Watch,
) -> Result<Report> {
    let dev = device::cpu();
    let (model, record) = load_judge(classifier)?;
    let (h, w) = (record.config.height, record.config.width);
    if table.dim() != h * w {
        bail!(
            "{} has {} columns; the classifier reads {h}x{w} images",
            samples.display(),
            table.dim()
        );
    }
    if table.values.iter().any(|v| !v.is_finite()) {
        bail!("{}: a sample is not a finite number", samples.display());
    }
    let n = table.len();
    positive("samples", n)?;
    // What a viewer sees: the 8-bit picture, back in model units.
    let x: Vec<f64> = to_pixels(&table.values)
        .iter()
        .map(|v| f64::from(*v) / 127.5 - 1.0)
        .collect();
    let (pred, feats) = classify(&model, &x, h * w, &dev)?;
    let asked: Vec<Option<usize>> = asked
        .iter()
        .map(|l| match l {
            None => Ok(None),
            Some(l) => record
                .classes
                .iter()
                .position(|c| c == l)
                .map(Some)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "class '{l}' is not one the classifier knows ({})",
                        record.classes.join(", ")
                    )
                }),
        })
        .collect::<Result<_>>()?;
    let reference_spec = reference.map_or_else(|| record.test_data.clone(), str::to_string);
    let (_, reference) = image_set(&reference_spec, "--data", watch)?;
    let (_, training) = image_set(&record.data, "the classifier's training data", watch)?;
    let mut out = Report::new();
    out.num("classifier_test_accuracy", record.test_accuracy);
    out.set("n", n);
    let k = record.classes.len();
    let mut predicted = vec![0usize; k];
    for p in &pred {
        predicted[*p] += 1;
    }
    out.set(
        "predicted_counts",
        Value::Object(
            (0..k)
                .map(|c| (record.classes[c].clone(), json!(predicted[c])))
                .collect(),
        ),
    );
    let known: Vec<(usize, usize)> = asked
        .iter()
        .zip(&pred)
        .filter_map(|(a, p)| a.map(|a| (a, *p)))
        .collect();
    if !known.is_empty() {
        let hits = known.iter().filter(|(a, p)| a == p).count();
        out.num("accuracy", hits as f64 / known.len() as f64);
        let per_class: Map<String, Value> = (0..k)
            .filter_map(|c| {
                let of_c: Vec<_> = known.iter().filter(|(a, _)| *a == c).collect();
                (!of_c.is_empty()).then(|| {
                    let acc =
                        of_c.iter().filter(|(_, p)| *p == c).count() as f64 / of_c.len() as f64;
                    (record.classes[c].clone(), json!(acc))
                })
            })
            .collect();
        out.set("accuracy_per_class", Value::Object(per_class));
    }
    // The reference: real test images of the classes asked for (all classes when none was).
    let wanted: Vec<bool> = (0..k)
        .map(|c| known.is_empty() || known.iter().any(|(a, _)| *a == c))
        .collect();
    let rows_of = |set: &ImageSet| -> Vec<usize> {
        (0..set.len()).filter(|i| wanted[set.labels[*i]]).collect()
    };
    let features_of = |set: &ImageSet, rows: &[usize]| -> Result<Vec<Vec<f64>>> {
        let x: Vec<f64> = rows
            .iter()
            .flat_map(|i| set.unit_row(*i).collect::<Vec<_>>())
            .collect();
        Ok(classify(&model, &x, h * w, &dev)?.1)
    };
    let ref_rows = rows_of(&reference);
    let ref_feats = features_of(&reference, &ref_rows)?;
    out.set("reference", reference_spec.clone());
    out.set("reference_n", ref_rows.len());
    out.num("frechet_distance", frechet_distance_of(&feats, &ref_feats)?);
    // The floor: n real training images with the same classes as the samples.
    let noise = NoiseSource::new(seed);
    let picks = noise.uniforms(diffuse_core::Stream::Other, 0, 0..n as u64);
    let by_class: Vec<Vec<usize>> = (0..k)
        .map(|c| {
            (0..training.len())
                .filter(|i| training.labels[*i] == c)
                .collect()
        })
        .collect();
    let all_wanted = rows_of(&training);
    if all_wanted.is_empty() {
        bail!("{} has no images of the classes asked for", record.data);
    }
    let floor_rows: Vec<usize> = picks
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let pool = match asked[i] {
                Some(c) if !by_class[c].is_empty() => &by_class[c],
                _ => &all_wanted,
            };
            pool[((u * pool.len() as f64) as usize).min(pool.len() - 1)]
        })
        .collect();
    let floor = frechet_distance_of(&features_of(&training, &floor_rows)?, &ref_feats)?;
    out.num("frechet_floor", floor);
    out.set("floor_data", record.data.clone());
    Ok(out)
}
