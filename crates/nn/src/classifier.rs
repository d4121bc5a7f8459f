//! A small convolutional classifier for judging generated images (issue 5): trained on the real
//! training set, it reports which class a generated image looks like, and its penultimate layer
//! gives the features of a Frechet distance (as FID uses Inception's, at MNIST scale).

use std::ops::Range;
use std::path::Path;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::optim::AdamConfig;
use burn::tensor::activation::{log_softmax, relu};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::{NnError, Result};

/// The architecture of a classifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassifierConfig {
    /// Image rows.
    pub height: usize,
    /// Image columns.
    pub width: usize,
    /// Number of classes.
    pub classes: usize,
    /// Channels of the first convolution (doubled by each of the two strided ones).
    pub channels: usize,
    /// Width of the feature layer (the Frechet distance's features).
    pub features: usize,
}

impl ClassifierConfig {
    /// 16 channels and 128 features.
    pub fn small(height: usize, width: usize, classes: usize) -> Self {
        Self {
            height,
            width,
            classes,
            channels: 16,
            features: 128,
        }
    }

    fn conv(cin: usize, cout: usize, stride: usize, device: &Device) -> Conv2d {
        Conv2dConfig::new([cin, cout], [3, 3])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(device)
    }

    /// The model, with burn's default initialisation (seeded through the device).
    pub fn init(&self, device: &Device) -> Result<Classifier> {
        if self.height == 0 || self.width == 0 || self.classes < 2 || self.channels == 0 {
            return Err(NnError::Invalid(
                "a classifier needs an image size, two classes or more, and channels".into(),
            ));
        }
        let c = self.channels;
        let flat = 4 * c * self.height.div_ceil(4) * self.width.div_ceil(4);
        Ok(Classifier {
            conv1: Self::conv(1, c, 1, device),
            conv2: Self::conv(c, 2 * c, 2, device),
            conv3: Self::conv(2 * c, 4 * c, 2, device),
            features: LinearConfig::new(flat, self.features).init(device),
            head: LinearConfig::new(self.features, self.classes).init(device),
            height: self.height,
            width: self.width,
        })
    }
}

/// Three 3x3 convolutions (the last two with stride 2), a feature layer, a linear head.
#[derive(Module, Debug)]
pub struct Classifier {
    conv1: Conv2d,
    conv2: Conv2d,
    conv3: Conv2d,
    features: Linear,
    head: Linear,
    #[module(skip)]
    height: usize,
    #[module(skip)]
    width: usize,
}

impl Classifier {
    /// The features `[n, features]` of flattened images `[n, h w]` in [-1, 1].
    pub fn features(&self, x: Tensor<2>) -> Tensor<2> {
        let n = x.dims()[0];
        let h = relu(
            self.conv1
                .forward(x.reshape([n, 1, self.height, self.width])),
        );
        let h = relu(self.conv2.forward(h));
        let h = relu(self.conv3.forward(h));
        let [_, c, a, b] = h.dims();
        relu(self.features.forward(h.reshape([n, c * a * b])))
    }

    /// The class logits `[n, classes]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.head.forward(self.features(x))
    }
}

/// A batch of labelled images: flattened pixels in [-1, 1] and each image's class.
pub type LabelledBatch = (Vec<f64>, Vec<usize>);

/// Minimises the cross-entropy of the classes of images drawn by `draw` (global rows ->
/// flattened images and their classes) with Adam on `device`; `on_step(step, loss)` sees every
/// loss and may stop the run by returning an error. The weights are drawn on the CPU and the
/// batches on the host, so the same seed trains the same classifier on every device (up to
/// float32 summation order).
#[allow(clippy::too_many_arguments)]
pub fn train_classifier(
    config: &ClassifierConfig,
    draw: &dyn Fn(Range<u64>) -> Result<LabelledBatch>,
    steps: usize,
    batch: usize,
    lr: f64,
    seed: u64,
    device: &Device,
    on_step: &mut dyn FnMut(usize, f64) -> Result<()>,
) -> Result<Classifier> {
    if steps == 0 || batch == 0 || !(lr > 0.0 && lr.is_finite()) {
        return Err(NnError::Invalid(
            "training needs steps >= 1, batch >= 1 and a positive learning rate".into(),
        ));
    }
    let mut model = crate::train::drawn_on_host(seed, device, |host| config.init(host))?;
    let device = device.clone().autodiff();
    let mut adam = AdamConfig::new().with_epsilon(1e-8).init();
    let (d, k) = (config.height * config.width, config.classes);
    for step in 1..=steps {
        let (x, labels) = draw((step as u64 - 1) * batch as u64..step as u64 * batch as u64)?;
        let mut target = vec![0f32; batch * k];
        for (i, l) in labels.iter().enumerate() {
            if *l >= k {
                return Err(NnError::Invalid(format!("label {l} but {k} classes")));
            }
            target[i * k + l] = 1.0;
        }
        let x: Vec<f32> = x.iter().map(|v| *v as f32).collect();
        let x = Tensor::<2>::from_data(TensorData::new(x, [batch, d]), &device);
        let target = Tensor::<2>::from_data(TensorData::new(target, [batch, k]), &device);
        // Cross-entropy: -mean_i log softmax(logits_i)[label_i].
        let loss = -(log_softmax(model.forward(x), 1) * target)
            .sum_dim(1)
            .mean();
        let value;
        (model, value) = crate::train::descend(model, loss, &mut adam, lr, step)?;
        on_step(step, value)?;
    }
    Ok(model)
}

