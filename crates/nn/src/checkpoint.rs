//! Checkpoints: a folder with `model.safetensors` and `config.json` (and, for a training run,
//! `raw.safetensors` and `loss.csv`), written as one unit by [`crate::commit`], so that a crash
//! never leaves half a file, or files of two steps, where a good checkpoint was. The weights'
//! header is written in a fixed order: the same weights give the same bytes.

use std::path::Path;

use burn::module::Module;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::model::{Model, ModelConfig};
use crate::train::Standardization;
use crate::{NnError, Result};

/// The format of MLP checkpoints, and of every checkpoint written before formats were named
/// per kind (UNets included): still read.
const FORMAT_MLP: &str = "diffuse-mlp-1";
/// The format of UNet checkpoints.
const FORMAT_UNET: &str = "diffuse-unet-1";

/// The format name a checkpoint of `model` is written with.
fn format_of(model: &ModelConfig) -> &'static str {
    match model {
        ModelConfig::Mlp(_) => FORMAT_MLP,
        ModelConfig::UNet(_) => FORMAT_UNET,
    }
}

/// How a model is conditioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Conditioning {
    /// Not at all.
    #[default]
    None,
    /// Seed 000's prompt: "left" below zero, "right" above (by the first coordinate's sign).
    Sign,
    /// The data's class labels.
    Label,
    /// Sentences describing each class, read by a text encoder as a pooled embedding.
    Prompt,
}

impl Conditioning {
    /// The name users write (`--cond`).
    pub fn as_str(self) -> &'static str {
        match self {
            Conditioning::None => "none",
            Conditioning::Sign => "sign",
            Conditioning::Label => "label",
            Conditioning::Prompt => "prompt",
        }
    }
}

impl std::str::FromStr for Conditioning {
    type Err = NnError;

    fn from_str(name: &str) -> Result<Self> {
        Ok(match name {
            "none" => Conditioning::None,
            "sign" => Conditioning::Sign,
            "label" => Conditioning::Label,
            "prompt" => Conditioning::Prompt,
            other => {
                return Err(NnError::Invalid(format!(
                    "unknown conditioning '{other}' (expected none, sign, label or prompt)"
                )));
            }
        })
    }
}

/// Everything needed to sample from a model, and how it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The file format, checked on loading.
    pub format: String,
    /// The architecture.
    pub model: ModelConfig,
    /// The schedule spec.
    pub schedule: String,
    /// T, the schedule's steps.
    pub steps: usize,
    /// What the model predicts.
    pub target: diffuse_core::Target,
    /// The data standardisation.
    pub standardization: Standardization,
    /// The --data spec it was trained on.
    pub data: String,
    /// Optimiser steps taken so far.
    pub trained_steps: usize,
    /// How the model is conditioned.
    #[serde(default)]
    pub cond: Conditioning,
    /// Class names, in the order of the model's one-hot slots.
    #[serde(default)]
    pub classes: Vec<String>,
    /// The decay of the weight average that model.safetensors holds (the raw weights, for
    /// resuming, are then in raw.safetensors).
    #[serde(default)]
    pub ema: Option<f64>,
    /// A prompt-conditioned model ("prompt"): the text encoder it reads embeddings of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_encoder: Option<String>,
    /// A prompt-conditioned model: the captions each class was trained with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub captions: Vec<Vec<String>>,
    /// A prompt-conditioned model: the embedding `--label` asks for, per class (its first
    /// caption's), so that labels need no text encoder at sampling time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub label_embeddings: Vec<Vec<f32>>,
}

impl Checkpoint {
    /// A checkpoint record of the current format.
    pub fn new(
        model: ModelConfig,
        schedule: String,
        steps: usize,
        standardization: Standardization,
        data: String,
        trained_steps: usize,
    ) -> Self {
        Self {
            format: format_of(&model).into(),
            model,
            schedule,
            steps,
            target: diffuse_core::Target::Eps,
            standardization,
            data,
            trained_steps,
            cond: Conditioning::None,
            classes: vec![],
            ema: None,
            text_encoder: None,
            captions: vec![],
            label_embeddings: vec![],
        }
    }
}

/// The most schedule steps a config may claim (the schedule's tables are allocated from it).
pub const MAX_STEPS: usize = 1_000_000;

