//! The models a server offers: the shipped ones and every folder given on the command line (our
//! model folders and Stable Diffusion pipeline folders), each loaded once at start, with what
//! the page needs to build its form.

use std::path::Path;

use anyhow::{Context, Result};
use burn::tensor::Device;
use diffuse_core::samplers::SamplerName;
use diffuse_pipeline::sd::StableDiffusion;
use diffuse_pipeline::{Loaded, load_on};
use serde::Serialize;

/// What kind of samples a model draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Pictures from one of our image models.
    Image,
    /// Points (the toy models of seeds 000 to 004).
    Points,
    /// Pictures from a Stable Diffusion pipeline folder.
    StableDiffusion,
}

/// A loaded model.
pub enum Model {
    /// A model folder written by `diffuse train`, or a shipped model.
    Ours(Box<Loaded>),
    /// A diffusers pipeline folder.
    Sd(Box<StableDiffusion>),
}

/// A model's defaults and settings, as the page shows them.
#[derive(Debug, Clone, Serialize)]
pub struct Info {
    /// The name requests use.
    pub name: String,
    /// Where it came from: a folder, or the name of a shipped model.
    pub source: String,
    pub kind: Kind,
    /// Class names it can be asked for (with "all": every class in turn).
    pub classes: Vec<String>,
    /// Whether it reads a prompt as a sentence.
    pub reads_prompts: bool,
    /// `(height, width, channels)` of its pictures.
    pub image: Option<(usize, usize, usize)>,
    /// The dimension of a sample.
    pub dim: usize,
    /// What `diffuse sample` draws when told nothing more.
    pub n: usize,
    pub sampler: String,
    pub nfe: Option<usize>,
    pub guidance: f64,
    /// The samplers it runs.
    pub samplers: Vec<String>,
    /// Where it samples, as `--device` names it.
    pub device: String,
}

/// A model and its description.
pub struct Served {
    pub info: Info,
    pub model: Model,
}

/// Loads `arg` (a folder, or a shipped model's name) as `name`, on `device` (named
/// `device_name`).
pub fn open(arg: &Path, name: &str, device: &Device, device_name: &str) -> Result<Served> {
    let all: Vec<String> = SamplerName::ALL.iter().map(|s| s.to_string()).collect();
    let folder = diffuse_pipeline::shipped::model_folder(arg)?;
    if diffuse_pipeline::sd::is_pipeline(&folder) {
        let sd =
            StableDiffusion::load(&folder, device).with_context(|| format!("{}", arg.display()))?;
        let side = sd.default_size();
        let (guidance, nfe) = sd.default_guidance_and_steps();
        let sampler = diffuse_pipeline::sd::sampler_for_class(&sd.scheduler.class);
        let info = Info {
            name: name.to_string(),
            source: arg.display().to_string(),
            kind: Kind::StableDiffusion,
            classes: vec![],
            reads_prompts: true,
            image: Some((side, side, 3)),
            dim: 3 * side * side,
            n: 1,
            sampler: sampler.to_string(),
            nfe: Some(nfe),
            guidance,
            samplers: all,
            device: device_name.to_string(),
        };
        return Ok(Served {
            info,
            model: Model::Sd(Box::new(sd)),
        });
    }
    let model = load_on(arg, device)?;
    let defaults = model.defaults();
    let image = model.image_shape().map(|(h, w)| (h, w, 1));
    let info = Info {
        name: name.to_string(),
        source: arg.display().to_string(),
        kind: if image.is_some() {
            Kind::Image
        } else {
            Kind::Points
        },
        classes: model.record.classes.clone(),
        reads_prompts: model.reads_prompts(),
        image,
        dim: model.dim(),
        n: defaults.n,
        sampler: defaults.sampler.to_string(),
        nfe: defaults.nfe,
        guidance: defaults.guidance,
        samplers: all,
        device: device_name.to_string(),
    };
    Ok(Served {
        info,
        model: Model::Ours(Box::new(model)),
    })
}

/// The name of a model argument: a folder's last component, or a shipped model's name, made
/// unique among `taken` by a numeric suffix.
pub fn name_for(arg: &Path, taken: &[String]) -> String {
    let base = arg
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| arg.display().to_string());
    let mut name = base.clone();
    let mut k = 2;
    while taken.contains(&name) {
        name = format!("{base}-{k}");
        k += 1;
    }
    name
}
