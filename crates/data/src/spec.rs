//! The `--data` grammar and what a data set can do: be sampled, and give its exact distribution.

use std::path::Path;

use diffuse_core::{Mixture, NoiseSource, Stream};

use crate::colour::{COLOUR_SEED, colourise};
use crate::csv::{Table, read_csv};
use crate::gmm::read_gmm;
use crate::images::{
    FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, ImageSet, digits, mnist_dir, read_idx_dir,
    read_image_folder,
};
use crate::toy::{Toy, eight_gaussians, mixture1d};
use crate::{DataError, Result};

/// Where samples come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A distribution known in closed form (point masses, Gaussian mixtures).
    Mixture(Mixture),
    /// A toy distribution known only through samples.
    Toy(Toy),
    /// A finite data set from a file.
    Table(Table),
    /// Grayscale images with classes.
    Images(ImageSet),
}

/// A parsed `--data` spec.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The spec as given.
    pub spec: String,
    /// What it is.
    pub source: Source,
    /// Things the user should be told (e.g. weights were normalised).
    pub warnings: Vec<String>,
}

impl Dataset {
    /// Parses a spec: `delta:V[,V...]`, `gmm:FILE.json`, `csv:PATH` or a toy name.
    pub fn parse(spec: &str) -> Result<Self> {
        let (kind, arg) = spec
            .split_once(':')
            .map_or((spec, None), |(a, b)| (a, Some(b)));
        let mut warnings = vec![];
        let source = match (kind, arg) {
            ("delta", Some(values)) => {
                let v = values
                    .split(',')
                    .map(|s| {
                        let x: f64 = s.trim().parse().map_err(|_| {
                            DataError::Spec(format!("data '{spec}': '{s}' is not a number"))
                        })?;
                        if x.is_finite() {
                            Ok(x)
                        } else {
                            Err(DataError::Spec(format!(
                                "data '{spec}': {s} is not a finite number"
                            )))
                        }
                    })
                    .collect::<Result<Vec<f64>>>()?;
                Source::Mixture(Mixture::deltas(&v).map_err(|source| DataError::Core {
                    context: spec.into(),
                    source,
                })?)
            }
            ("gmm", Some(path)) => {
                let (m, w) = read_gmm(Path::new(path))?;
                warnings.extend(w);
                Source::Mixture(m)
            }
            ("csv", Some(path)) => Source::Table(read_csv(Path::new(path))?),
            ("fashion-mnist" | "fashion-mnist-test", dir) => {
                let dir = Path::new(dir.unwrap_or(FASHION_MNIST_DIR));
                if !dir.exists() {
                    return Err(DataError::Spec(format!(
                        "data '{spec}': {} does not exist (install the Debian package \
                         dataset-fashion-mnist, or give fashion-mnist:DIR)",
                        dir.display()
                    )));
                }
                let split = if kind == "fashion-mnist" {
                    "train"
                } else {
                    "t10k"
                };
                Source::Images(read_idx_dir(dir, split, Some(&FASHION_MNIST_CLASSES))?)
            }
            ("colour-fashion" | "colour-fashion-test", dir) => {
                let dir = Path::new(dir.unwrap_or(FASHION_MNIST_DIR));
                if !dir.exists() {
                    return Err(DataError::Spec(format!(
                        "data '{spec}': {} does not exist (install the Debian package \
                         dataset-fashion-mnist, or give {kind}:DIR)",
                        dir.display()
                    )));
                }
                let train = kind == "colour-fashion";
                let gray = read_idx_dir(
                    dir,
                    if train { "train" } else { "t10k" },
                    Some(&FASHION_MNIST_CLASSES),
                )?;
                Source::Images(colourise(&gray, train, COLOUR_SEED))
            }
            ("mnist" | "mnist-test", None) => {
                let dir = mnist_dir().ok_or_else(|| {
                    DataError::Spec(format!(
                        "data '{spec}': neither DIFFUSE_MNIST nor HOME is set; give {kind}:DIR"
                    ))
                })?;
                if !dir.exists() {
                    return Err(DataError::Spec(format!(
                        "data '{spec}': {} does not exist (run scripts/mnist.sh, or give \
                         {kind}:DIR)",
                        dir.display()
                    )));
                }
                let split = if kind == "mnist-test" {
                    "t10k"
                } else {
                    "train"
                };
                Source::Images(read_idx_dir(&dir, split, None)?)
            }
            ("mnist" | "mnist-test" | "idx", Some(dir)) => {
                let split = if kind == "mnist-test" {
                    "t10k"
                } else {
                    "train"
                };
                Source::Images(read_idx_dir(Path::new(dir), split, None)?)
            }
            ("digits", None) => Source::Images(digits()?),
            ("images", Some(dir)) => Source::Images(read_image_folder(Path::new(dir))?),
            ("mixture1d", None) => Source::Mixture(mixture1d()),
            ("8gaussians", None) => Source::Mixture(eight_gaussians()),
            (name, None) if Toy::from_name(name).is_some() => {
                Source::Toy(Toy::from_name(name).expect("checked by the guard"))
            }
            _ => {
                return Err(DataError::Spec(format!(
                    "unknown data '{spec}' (expected delta:V[,V...], gmm:FILE.json, csv:PATH, \
                     fashion-mnist[:DIR], colour-fashion[:DIR], mnist[:DIR], images:DIR, digits \
                     or one of {})",
                    Toy::NAMES.join(", ")
                )));
            }
        };
        Ok(Self {
            spec: spec.to_string(),
            source,
            warnings,
        })
    }

