//! Generation from a trained model, on one screen: what to ask for, the sampler, the pilot that
//! fixes its grid, then every group of samples (one per class with [`Ask::AllLabels`]) drawn in
//! batches through the guided (and, for images, clipped) denoiser.

use anyhow::{Result, bail};
use diffuse_core::samplers::{BatchNoise, Fixed, SamplerName, SamplerSpec};
use diffuse_core::{Clipped, Condition, Denoiser, Guided, NoiseSource, Stoppable, device};
use diffuse_nn::Conditioning;

use crate::load::Loaded;
use crate::positive;
use crate::report::Report;
use crate::run::{PILOT, Watch, fix, run_batches};

/// What to ask the model for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// Nothing: unconditional samples.
    Nothing,
    /// One class, by name (for seed 000's sign models: left or right).
    Label(String),
    /// Every class in turn, n samples each.
    AllLabels,
    /// A sentence, for a model trained on prompts; for other conditioned models, a class name
    /// (or "all").
    Prompt(String),
}

/// A generation request.
#[derive(Debug, Clone)]
pub struct Request {
    /// Samples (per class with [`Ask::AllLabels`]).
    pub n: usize,
    /// Samples per batch; the samples do not depend on it.
    pub batch: usize,
    /// Seed of all randomness.
    pub seed: u64,
    /// The sampler.
    pub sampler: SamplerSpec,
    /// What to ask for.
    pub ask: Ask,
    /// Classifier-free guidance weight: 0 unconditional, 1 conditional, > 1 guided.
    pub guidance: f64,
    /// For image models: clip the predicted clean image to the pixel range [-1, 1].
    pub clip: bool,
    /// For a model trained on captions: give it the prompt's own embedding, not the caption
    /// it is read as ([`crate::prompt_reading`]).
    pub prompt_as_is: bool,
}

impl Request {
    /// The request's own errors, found before any work: sizes, and guidance with nothing to
    /// guide towards.
    pub fn check(&self) -> Result<()> {
        positive("--n", self.n)?;
        positive("--batch", self.batch)?;
        if !(self.guidance.is_finite() && self.guidance.abs() <= 1e3) {
            bail!(
                "--guidance {:e} is not a number in [-1000, 1000] (useful values are 0 to about 10)",
                self.guidance
            );
        }
        if self.guidance != 1.0 && self.ask == Ask::Nothing {
            bail!(
                "--guidance {} needs something to guide towards: give --prompt or --label",
                self.guidance
            );
        }
        Ok(())
    }
}

impl Ask {
    /// What a user asked for with a label (`"all"`: every class in turn) or a prompt.
    pub fn from_options(label: Option<&str>, prompt: Option<&str>) -> Result<Ask> {
        if prompt.is_some_and(|p| p.trim().is_empty()) {
            bail!(
                "--prompt is empty: say what to draw, or leave --prompt out for unconditional samples"
            );
        }
        if label.is_some_and(|l| l.trim().is_empty()) {
            bail!("--label is empty: name a class, or all");
        }
        Ok(match (label, prompt) {
            (Some(_), Some(_)) => bail!("give --label or --prompt, not both"),
            (None, None) => Ask::Nothing,
            (Some("all"), None) => Ask::AllLabels,
            (Some(l), None) => Ask::Label(l.to_string()),
            (None, Some(p)) => Ask::Prompt(p.to_string()),
        })
    }

    /// Refuses what `model` cannot be asked for (a class it does not know, a label or prompt
    /// for a model trained without classes), before any work.
    pub fn check(&self, model: &Loaded) -> Result<()> {
        let record = &model.record;
        let name = match self {
            Ask::Nothing => return Ok(()),
            _ if record.classes.is_empty() => bail!(
                "the model in {} was trained without classes: it takes no --label or --prompt",
                model.source.display()
            ),
            Ask::Prompt(_) if model.reads_prompts() => return Ok(()),
            Ask::AllLabels => "all",
            Ask::Label(l) | Ask::Prompt(l) => l.as_str(),
        };
        if name != "all" && !record.classes.iter().any(|c| c == name) {
            bail!(
                "label '{name}' is not one the model knows ({}, or all)",
                record.classes.join(", ")
            );
        }
        Ok(())
    }

    /// Whether it asks `model` for every class in turn (n samples each).
    pub fn every_class(&self, model: &Loaded) -> bool {
        match self {
            Ask::AllLabels => true,
            Ask::Prompt(p) => p == "all" && !model.reads_prompts(),
            _ => false,
        }
    }
}

