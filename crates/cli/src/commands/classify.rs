//! `diffuse classifier` (train an image classifier on real data) and `diffuse eval --classifier`
//! (judge generated images with it: the accuracy of the requested class, and a Frechet distance
//! on its features against real test images, next to the same distance for real training
//! images, the floor).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use diffuse_core::NoiseSource;
use diffuse_core::frechet::frechet_distance_of;
use diffuse_data::images::{ImageSet, to_pixels};
use diffuse_data::{Dataset, Source};
use diffuse_nn::{ClassifierConfig, ClassifierRecord, classify};

use super::{dataset, done, positive};
use crate::args::{ClassifierArgs, EvalArgs};
use crate::output::Output;

/// The images of an image data spec, or an error naming the option.
fn image_set(spec: &str, option: &str) -> Result<(Dataset, ImageSet)> {
    let data = dataset(spec).with_context(|| option.to_string())?;
    match &data.source {
        Source::Images(im) => {
            let im = im.clone();
            Ok((data, im))
        }
        _ => bail!("{option} {spec}: a classifier needs image data"),
    }
}

/// The test split that goes with a training spec (fashion-mnist -> fashion-mnist-test,
/// mnist:DIR -> mnist-test:DIR).
fn test_split(spec: &str) -> Option<String> {
    let (kind, rest) = spec
        .split_once(':')
        .map_or((spec, None), |(k, r)| (k, Some(r)));
    let test = match kind {
        "fashion-mnist" => "fashion-mnist-test",
        "mnist" => "mnist-test",
        _ => return None,
    };
    Some(match rest {
        Some(r) => format!("{test}:{r}"),
        None => test.to_string(),
    })
}

/// `diffuse classifier`.
pub fn train(a: &ClassifierArgs) -> Result<()> {
    let (data, train_set) = image_set(&a.data, "--data")?;
    let test_spec = match (&a.test_data, test_split(&a.data)) {
        (Some(t), _) => t.clone(),
        (None, Some(t)) => t,
        (None, None) => bail!("--test-data is needed for --data {}", a.data),
    };
    let (_, test_set) = image_set(&test_spec, "--test-data")?;
    if (test_set.height, test_set.width) != (train_set.height, train_set.width)
        || test_set.classes != train_set.classes
    {
        bail!(
            "--test-data {test_spec} does not have the size and classes of --data {}",
            a.data
        );
    }
    positive("--steps", a.steps)?;
    positive("--batch", a.batch)?;
    positive("--channels", a.channels)?;
    let cfg = ClassifierConfig {
        channels: a.channels,
        ..ClassifierConfig::small(train_set.height, train_set.width, train_set.classes.len())
    };
    let noise = NoiseSource::new(a.common.seed);
    let draw = |rows: std::ops::Range<u64>| {
        let x = data.sample(&noise, rows.clone());
        let l = data.sample_labels(&noise, rows).unwrap_or_default();
        Ok((x, l))
    };
    let mut out = Output::new(a.common.out.as_deref(), "classifier")?;
    let bar = crate::progress::bar(a.steps as u64, "train classifier");
    let mut last = vec![];
    let model = diffuse_nn::train_classifier(
        &cfg,
        &draw,
        a.steps,
        a.batch,
        a.lr,
        a.common.seed,
        &mut |_, l| {
            last.push(l);
            bar.inc(1);
        },
    )?;
    bar.finish_and_clear();
    let model = burn::module::Module::valid(&model);
    let dev = diffuse_core::device::cpu();
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
    let mut record = ClassifierRecord::new(cfg, train_set.classes.clone(), a.data.clone());
    record.test_data = test_spec.clone();
    record.test_accuracy = accuracy;
    record.trained_steps = a.steps;
    diffuse_nn::save_classifier(&out.path(""), &model, &record)?;
    let tail = &last[last.len().saturating_sub(100)..];
    out.set("data", a.data.clone());
    out.set("test_data", test_spec);
    out.set("test_n", test_set.len());
    out.num("test_accuracy", accuracy);
    let per_class: serde_json::Map<String, serde_json::Value> = (0..k)
        .map(|c| {
            let acc = hits[c] as f64 / counts[c].max(1) as f64;
            (train_set.classes[c].clone(), serde_json::json!(acc))
        })
        .collect();
    out.set(
        "test_accuracy_per_class",
        serde_json::Value::Object(per_class),
    );
    out.num(
        "final_loss_mean_of_last_100",
        tail.iter().sum::<f64>() / tail.len().max(1) as f64,
    );
    out.set("steps", a.steps);
    out.set("batch", a.batch);
    done(&out.finish()?);
    Ok(())
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
pub fn judge(a: &EvalArgs, classifier: &Path) -> Result<()> {
    let dev = diffuse_core::device::cpu();
    use crate::shipped::{CLASSIFIERS, Found, find};
    let (model, record) = match find(classifier, CLASSIFIERS, "--classifier")? {
        Found::Folder(f) => diffuse_nn::load_classifier(&f, &dev),
        Found::Shipped(s) => {
            diffuse_nn::load_classifier_bytes(s.config, s.weights.to_vec(), classifier, &dev)
        }
    }
    .context("--classifier")?;
    let (table, asked) = samples_with_labels(&a.samples, a.class.as_deref())?;
    let (h, w) = (record.config.height, record.config.width);
    if table.dim() != h * w {
        bail!(
            "{} has {} columns; the classifier reads {h}x{w} images",
            a.samples.display(),
            table.dim()
        );
    }
    if table.values.iter().any(|v| !v.is_finite()) {
        bail!("{}: a sample is not a finite number", a.samples.display());
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
    let reference_spec = a.data.clone().unwrap_or_else(|| record.test_data.clone());
    let (_, reference) = image_set(&reference_spec, "--data")?;
    let (_, training) = image_set(&record.data, "the classifier's training data")?;
    let mut out = Output::new(a.common.out.as_deref(), "eval")?;
    out.set("samples", a.samples.display().to_string());
    out.set("classifier", classifier.display().to_string());
    out.num("classifier_test_accuracy", record.test_accuracy);
    out.set("n", n);
    let k = record.classes.len();
    let mut predicted = vec![0usize; k];
    for p in &pred {
        predicted[*p] += 1;
    }
    out.set(
        "predicted_counts",
        serde_json::Value::Object(
            (0..k)
                .map(|c| (record.classes[c].clone(), serde_json::json!(predicted[c])))
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
        let per_class: serde_json::Map<String, serde_json::Value> = (0..k)
            .filter_map(|c| {
                let of_c: Vec<_> = known.iter().filter(|(a, _)| *a == c).collect();
                (!of_c.is_empty()).then(|| {
                    let acc =
                        of_c.iter().filter(|(_, p)| *p == c).count() as f64 / of_c.len() as f64;
                    (record.classes[c].clone(), serde_json::json!(acc))
                })
            })
            .collect();
        out.set("accuracy_per_class", serde_json::Value::Object(per_class));
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
    let noise = NoiseSource::new(a.common.seed);
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
    let path = out.finish()?;
    if let Ok(text) = std::fs::read_to_string(&path) {
        println!("{text}");
    }
    done(&path);
    Ok(())
}
