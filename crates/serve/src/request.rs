//! A generation request as the page (or any client) sends it, checked against the model it names
//! and the server's limits before it may wait in a queue: a bad value is refused at once, with
//! the field it concerns, and never reaches a sampler.

use anyhow::{Result, bail};
use diffuse_core::samplers::{SamplerName, SamplerSpec};
use diffuse_pipeline::sd::SdRequest;
use diffuse_pipeline::{Ask, Request};
use serde::{Deserialize, Serialize};

use crate::limits::Limits;
use crate::models::{Kind, Model, Served};

/// What the client asks for. Every field but `model` is optional: the model's defaults (those
/// of `diffuse sample`) fill the rest.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Generate {
    /// The model's name, as `GET /api/models` lists it.
    pub model: String,
    /// A sentence (prompt models, Stable Diffusion) or a class name.
    #[serde(default)]
    pub prompt: Option<String>,
    /// What guidance pushes away from (Stable Diffusion).
    #[serde(default)]
    pub negative_prompt: Option<String>,
    /// A class name, or "all" (class-conditioned models).
    #[serde(default)]
    pub label: Option<String>,
    /// A sampler name (`diffuse sample --sampler`).
    #[serde(default)]
    pub sampler: Option<String>,
    /// Denoiser evaluations (Stable Diffusion: denoising steps).
    #[serde(default)]
    pub nfe: Option<usize>,
    /// Classifier-free guidance scale.
    #[serde(default)]
    pub guidance: Option<f64>,
    /// Seed of all randomness (0 by default, as the command line).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Samples (per class with label "all").
    #[serde(default)]
    pub n: Option<usize>,
    /// Image side in pixels (Stable Diffusion; other models draw at their own size).
    #[serde(default)]
    pub size: Option<usize>,
}

/// A request ready for its model's queue.
pub enum Job {
    /// For one of our models, exactly what `diffuse sample` would run.
    Ours(Request),
    /// For a Stable Diffusion folder.
    Sd(Box<SdRequest>),
}

/// An empty or blank text field means "not given" (a page sends its empty boxes).
fn given(text: &Option<String>) -> Option<&str> {
    text.as_deref().map(str::trim).filter(|t| !t.is_empty())
}

impl Generate {
    /// Parses a request body, naming the field that does not parse.
    pub fn parse(body: &[u8]) -> Result<Self> {
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| anyhow::anyhow!("the request is not valid JSON: {e}"))?;
        if !value.is_object() {
            bail!(
                "the request is not a generation request: a JSON object with at least a model, \
                 such as {{\"model\": \"fashion-mnist\"}}"
            );
        }
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." || path.is_empty() {
                anyhow::anyhow!("{inner}")
            } else {
                anyhow::anyhow!("{path}: {inner}")
            }
        })
    }

    /// The request checked against `model` and `limits`.
    pub fn check(&self, served: &Served, limits: &Limits) -> Result<Job> {
        for (field, text) in [
            ("prompt", &self.prompt),
            ("negative_prompt", &self.negative_prompt),
            ("label", &self.label),
        ] {
            if let Some(t) = text
                && t.chars().count() > limits.prompt_chars
            {
                bail!(
                    "{field}: {} characters; at most {} are read",
                    t.chars().count(),
                    limits.prompt_chars
                );
            }
        }
        let sampler: Option<SamplerName> = match given(&self.sampler) {
            Some(s) => Some(s.parse().map_err(|e| anyhow::anyhow!("sampler: {e}"))?),
            None => None,
        };
        if let Some(k) = self.nfe
            && !(1..=limits.steps).contains(&k)
        {
            bail!("nfe: {k} is outside 1..={}", limits.steps);
        }
        if let Some(g) = self.guidance
            && !(g.is_finite() && g.abs() <= 100.0)
        {
            bail!("guidance: {g} is not a number in [-100, 100]");
        }
        let seed = self.seed.unwrap_or(0);
        match &served.model {
            Model::Ours(model) => {
                if given(&self.negative_prompt).is_some() {
                    bail!("negative_prompt: only Stable Diffusion models take a negative prompt");
                }
                let ask = Ask::from_options(given(&self.label), given(&self.prompt))
                    .map_err(|e| anyhow::anyhow!("{}", e.to_string().replace("--", "")))?;
                let defaults = model.defaults();
                let spec = SamplerSpec::chosen(sampler, self.nfe, defaults.sampler, defaults.nfe);
                let request = Request {
                    seed,
                    ..Request::for_model(model, ask, self.n, self.guidance, spec)
                };
                let groups = if request.ask.every_class(model) {
                    model.record.classes.len().max(1)
                } else {
                    1
                };
                let cap = match served.info.kind {
                    Kind::Points => limits.points,
                    _ => limits.images,
                };
                if request.n * groups > cap {
                    bail!(
                        "n: {} samples{} are more than this server draws at once ({cap})",
                        request.n * groups,
                        if groups > 1 {
                            " (n for each class)"
                        } else {
                            ""
                        }
                    );
                }
                if let Some(s) = self.size
                    && served.info.image.is_none_or(|(h, w, _)| h != s || w != s)
                {
                    bail!(
                        "size: this model draws {}; it has no size to choose",
                        match served.info.image {
                            Some((h, w, _)) => format!("{h}x{w} images"),
                            None => "points".to_string(),
                        }
                    );
                }
                // The request's own errors (guidance with nothing to guide, ...), and the
                // sampler's (a budget it cannot take), before the queue.
                request
                    .check()
                    .and_then(|()| request.ask.check(model))
                    .map_err(|e| anyhow::anyhow!("{}", e.to_string().replace("--", "")))?;
                request.sampler.sampler(model.record.steps, 0)?;
                Ok(Job::Ours(request))
            }
            Model::Sd(sd) => {
                let Some(prompt) = given(&self.prompt) else {
                    bail!(
                        "prompt: a Stable Diffusion model needs a prompt: what to draw, in words"
                    );
                };
                if given(&self.label).is_some() {
                    bail!("label: Stable Diffusion models take a prompt, not a label");
                }
                for (field, text) in [
                    ("prompt", Some(prompt)),
                    ("negative_prompt", given(&self.negative_prompt)),
                ] {
                    if let Some(t) = text
                        && let Some((k, max)) = sd.too_long(t)?
                        && !sd.trained_here()
                    {
                        bail!(
                            "{field}: {k} tokens with the start and end markers, but the text encoder reads {max}: shorten it"
                        );
                    }
                }
                let mut request = SdRequest::for_pipeline(sd, prompt);
                request.negative_prompt = given(&self.negative_prompt).unwrap_or("").to_string();
                if let Some(g) = self.guidance {
                    request.guidance = g;
                }
                request.sampler = sampler;
                if let Some(k) = self.nfe {
                    request.steps = k;
                }
                request.seed = seed;
                request.n = self.n.unwrap_or(1);
                if request.n == 0 || request.n > limits.sd_images {
                    bail!("n: {} is outside 1..={}", request.n, limits.sd_images);
                }
                if let Some(s) = self.size {
                    if s > limits.size {
                        bail!(
                            "size: {s} pixels is more than this server draws ({})",
                            limits.size
                        );
                    }
                    request.height = Some(s);
                    request.width = Some(s);
                }
                diffuse_pipeline::sd::check(sd, &request).map_err(|e| {
                    anyhow::anyhow!(
                        "{}",
                        e.to_string()
                            .replace("--height", "size")
                            .replace("--width", "size")
                    )
                })?;
                Ok(Job::Sd(Box::new(request)))
            }
        }
    }
}