impl Checkpoint {
    /// Checks what a hand-edited or damaged `config.json` (at `path`, for the error) could get
    /// wrong before anything is built from it: the architecture, the schedule's length, the
    /// standardisation (one finite mean and one positive std per coordinate), the weight
    /// average's decay and the class names.
    pub fn validate(&self, path: &Path) -> Result<()> {
        self.model
            .validate()
            .map_err(|e| err(path, format!("model: {e}")))?;
        if self.steps == 0 || self.steps > MAX_STEPS {
            return Err(err(
                path,
                format!(
                    "steps {}: a schedule has 1 to {MAX_STEPS} steps",
                    self.steps
                ),
            ));
        }
        let st = &self.standardization;
        let d = self.model.dim();
        if st.mean.len() != d || st.std.len() != d {
            return Err(err(
                path,
                format!(
                    "standardization: {} means and {} stds for data of dimension {d}",
                    st.mean.len(),
                    st.std.len()
                ),
            ));
        }
        if let Some((j, m)) = st.mean.iter().enumerate().find(|(_, m)| !m.is_finite()) {
            return Err(err(
                path,
                format!("standardization.mean[{j}] = {m} is not finite"),
            ));
        }
        if let Some((j, v)) = st
            .std
            .iter()
            .enumerate()
            .find(|(_, v)| !(v.is_finite() && **v > 0.0))
        {
            return Err(err(
                path,
                format!("standardization.std[{j}] = {v}: a std must be positive and finite"),
            ));
        }
        if let Some(e) = self.ema.filter(|e| !(*e > 0.0 && *e < 1.0)) {
            return Err(err(path, format!("ema {e}: a decay is between 0 and 1")));
        }
        if let Some(i) = self.classes.iter().position(|c| c.trim().is_empty()) {
            return Err(err(path, format!("classes[{i}] is an empty name")));
        }
        let k = self.model.classes();
        if k > 0 && !self.classes.is_empty() && self.classes.len() != k {
            return Err(err(
                path,
                format!(
                    "{} class names for a model of {k} classes",
                    self.classes.len()
                ),
            ));
        }
        Ok(())
    }
}

pub(crate) fn err(path: &Path, message: impl Into<String>) -> NnError {
    NnError::Checkpoint {
        path: path.display().to_string(),
        message: message.into(),
    }
}

pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| err(path, e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| err(path, e.to_string()))
}

/// Saves `model` and its record into the folder `dir`.
pub fn save(dir: &Path, model: &Model, record: &Checkpoint) -> Result<()> {
    save_with(dir, model, record, &[])
}

/// Saves `model`, its record and `extra` files (name, bytes: a training run's raw weights and
/// loss history) into the folder `dir`, as one unit.
pub fn save_with(
    dir: &Path,
    model: &Model,
    record: &Checkpoint,
    extra: &[(&str, &[u8])],
) -> Result<()> {
    // A checkpoint read in an older format is written in its kind's current one.
    let record = Checkpoint {
        format: format_of(&record.model).into(),
        ..record.clone()
    };
    save_folder(dir, model, &record, extra)
}

/// Writes a model folder: `model.safetensors`, `config.json` and `extra`, as one unit.
pub(crate) fn save_folder<M: Module, R: Serialize>(
    dir: &Path,
    model: &M,
    record: &R,
    extra: &[(&str, &[u8])],
) -> Result<()> {
    let weights = weights_bytes(model).map_err(|e| err(&dir.join("model.safetensors"), e))?;
    let json = serde_json::to_string_pretty(record).map_err(|e| err(dir, e.to_string()))?;
    let mut files: Vec<(&str, &[u8])> = vec![
        ("model.safetensors", &weights),
        ("config.json", json.as_bytes()),
    ];
    files.extend_from_slice(extra);
    crate::commit::commit(dir, &files)
}

/// Reads a model folder: the text of `config.json` and the bytes of `model.safetensors`.
pub(crate) fn read_folder(dir: &Path) -> Result<(String, Vec<u8>)> {
    let config = crate::commit::read(dir, "config.json")?;
    let text =
        String::from_utf8(config).map_err(|_| err(&dir.join("config.json"), "not UTF-8 text"))?;
    let bytes = crate::commit::read(dir, "model.safetensors")?;
    Ok((text, bytes))
}

/// Writes a model's weights to one safetensors file, atomically.
pub fn save_weights<M: Module>(path: &Path, model: &M) -> Result<()> {
    let bytes = weights_bytes(model).map_err(|e| err(path, e))?;
    write_atomic(path, &bytes)
}

/// A model's weights as safetensors bytes, the header's keys in a fixed (sorted) order.
pub fn weights_bytes<M: Module>(model: &M) -> std::result::Result<Vec<u8>, String> {
    // Tensor names without the Model enum's variant ("layers.0.weight", not "Mlp.layers.0.weight"):
    // config.json already says which architecture it is, and MLP files keep their old names.
    let mut store = SafetensorsStore::from_bytes(None).skip_enum_variants(true);
    model
        .save_into(&mut store)
        .map_err(|e| format!("cannot serialise the weights: {e}"))?;
    let bytes = store
        .get_bytes()
        .map_err(|e| format!("cannot serialise the weights: {e}"))?;
    canonical(&bytes)
}

