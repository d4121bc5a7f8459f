//! Judging colour Fashion-MNIST pictures (issue 13): the class by a Fashion-MNIST classifier on
//! each picture's brightness (its brightest channel, the 28x28 item inside the border), the
//! colour by [`diffuse_data::colour::read_colour`], and, for a (colour, class) asked for, how
//! often each and both came out.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use diffuse_core::device;
use diffuse_data::colour::{COLOURS, ITEM_LEVEL, SIZE, brightness, parse_label, read_colour};
use diffuse_nn::{Classifier, ClassifierRecord};
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

/// A (colour, class) asked for by its name ("red sandal").
pub fn parse_pair(asked: &str) -> Result<(usize, usize)> {
    parse_label(asked).with_context(|| {
        format!(
            "--class {asked:?}: a colour and a class, as \"red sandal\" (colours: {})",
            COLOURS
                .iter()
                .map(|c| c.name)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// The class judge (a Fashion-MNIST classifier of 28x28 items) with its record.
pub struct ColourJudge {
    model: Classifier,
    record: ClassifierRecord,
}

impl ColourJudge {
    /// The classifier `--classifier` names (a folder or a shipped classifier).
    pub fn load(classifier: &Path) -> Result<Self> {
        let (model, record) = super::classifier::load_judge(classifier)?;
        let inner = SIZE - 4;
        if (record.config.height, record.config.width) != (inner, inner) {
            bail!(
                "--classifier reads {}x{} images; the items of 32x32 colour pictures are {inner}x{inner}",
                record.config.height,
                record.config.width
            );
        }
        Ok(Self { model, record })
    }

    /// Judges 32x32 pictures (interleaved 8-bit RGB): counts of classes and colours, the mean
    /// colour of the items' pixels and their blue-to-red ratio, and with `asked` the share of
    /// pictures of that class, of that colour, and of both.
    pub fn judge(&self, pictures: &[Vec<u8>], asked: Option<(usize, usize)>) -> Result<Report> {
        let inner = SIZE - 4;
        let (mut gray, mut colours) = (vec![], vec![]);
        let (mut rgb_sum, mut items) = ([0.0f64; 3], 0usize);
        for (i, rgb) in pictures.iter().enumerate() {
            if rgb.len() != SIZE * SIZE * 3 {
                bail!(
                    "picture {i}: {} values; colour pictures are {SIZE}x{SIZE}x3",
                    rgb.len()
                );
            }
            gray.extend(brightness(rgb).iter().map(|v| f64::from(*v) / 127.5 - 1.0));
            colours.push(read_colour(rgb).colour);
            for p in rgb
                .chunks_exact(3)
                .filter(|p| p[0].max(p[1]).max(p[2]) >= ITEM_LEVEL)
            {
                for ch in 0..3 {
                    rgb_sum[ch] += f64::from(p[ch]) / 255.0;
                }
                items += 1;
            }
        }
        let dev = device::cpu();
        let (classes, _) = diffuse_nn::classify(&self.model, &gray, inner * inner, &dev)?;
        let n = pictures.len();
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
            count(self.record.classes.clone(), &|i| Some(classes[i])),
        );
        out.set(
            "colour_counts",
            count(COLOURS.iter().map(|c| c.name.to_string()).collect(), &|i| {
                colours[i]
            }),
        );
        if items > 0 {
            let mean = rgb_sum.map(|v| v / items as f64);
            out.set("item_mean_rgb", mean.to_vec());
            out.num("blue_to_red", mean[2] / mean[0].max(1e-12));
        }
        if let Some((colour, class)) = asked {
            let class_name = diffuse_data::images::FASHION_MNIST_CLASSES[class];
            let Some(want) = self.record.classes.iter().position(|c| c == class_name) else {
                bail!("--classifier has no class {class_name}");
            };
            let right_class: Vec<bool> = classes.iter().map(|k| *k == want).collect();
            let right_colour: Vec<bool> = colours.iter().map(|c| *c == Some(colour)).collect();
            let share =
                |v: &dyn Fn(usize) -> bool| (0..n).filter(|i| v(*i)).count() as f64 / n as f64;
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
}

/// Judges the 32x32 RGB pictures in `folder/images/` (see [`ColourJudge::judge`]); `asked` is
/// a label such as "red sandal".
pub fn judge_colour_images(
    folder: &Path,
    asked: Option<&str>,
    classifier: &Path,
) -> Result<Report> {
    let asked = asked.map(parse_pair).transpose()?;
    let judge = ColourJudge::load(classifier)?;
    let files = image_files(folder)?;
    let mut pictures = Vec::with_capacity(files.len());
    for f in &files {
        let (w, h, rgb) = diffuse_data::images::read_rgb(f)?;
        if (w, h) != (SIZE, SIZE) {
            bail!(
                "{}: {w}x{h} pixels; colour pictures are {SIZE}x{SIZE}",
                f.display()
            );
        }
        pictures.push(rgb);
    }
    judge.judge(&pictures, asked)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A black 32x32 picture with `n` pixels of `rgb` from pixel `at` on.
    fn picture(at: usize, n: usize, rgb: [u8; 3]) -> Vec<u8> {
        let mut p = vec![0u8; SIZE * SIZE * 3];
        for i in at..at + n {
            p[3 * i..3 * i + 3].copy_from_slice(&rgb);
        }
        p
    }

    #[test]
    fn the_items_mean_colour_counts_item_pixels_only() {
        let judge = ColourJudge::load(Path::new("fashion-mnist-classifier")).unwrap();
        // Ten pixels of (200, 0, 100) and five dim ones below the item level (background), then
        // twenty of (100, 0, 100): the items' mean is (133.3, 0, 100) / 255, blue-to-red 0.75.
        let mut a = picture(100, 10, [200, 0, 100]);
        let dim = ITEM_LEVEL - 1;
        for i in 300..305 {
            a[3 * i..3 * i + 3].copy_from_slice(&[dim, dim, dim]);
        }
        let b = picture(400, 20, [100, 0, 100]);
        let r = judge.judge(&[a, b], None).unwrap();
        let mean: Vec<f64> =
            serde_json::from_value(r.get("item_mean_rgb").unwrap().clone()).unwrap();
        let want = [
            (10.0 * 200.0 + 20.0 * 100.0) / 30.0 / 255.0,
            0.0,
            100.0 / 255.0,
        ];
        for (m, w) in mean.iter().zip(want) {
            assert!((m - w).abs() < 1e-12, "{mean:?}");
        }
        let ratio = r.get("blue_to_red").and_then(Value::as_f64).unwrap();
        assert!((ratio - 0.75).abs() < 1e-12, "{ratio}");
        let classes = r.get("class_counts").unwrap().as_object().unwrap();
        assert_eq!(
            classes.values().map(|v| v.as_u64().unwrap()).sum::<u64>(),
            2
        );
        // All black: no item, no colour measure; a picture of the wrong size is refused.
        let r = judge.judge(&[vec![0u8; SIZE * SIZE * 3]], None).unwrap();
        assert!(r.get("blue_to_red").is_none());
        assert!(judge.judge(&[vec![0u8; 12]], None).is_err());
    }
}
