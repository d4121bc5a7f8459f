//! Checkpoints: a folder with `model.safetensors` and `config.json`, each written to a temporary
//! file and renamed into place, so a crash never leaves half a file where a good one was.

use std::path::Path;

use burn::module::Module;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::model::{Model, ModelConfig};
use crate::train::Standardization;
use crate::{NnError, Result};

const FORMAT: &str = "diffuse-mlp-1";

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
    /// What the model predicts: "eps", "x0" or "v".
    pub target: String,
    /// The data standardisation.
    pub standardization: Standardization,
    /// The --data spec it was trained on.
    pub data: String,
    /// Optimiser steps taken so far.
    pub trained_steps: usize,
    /// How classes were given: "none", "sign" (seed 000's left/right prompt) or "label".
    #[serde(default = "no_condition")]
    pub cond: String,
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
    /// The prediction target as the core's type.
    pub fn prediction(&self) -> Result<diffuse_core::Target> {
        parse_target(&self.target)
    }
}

/// "eps", "x0" or "v".
pub fn parse_target(name: &str) -> Result<diffuse_core::Target> {
    Ok(match name {
        "eps" => diffuse_core::Target::Eps,
        "x0" => diffuse_core::Target::X0,
        "v" => diffuse_core::Target::V,
        other => {
            return Err(NnError::Invalid(format!(
                "unknown prediction target '{other}' (expected eps, x0 or v)"
            )));
        }
    })
}

fn no_condition() -> String {
    "none".into()
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
            format: FORMAT.into(),
            model,
            schedule,
            steps,
            target: "eps".into(),
            standardization,
            data,
            trained_steps,
            cond: no_condition(),
            classes: vec![],
            ema: None,
            text_encoder: None,
            captions: vec![],
            label_embeddings: vec![],
        }
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
    std::fs::create_dir_all(dir).map_err(|e| err(dir, e.to_string()))?;
    save_weights(&dir.join("model.safetensors"), model)?;
    let json = serde_json::to_string_pretty(record).map_err(|e| err(dir, e.to_string()))?;
    write_atomic(&dir.join("config.json"), json.as_bytes())
}

/// Writes a model's weights to one safetensors file, atomically.
pub fn save_weights<M: Module>(path: &Path, model: &M) -> Result<()> {
    // Tensor names without the Model enum's variant ("layers.0.weight", not "Mlp.layers.0.weight"):
    // config.json already says which architecture it is, and MLP files keep their old names.
    let mut store = SafetensorsStore::from_bytes(None).skip_enum_variants(true);
    model
        .save_into(&mut store)
        .map_err(|e| err(path, format!("cannot serialise the weights: {e}")))?;
    let bytes = store
        .get_bytes()
        .map_err(|e| err(path, format!("cannot serialise the weights: {e}")))?;
    write_atomic(path, &bytes)
}

/// Loads a model folder; any mismatch between the weights and the architecture is an error.
pub fn load(dir: &Path, device: &Device) -> Result<(Model, Checkpoint)> {
    let cfg_path = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg_path).map_err(|e| err(&cfg_path, e.to_string()))?;
    let weights = dir.join("model.safetensors");
    let bytes = std::fs::read(&weights).map_err(|e| err(&weights, e.to_string()))?;
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
    if record.format != FORMAT {
        return Err(err(
            &cfg_path,
            format!("format '{}' is not '{FORMAT}'", record.format),
        ));
    }
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