/// Safetensors bytes with the header's objects sorted by key (burn writes its metadata from a
/// hash map, in a different order each run). The offsets are relative to the data, which does
/// not move.
fn canonical(bytes: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let bad = || "cannot serialise the weights: a malformed safetensors header".to_string();
    let n = u64::from_le_bytes(
        bytes
            .get(..8)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?,
    );
    let end = usize::try_from(n)
        .ok()
        .and_then(|n| n.checked_add(8))
        .ok_or_else(bad)?;
    let header: serde_json::Value =
        serde_json::from_slice(bytes.get(8..end).ok_or_else(bad)?).map_err(|_| bad())?;
    let mut text = serde_json::to_string(&sorted(header)).map_err(|_| bad())?;
    // The data starts on an 8-byte boundary, as the format recommends.
    while text.len() % 8 != 0 {
        text.push(' ');
    }
    let mut out = Vec::with_capacity(8 + text.len() + bytes.len() - end);
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&bytes[end..]);
    Ok(out)
}

/// A JSON value with every object's keys in sorted order.
fn sorted(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let mut entries: Vec<(String, serde_json::Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        other => other,
    }
}

/// Loads a model folder; any mismatch between the weights and the architecture is an error.
pub fn load(dir: &Path, device: &Device) -> Result<(Model, Checkpoint)> {
    let (text, bytes) = read_folder(dir)?;
    load_bytes(&text, bytes, dir, device)
}

/// A model from the text of its `config.json` and the bytes of its `model.safetensors` (a
/// model compiled into the program); `dir` names it in errors.
pub fn load_bytes(
    config: &str,
    weights: Vec<u8>,
    dir: &Path,
    device: &Device,
) -> Result<(Model, Checkpoint)> {
    let cfg_path = dir.join("config.json");
    let record: Checkpoint = serde_json::from_str(config)
        .map_err(|e| err(&cfg_path, format!("not a diffuse model config: {e}")))?;
    let kind = format_of(&record.model);
    if record.format != kind && record.format != FORMAT_MLP {
        return Err(err(
            &cfg_path,
            format!("format '{}' is not '{kind}'", record.format),
        ));
    }
    record.validate(&cfg_path)?;
    let model = weights_into(
        weights,
        &dir.join("model.safetensors"),
        record.model.init(device),
    )?;
    Ok((model, record))
}

/// Reads one safetensors file into a model of `config`; any mismatch is an error.
pub fn load_weights(weights: &Path, config: &ModelConfig, device: &Device) -> Result<Model> {
    read_weights(weights, config.init(device))
}

/// Reads the weights file `name` of the model folder `dir` (as [`crate::commit`] wrote it)
/// into a model of `config`; any mismatch is an error.
pub fn load_folder_weights(
    dir: &Path,
    name: &str,
    config: &ModelConfig,
    device: &Device,
) -> Result<Model> {
    let bytes = crate::commit::read(dir, name)?;
    weights_into(bytes, &dir.join(name), config.init(device))
}

/// Reads one safetensors file into `model`; any mismatch is an error.
pub(crate) fn read_weights<M: Module>(weights: &Path, model: M) -> Result<M> {
    let bytes = std::fs::read(weights).map_err(|e| err(weights, e.to_string()))?;
    weights_into(bytes, weights, model)
}

/// Safetensors bytes into `model`; any mismatch is an error naming `weights`.
pub(crate) fn weights_into<M: Module>(bytes: Vec<u8>, weights: &Path, mut model: M) -> Result<M> {
    // Partial loading reports what is missing instead of failing with a page-long summary; the
    // check below turns any gap into one line.
    let mut store = SafetensorsStore::from_bytes(Some(bytes))
        .skip_enum_variants(true)
        .allow_partial(true);
    let result = model.load_from(&mut store).map_err(|e| {
        let first = e.to_string();
        let first = first.lines().next().unwrap_or("").trim().to_string();
        err(weights, format!("truncated or corrupted weights: {first}"))
    })?;
    if !result.missing.is_empty() || !result.unused.is_empty() || !result.errors.is_empty() {
        return Err(err(
            weights,
            format!(
                "the weights do not fit the architecture in config.json ({} missing, {} unused, {} mismatched tensors)",
                result.missing.len(),
                result.unused.len(),
                result.errors.len()
            ),
        ));
    }
    Ok(model)
}