impl Request {
    /// A request to `model` for `ask`, with the model's defaults ([`Loaded::defaults`]) where
    /// the user gave no n or guidance.
    pub fn for_model(
        model: &Loaded,
        ask: Ask,
        n: Option<usize>,
        guidance: Option<f64>,
        sampler: SamplerSpec,
    ) -> Self {
        let defaults = model.defaults();
        let n = n.unwrap_or(if ask.every_class(model) {
            defaults.n_per_class
        } else {
            defaults.n
        });
        let guidance = guidance.unwrap_or(match ask {
            Ask::Nothing => 1.0,
            _ => defaults.guidance,
        });
        Self {
            n,
            sampler,
            ask,
            guidance,
            ..Self::new(n)
        }
    }

    /// `n` unconditional samples by DDPM, seed 0, in one batch of up to 10,000.
    pub fn new(n: usize) -> Self {
        Self {
            n,
            batch: 10_000,
            seed: 0,
            sampler: SamplerSpec::new(SamplerName::Ddpm),
            ask: Ask::Nothing,
            guidance: 1.0,
            clip: true,
            prompt_as_is: false,
        }
    }
}

/// What a request produced.
#[derive(Debug, Clone)]
pub struct Samples {
    /// The samples, row-major, in the data's units.
    pub x: Vec<f64>,
    /// The dimension of a sample.
    pub dim: usize,
    /// The class asked for, per sample (empty when no class was asked for).
    pub labels: Vec<String>,
    /// Denoiser evaluations of one batch.
    pub nfe: usize,
    /// The sampler that ran, its grid fixed.
    pub fixed: Fixed,
    /// A prompt longer than the text encoder reads: its length in tokens.
    pub prompt_tokens_before_truncation: Option<usize>,
    /// The training caption (and its class) the prompt was read as.
    pub prompt_read_as: Option<(String, String)>,
}

impl Samples {
    /// The number of samples.
    pub fn len(&self) -> usize {
        self.x.len() / self.dim.max(1)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.x.is_empty()
    }

    /// What a front end records of the run that drew them for `request`: the sampler and its
    /// settings, what was asked (label, prompt), guidance, n, nfe and seed.
    pub fn report(&self, request: &Request) -> Report {
        let mut out = Report::new();
        out.set("sampler", request.sampler.name.as_str());
        out.settings(self.fixed.describe(&request.sampler));
        if let Some(why) = crate::grid_choice::for_model(&request.sampler, &self.fixed.sampler) {
            out.set("grid_choice", why);
        }
        let (label, prompt) = match &request.ask {
            Ask::Nothing => (None, None),
            Ask::Label(l) => (Some(l.as_str()), None),
            Ask::AllLabels => (Some("all"), None),
            Ask::Prompt(p) => (None, Some(p.as_str())),
        };
        out.set("label", label);
        out.set("prompt", prompt);
        if let Some(k) = self.prompt_tokens_before_truncation {
            out.set("prompt_tokens_before_truncation", k);
        }
        if let Some((caption, class)) = &self.prompt_read_as {
            out.set("prompt_read_as", caption.as_str());
            out.set("prompt_read_as_class", class.as_str());
        }
        out.num("guidance", request.guidance);
        out.set("n", self.len());
        out.set("nfe", self.nfe);
        out.set("seed", request.seed);
        out
    }
}

/// A group of samples asked for one thing.
struct Group {
    label: Option<String>,
    condition: Condition,
}

/// Turns what was asked into groups of conditions, encoding a prompt with the text encoder.
fn groups(model: &Loaded, ask: &Ask, as_is: bool, watch: &mut dyn Watch) -> Result<Prompted> {
    let record = &model.record;
    let unconditioned = Group {
        label: None,
        condition: Condition::None,
    };
    let class = |i: usize| Group {
        label: Some(record.classes[i].clone()),
        // A prompt model asked for a class reads its first caption's embedding.
        condition: match record.label_embeddings.get(i) {
            Some(e) if record.cond == Conditioning::Prompt => Condition::Vector(e.clone()),
            _ => Condition::Class(i),
        },
    };
    ask.check(model)?;
    let name = match ask {
        Ask::Nothing => return Ok(Prompted::of(vec![unconditioned])),
        Ask::Prompt(p) if model.reads_prompts() => {
            let encoder = text_encoder()?;
            let e = encoder.encode(p)?;
            if let Some(k) = e.truncated_from {
                watch.warn(&format!(
                    "the prompt has {k} tokens; the text encoder reads the first {}",
                    e.ids.len()
                ));
            }
            let (embedding, read_as) = match as_is {
                true => (e.embedding, None),
                false => read_as_caption(model, &encoder, e.embedding)?,
            };
            let group = Group {
                label: None,
                condition: Condition::Vector(embedding),
            };
            return Ok(Prompted {
                groups: vec![group],
                truncated: e.truncated_from,
                read_as,
            });
        }
        Ask::AllLabels => "all",
        Ask::Label(l) | Ask::Prompt(l) => l.as_str(),
    };
    if name == "all" {
        return Ok(Prompted::of((0..record.classes.len()).map(class).collect()));
    }
    // Known: checked above.
    let i = record.classes.iter().position(|c| c == name).unwrap_or(0);
    Ok(Prompted::of(vec![class(i)]))
}