/// The predicted class and the features of each image (flattened, in [-1, 1]), in batches.
pub fn classify(
    model: &Classifier,
    x: &[f64],
    d: usize,
    device: &Device,
) -> Result<(Vec<usize>, Vec<Vec<f64>>)> {
    let n = x.len() / d.max(1);
    let (mut classes, mut feats) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for chunk in x.chunks(512 * d) {
        let m = chunk.len() / d;
        let v: Vec<f32> = chunk.iter().map(|v| *v as f32).collect();
        let t = Tensor::<2>::from_data(TensorData::new(v, [m, d]), device);
        let f = model.features(t);
        let logits = model.head.forward(f.clone());
        let read = |t: Tensor<2>| -> Result<Vec<f32>> {
            t.into_data()
                .try_into_vec::<f32>()
                .map_err(|e| NnError::Invalid(format!("{e:?}")))
        };
        let (f, l) = (read(f)?, read(logits)?);
        let k = l.len() / m;
        for i in 0..m {
            let row = &l[i * k..(i + 1) * k];
            let best = (0..k)
                .max_by(|a, b| row[*a].total_cmp(&row[*b]))
                .unwrap_or(0);
            classes.push(best);
        }
        let w = f.len() / m;
        feats.extend(
            f.chunks(w)
                .map(|r| r.iter().map(|v| f64::from(*v)).collect()),
        );
    }
    Ok((classes, feats))
}

const FORMAT: &str = "diffuse-classifier-1";

/// A trained classifier's `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierRecord {
    /// The file format, checked on loading.
    pub format: String,
    /// The architecture.
    pub config: ClassifierConfig,
    /// Class names, in the order of the logits.
    pub classes: Vec<String>,
    /// The --data spec it was trained on.
    pub data: String,
    /// The --test-data spec it was scored on.
    pub test_data: String,
    /// Accuracy on all of the test data.
    pub test_accuracy: f64,
    /// Optimiser steps.
    pub trained_steps: usize,
}

impl ClassifierRecord {
    /// A record of the current format.
    pub fn new(config: ClassifierConfig, classes: Vec<String>, data: String) -> Self {
        Self {
            format: FORMAT.into(),
            config,
            classes,
            data,
            test_data: String::new(),
            test_accuracy: f64::NAN,
            trained_steps: 0,
        }
    }
}

/// Saves a classifier folder (`model.safetensors`, `config.json`), each file atomically.
pub fn save_classifier(dir: &Path, model: &Classifier, record: &ClassifierRecord) -> Result<()> {
    crate::checkpoint::save_folder(dir, model, record, &[])
}

/// Loads a classifier folder; a wrong format or a weight mismatch is an error.
pub fn load_classifier(dir: &Path, device: &Device) -> Result<(Classifier, ClassifierRecord)> {
    let (text, bytes) = crate::checkpoint::read_folder(dir)?;
    load_classifier_bytes(&text, bytes, dir, device)
}

/// A classifier from the text of its `config.json` and the bytes of its weights (compiled into
/// the program); `dir` names it in errors.
pub fn load_classifier_bytes(
    text: &str,
    weights: Vec<u8>,
    dir: &Path,
    device: &Device,
) -> Result<(Classifier, ClassifierRecord)> {
    use crate::checkpoint::err;
    let path = dir.join("config.json");
    let record: ClassifierRecord = serde_json::from_str(text)
        .map_err(|e| err(&path, format!("not a diffuse classifier config: {e}")))?;
    if record.format != FORMAT {
        return Err(err(
            &path,
            format!("format '{}' is not '{FORMAT}'", record.format),
        ));
    }
    let model = record.config.init(device)?;
    let model = crate::checkpoint::weights_into(weights, &dir.join("model.safetensors"), model)?;
    Ok((model, record))
}
