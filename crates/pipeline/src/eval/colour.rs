//! Judging colour Fashion-MNIST pictures (issue 13): the class by a Fashion-MNIST classifier on
//! each picture's brightness (its brightest channel, the 28x28 item inside the border), the
//! colour by [`diffuse_data::colour::read_colour`], and, for a (colour, class) asked for, how
//! often each and both came out.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use diffuse_core::device;
use diffuse_data::colour::{COLOURS, SIZE, brightness, parse_label, read_colour};
use serde_json::{Value, json};

use crate::report::Report;

/// The PNG files of a sample folder's `images/`, in name order.
pub fn image_files(folder: &Path) -> Result<Vec<PathBuf>> {
    let dir = folder.join("images");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("{}: cannot read", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("{}: no PNG images", dir.display());
    }
    Ok(files)
}

/// Judges the 32x32 RGB pictures in `folder/images/`: counts of classes and colours, and with
/// `asked` (a label such as "red sandal") the share of pictures of that class, of that colour,
/// and of both.
pub fn judge_colour_images(
    folder: &Path,
    asked: Option<&str>,
    classifier: &Path,
) -> Result<Report> {
    let asked = match asked {
        None => None,
        Some(a) => Some(parse_label(a).with_context(|| {
            format!(
                "--class {a:?}: a colour and a class, as \"red sandal\" (colours: {})",
                COLOURS
                    .iter()
                    .map(|c| c.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?),
    };
    let dev = device::cpu();
    let (model, record) = super::classifier::load_judge(classifier)?;
    let inner = SIZE - 4;
    if (record.config.height, record.config.width) != (inner, inner) {
        bail!(
            "--classifier reads {}x{} images; the items of 32x32 colour pictures are {inner}x{inner}",
            record.config.height,
            record.config.width
        );
    }
    let files = image_files(folder)?;
    let (mut gray, mut colours) = (vec![], vec![]);
    for f in &files {
        let (w, h, rgb) = diffuse_data::images::read_rgb(f)?;
        if (w, h) != (SIZE, SIZE) {
            bail!(
                "{}: {w}x{h} pixels; colour pictures are {SIZE}x{SIZE}",
                f.display()
            );
        }
        gray.extend(brightness(&rgb).iter().map(|v| f64::from(*v) / 127.5 - 1.0));
        colours.push(read_colour(&rgb).colour);
    }
    let (classes, _) = diffuse_nn::classify(&model, &gray, inner * inner, &dev)?;
    let n = files.len();
    let mut out = Report::new();
    out.set("n", n);
    let count = |names: Vec<String>, of: &dyn Fn(usize) -> Option<usize>| {
        let mut counts = vec![0usize; names.len()];
        for i in 0..n {
            if let Some(k) = of(i) {
                counts[k] += 1;
            }
        }
        Value::Object(
            names
                .into_iter()
                .zip(counts)
                .filter(|(_, c)| *c > 0)
                .map(|(k, c)| (k, json!(c)))
                .collect(),
        )
    };
    out.set(
        "class_counts",
        count(record.classes.clone(), &|i| Some(classes[i])),
    );
    out.set(
        "colour_counts",
        count(COLOURS.iter().map(|c| c.name.to_string()).collect(), &|i| {
            colours[i]
        }),
    );
    if let Some((colour, class)) = asked {
        let class_name = diffuse_data::images::FASHION_MNIST_CLASSES[class];
        let Some(want) = record.classes.iter().position(|c| c == class_name) else {
            bail!("--classifier has no class {class_name}");
        };
        let right_class: Vec<bool> = classes.iter().map(|k| *k == want).collect();
        let right_colour: Vec<bool> = colours.iter().map(|c| *c == Some(colour)).collect();
        let share = |v: &dyn Fn(usize) -> bool| (0..n).filter(|i| v(*i)).count() as f64 / n as f64;
        out.set("asked", format!("{} {class_name}", COLOURS[colour].name));
        out.num("class_accuracy", share(&|i| right_class[i]));
        out.num("colour_accuracy", share(&|i| right_colour[i]));
        out.num(
            "both_accuracy",
            share(&|i| right_class[i] && right_colour[i]),
        );
        out.set(
            "held_out_pair",
            diffuse_data::colour::is_held_out(colour, class),
        );
    }
    Ok(out)
}