/// The caption a prompt was read as, and its class.
type ReadAs = (String, String);

/// The groups to draw, and what became of a prompt.
struct Prompted {
    groups: Vec<Group>,
    /// A prompt longer than the encoder reads: its length in tokens.
    truncated: Option<usize>,
    /// The caption and class a prompt was read as.
    read_as: Option<ReadAs>,
}

impl Prompted {
    fn of(groups: Vec<Group>) -> Self {
        Self {
            groups,
            truncated: None,
            read_as: None,
        }
    }
}

/// The embedding of the model's caption that `prompt` is read as (with the caption and its
/// class), or `prompt` itself for a model whose record has no captions.
fn read_as_caption(
    model: &Loaded,
    encoder: &diffuse_text::TextEncoder,
    prompt: Vec<f32>,
) -> Result<(Vec<f32>, Option<ReadAs>)> {
    let record = &model.record;
    if record.captions.iter().all(|c| c.is_empty()) {
        return Ok((prompt, None));
    }
    let embedded = model.caption_embeddings(encoder)?;
    let Some(r) = crate::prompt_reading::read(&prompt, embedded, crate::prompt_reading::TAU) else {
        return Ok((prompt, None));
    };
    let caption = record.captions[r.class][r.caption].clone();
    let class = record.classes.get(r.class).cloned().unwrap_or_default();
    Ok((embedded[r.class][r.caption].clone(), Some((caption, class))))
}

/// The installed text encoder, or an error that says how to install it.
pub(crate) fn text_encoder() -> Result<diffuse_text::TextEncoder> {
    Ok(diffuse_text::TextEncoder::installed(&device::cpu())?)
}

/// Draws the samples `request` asks of `model`.
pub fn generate(model: &Loaded, request: &Request, watch: &mut dyn Watch) -> Result<Samples> {
    request.check()?;
    let n = request.n;
    let Prompted {
        groups,
        truncated,
        read_as,
    } = groups(model, &request.ask, request.prompt_as_is, watch)?;
    let (d, t, dev) = (model.dim(), model.record.steps, model.device.clone());
    // The samples of every group, and the copies made while writing them.
    crate::budget::check(
        &format!("--n {n}"),
        (n * groups.len().max(1)) as f64 * d as f64 * 8.0 * 3.0,
    )?;
    let clip = request.clip && model.clips();
    let stop = watch.stop_flag();
    let denoiser = |condition: &Condition| -> Box<dyn Denoiser + '_> {
        let guided = Guided::new(&model.denoiser, condition.clone(), request.guidance);
        let den: Box<dyn Denoiser + '_> = if clip {
            Box::new(Clipped::new(guided, -1.0, 1.0))
        } else {
            Box::new(guided)
        };
        match &stop {
            Some(flag) => Box::new(Stoppable::new(den, flag.clone())),
            None => den,
        }
    };
    let noise = NoiseSource::new(request.seed);
    let sampler = request.sampler.sampler(t, 0)?;
    for w in request.sampler.unused() {
        watch.warn(&w);
    }
    // The grid is fixed on the first group's prompt, or unconditioned for classes.
    let pilot_condition = match &request.ask {
        Ask::Prompt(_) if model.reads_prompts() => groups[0].condition.clone(),
        _ => Condition::None,
    };
    let pilot = BatchNoise::new(noise, 0..n.min(PILOT) as u64).prior(d, &dev);
    let fixed = fix(
        &sampler,
        &*denoiser(&pilot_condition),
        &model.schedule,
        pilot,
        t,
        0,
        watch,
    )?;
    let (mut x, mut labels, mut nfe) = (vec![], vec![], 0);
    watch.begin("sample", (n * groups.len()) as u64);
    for (g, group) in groups.iter().enumerate() {
        let den = denoiser(&group.condition);
        let rows = (g * n) as u64..((g + 1) * n) as u64;
        let mut prior = |rows| Ok(BatchNoise::new(noise, rows).prior(d, &dev));
        let (part, used) = run_batches(
            &fixed.sampler,
            &*den,
            &model.schedule,
            t,
            0,
            rows,
            request.batch,
            noise,
            &mut prior,
            watch,
        )?;
        x.extend(part);
        nfe = used;
        if let Some(l) = &group.label {
            labels.extend(std::iter::repeat_n(l.clone(), n));
        }
    }
    watch.finish();
    model.record.standardization.invert(&mut x);
    Ok(Samples {
        x,
        dim: d,
        labels,
        nfe,
        fixed,
        prompt_tokens_before_truncation: truncated,
        prompt_read_as: read_as,
    })
}