    /// The dimension d.
    pub fn dim(&self) -> usize {
        match &self.source {
            Source::Mixture(m) => m.dim(),
            Source::Toy(_) => 2,
            Source::Table(t) => t.dim(),
            Source::Images(i) => i.dim(),
        }
    }

    /// (height, width) of an image data set.
    pub fn image_shape(&self) -> Option<(usize, usize)> {
        match &self.source {
            Source::Images(i) => Some((i.height, i.width)),
            _ => None,
        }
    }

    /// Channels of an image data set (1 gray, 3 RGB); None for other data.
    pub fn image_channels(&self) -> Option<usize> {
        match &self.source {
            Source::Images(i) => Some(i.channels),
            _ => None,
        }
    }

    /// The closed-form distribution, if there is one.
    pub fn analytic(&self) -> Option<&Mixture> {
        match &self.source {
            Source::Mixture(m) => Some(m),
            _ => None,
        }
    }

    /// Draws rows `rows` (global indices), row-major `[n, d]`. A table is drawn from uniformly
    /// with replacement.
    pub fn sample(&self, noise: &NoiseSource, rows: std::ops::Range<u64>) -> Vec<f64> {
        match &self.source {
            Source::Mixture(m) => m.sample(noise, rows),
            Source::Toy(t) => t.sample(noise, rows),
            Source::Table(t) => {
                let d = t.dim();
                uniform_rows(t.len(), noise, rows)
                    .flat_map(|i| t.values[i * d..(i + 1) * d].to_vec())
                    .collect()
            }
            Source::Images(im) => uniform_rows(im.len(), noise, rows)
                .flat_map(|i| im.unit_row(i).collect::<Vec<f64>>())
                .collect(),
        }
    }

    /// The class names of a table's `label` column, sorted, or of an image set, in label order
    /// (empty without classes).
    pub fn label_names(&self) -> Vec<String> {
        match &self.source {
            Source::Images(im) => im.classes.clone(),
            Source::Table(Table {
                labels: Some(l), ..
            }) => {
                let mut names: Vec<String> = l.clone();
                names.sort();
                names.dedup();
                names
            }
            _ => vec![],
        }
    }

    /// The class index (into [`Self::label_names`]) of each row [`Self::sample`] draws for `rows`;
    /// None when the data has no `label` column.
    pub fn sample_labels(
        &self,
        noise: &NoiseSource,
        rows: std::ops::Range<u64>,
    ) -> Option<Vec<usize>> {
        if let Source::Images(im) = &self.source {
            return Some(
                uniform_rows(im.len(), noise, rows)
                    .map(|i| im.labels[i])
                    .collect(),
            );
        }
        let Source::Table(
            t @ Table {
                labels: Some(l), ..
            },
        ) = &self.source
        else {
            return None;
        };
        let names = self.label_names();
        Some(
            uniform_rows(t.len(), noise, rows)
                .map(|i| names.binary_search(&l[i]).unwrap_or(0))
                .collect(),
        )
    }

    /// The distribution whose exact denoiser drives the reverse process: the closed form when
    /// there is one, the whole table for a file, and for a toy set the empirical distribution of
    /// `reference` points drawn with `noise` (the ideal denoiser of a finite sample).
    pub fn exact(&self, reference: usize, noise: &NoiseSource) -> Result<Mixture> {
        let core = |source| DataError::Core {
            context: self.spec.clone(),
            source,
        };
        match &self.source {
            Source::Mixture(m) => Ok(m.clone()),
            Source::Table(t) => Mixture::empirical(t.rows()).map_err(core),
            Source::Images(im) => {
                Mixture::empirical((0..im.len()).map(|i| im.unit_row(i).collect()).collect())
                    .map_err(core)
            }
            Source::Toy(t) => {
                // A stream of rows far from those a run draws its own samples from.
                let start = 1u64 << 40;
                let v = t.sample(noise, start..start + reference as u64);
                Mixture::empirical(v.chunks(2).map(<[f64]>::to_vec).collect()).map_err(core)
            }
        }
    }
}

/// The row of an n-row data set drawn for each global row: uniform, with replacement.
fn uniform_rows(
    n: usize,
    noise: &NoiseSource,
    rows: std::ops::Range<u64>,
) -> impl Iterator<Item = usize> + '_ {
    rows.map(move |r| ((noise.uniform(Stream::Data, 0, r, 0) * n as f64) as usize).min(n - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind() {
        assert_eq!(Dataset::parse("delta:-15,-5,1,15").unwrap().dim(), 1);
        assert_eq!(
            Dataset::parse("delta:0.4")
                .unwrap()
                .analytic()
                .unwrap()
                .means(),
            &[vec![0.4]]
        );
        for name in Toy::NAMES {
            let d = Dataset::parse(name).unwrap();
            assert_eq!(d.dim(), if *name == "mixture1d" { 1 } else { 2 }, "{name}");
            assert_eq!(d.sample(&NoiseSource::new(0), 0..10).len(), 10 * d.dim());
        }
    }

    #[test]
    fn bad_specs_are_clear_errors() {
        for (spec, want) in [
            ("delta:", "'' is not a number"),
            ("delta:1,x", "'x' is not a number"),
            ("delta:nan", "not a finite number"),
            ("gaussian", "unknown data 'gaussian'"),
            ("gmm:/no/such/file.json", "/no/such/file.json"),
            ("csv:/no/such/file.csv", "/no/such/file.csv"),
            ("spiral:3", "unknown data"),
        ] {
            let e = Dataset::parse(spec).unwrap_err().to_string();
            assert!(e.contains(want), "{spec}: {e:?}");
        }
    }
}
