//! Trained models from Python: training into a folder, loading a folder or a shipped model,
//! sampling it, and Stable Diffusion folders.

use std::path::PathBuf;

use anyhow::Context;
use diffuse_pipeline::sd::{self, SdRequest, StableDiffusion};
use diffuse_pipeline::{Ask, Loaded, Request, TrainRun, generate, load_on, train};
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray2};
use pyo3::prelude::*;

use crate::arrays::{Array1, Array2, matrix, rows};
use crate::sampling::{DensityOf, SamplerOptions, likelihoods, settings};
use crate::watch::{OrValueError, Raised, detached, device, refuse};

/// Samples, their labels, the evaluations of one batch, the sampler's settings (JSON) and the
/// caption and class a prompt was read as.
type SampleResult<'py> = PyResult<(
    Array2<'py>,
    Vec<String>,
    usize,
    String,
    Option<(String, String)>,
)>;

/// Settings of a training run, with the command line's names and defaults (`diffuse train`).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct TrainOptions {
    pub model: String,
    pub time_features: usize,
    pub channels: usize,
    pub hidden: usize,
    pub depth: usize,
    pub activation: String,
    pub schedule: String,
    pub timesteps: usize,
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    pub weight_decay: Option<f64>,
    pub no_standardize: bool,
    pub clip: Option<f64>,
    pub save_every: usize,
    pub resume: bool,
    pub force: bool,
    pub cond: String,
    pub target: String,
    pub ema: Option<f64>,
    pub label_dropout: f64,
    pub prompt_noise: f64,
    pub seed: u64,
    pub device: String,
}

/// Trains a model on a data spec, or on the rows of `x` and their `labels` (written to
/// `out/data.csv`, which the model's record then names), into the folder `out`. Returns the losses and the report (JSON).
#[pyfunction]
pub fn train_model<'py>(
    py: Python<'py>,
    data: Option<String>,
    x: Option<PyReadonlyArray2<'py, f64>>,
    labels: Option<Vec<String>>,
    out: PathBuf,
    options: TrainOptions,
    progress: Option<Py<PyAny>>,
) -> PyResult<(Array2<'py>, String)> {
    let o = options;
    // Settings first: a bad one must be refused before anything is written to `out`.
    let cond = o.cond.parse().context("cond").py()?;
    let target = o.target.parse().context("target").py()?;
    let on = device(&o.device)?;
    let earlier = ["model.safetensors", "config.json"]
        .into_iter()
        .map(|f| out.join(f))
        .find(|p| p.exists());
    if let Some(found) = earlier
        && !o.resume
        && !o.force
    {
        return refuse(format!(
            "out {} holds an earlier model ({}): give force=True to replace it, resume=True to continue its training, or choose another out",
            out.display(),
            found.display()
        ));
    }
    let data = match (data, x) {
        (Some(spec), None) => spec,
        (None, Some(x)) => {
            let (v, _, d) = rows(&x);
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create output folder {}", out.display()))
                .py()?;
            let path = out.join("data.csv");
            if o.resume && path.exists() {
                let before = diffuse_data::read_csv(&path).py()?;
                if before.values != v || before.dim() != d || before.labels != labels {
                    return refuse(format!(
                        "resume: the data differs from {}, which the model in {} was trained on",
                        path.display(),
                        out.display()
                    ));
                }
            } else if let Some(l) = &labels {
                diffuse_data::write_labelled_csv(&path, &v, d, l).py()?;
            } else {
                diffuse_data::write_csv(&path, &v, d).py()?;
            }
            format!("csv:{}", path.display())
        }
        _ => {
            return refuse("give data as a spec string or as an array of rows");
        }
    };
    let run = TrainRun {
        data,
        model: o.model,
        time_features: o.time_features,
        channels: o.channels,
        hidden: o.hidden,
        depth: o.depth,
        activation: o.activation,
        schedule: o.schedule,
        timesteps: o.timesteps,
        steps: o.steps,
        batch: o.batch,
        lr: o.lr,
        weight_decay: o.weight_decay,
        no_standardize: o.no_standardize,
        clip: o.clip,
        save_every: o.save_every,
        resume: o.resume,
        cond,
        target,
        ema: o.ema,
        label_dropout: o.label_dropout,
        prompt_noise: o.prompt_noise,
        kl_weight: diffuse_pipeline::KL_WEIGHT,
        vae: None,
        seed: o.seed,
        device: on,
        parallel: Default::default(),
    };
    let raised = Raised::default();
    let trained = detached(py, progress, &raised, |w| train(&run, &out, w))?;
    let losses: Vec<f64> = trained
        .losses
        .iter()
        .flat_map(|(k, l)| [*k as f64, *l])
        .collect();
    let report = serde_json::Value::Object(trained.report.into_map()).to_string();
    Ok((matrix(py, losses, 2)?, report))
}

/// A trained model, loaded from its folder or by a shipped name.
#[pyclass(module = "diffuse._diffuse")]
pub struct NativeModel {
    /// Boxed: a `Loaded` holds burn's `Device`, aligned to 64 bytes, and Python allocates a
    /// class's objects at 16 (pyo3 stops with a misaligned pointer otherwise).
    model: Box<Loaded>,
}

#[pymethods]
impl NativeModel {
    #[new]
    fn new(py: Python<'_>, path: PathBuf, device: &str) -> PyResult<Self> {
        let dev = self::device(device)?;
        let model = py.detach(|| load_on(&path, &dev)).py()?;
        Ok(Self {
            model: Box::new(model),
        })
    }

    /// The dimension of a sample.
    #[getter]
    fn dim(&self) -> usize {
        self.model.dim()
    }

    /// (height, width) of an image model's samples.
    #[getter]
    fn image_shape(&self) -> Option<(usize, usize)> {
        self.model.image_shape()
    }

    /// The class names it was trained on.
    #[getter]
    fn classes(&self) -> Vec<String> {
        self.model.record.classes.clone()
    }

    /// Whether it reads prompts as sentences.
    #[getter]
    fn reads_prompts(&self) -> bool {
        self.model.reads_prompts()
    }

    /// Its record (config.json) as JSON.
    #[getter]
    fn record(&self) -> PyResult<String> {
        serde_json::to_string(&self.model.record).py()
    }

    /// Where it came from.
    #[getter]
    fn source(&self) -> PathBuf {
        self.model.source.clone()
    }

    /// Samples, their labels, the evaluations of one batch, the sampler's settings (JSON) and
    /// what a prompt was read as.
    #[allow(clippy::too_many_arguments)]
    fn sample<'py>(
        &self,
        py: Python<'py>,
        n: Option<usize>,
        options: SamplerOptions,
        seed: u64,
        batch: usize,
        label: Option<String>,
        prompt: Option<String>,
        guidance: Option<f64>,
        clip: bool,
        prompt_as_is: bool,
        progress: Option<Py<PyAny>>,
    ) -> SampleResult<'py> {
        let model = &self.model;
        let defaults = model.defaults();
        let ask = Ask::from_options(label.as_deref(), prompt.as_deref()).py()?;
        let spec = options.spec(defaults.sampler, defaults.nfe).py()?;
        let request = Request {
            batch,
            seed,
            clip,
            prompt_as_is,
            ..Request::for_model(model, ask, n, guidance, spec)
        };
        request.check().py()?;
        let raised = Raised::default();
        let s = detached(py, progress, &raised, |w| generate(model, &request, w))?;
        let settings = settings(&s.fixed, &request.sampler);
        let read_as = s.prompt_read_as.clone();
        Ok((matrix(py, s.x, s.dim)?, s.labels, s.nfe, settings, read_as))
    }

    /// log p(x) of every row of x under the model (probability-flow ODE).
    #[allow(clippy::too_many_arguments)]
    fn log_likelihood<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
        probes: usize,
        ode_steps: usize,
        batch: usize,
        seed: u64,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<(Array1<'py>, usize, String)> {
        let steps = self.model.schedule.steps();
        likelihoods(
            py,
            DensityOf::Model(&self.model.source),
            x,
            "",
            steps,
            probes,
            ode_steps,
            batch,
            1,
            seed,
            progress,
        )
    }
}

/// The names of the pipelines shipped with diffuse (`load("colour-fashion")`).
#[pyfunction]
pub fn shipped_pipelines() -> Vec<&'static str> {
    diffuse_pipeline::shipped::PIPELINES
        .iter()
        .map(|p| p.name)
        .collect()
}

/// A Stable Diffusion pipeline folder as diffusers saves it.
#[pyclass(module = "diffuse._diffuse")]
pub struct NativeStableDiffusion {
    sd: StableDiffusion,
}

#[pymethods]
impl NativeStableDiffusion {
    #[new]
    fn new(py: Python<'_>, path: PathBuf, device: &str) -> PyResult<Self> {
        let dev = self::device(device)?;
        let sd = py
            .detach(|| {
                let folder = diffuse_pipeline::shipped::model_folder(&path)?;
                StableDiffusion::load(&folder, &dev)
            })
            .py()?;
        Ok(Self { sd })
    }

    /// Its default image size in pixels.
    #[getter]
    fn default_size(&self) -> usize {
        self.sd.default_size()
    }

    /// Images `[n, H, W, 3]` (uint8) for a prompt, and the sampler that ran.
    #[allow(clippy::too_many_arguments)]
    fn generate<'py>(
        &self,
        py: Python<'py>,
        prompt: String,
        negative_prompt: String,
        guidance: Option<f64>,
        sampler: Option<String>,
        steps: Option<usize>,
        seed: u64,
        n: usize,
        batch: usize,
        height: Option<usize>,
        width: Option<usize>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<(Bound<'py, PyAny>, String)> {
        let defaults = SdRequest::for_pipeline(&self.sd, prompt);
        let request = SdRequest {
            negative_prompt,
            guidance: guidance.unwrap_or(defaults.guidance),
            sampler: sampler
                .map(|s| s.parse().context("sampler"))
                .transpose()
                .py()?,
            steps: steps.unwrap_or(defaults.steps),
            seed,
            n,
            batch,
            height,
            width,
            ..defaults
        };
        let raised = Raised::default();
        let sd = &self.sd;
        let (pixels, shape, name) = detached(py, progress, &raised, |w| {
            let out = sd::generate(sd, &request, w)?;
            let [n, _, h, wd] = out.images.dims();
            let rgb = sd::to_rgb8(&out.images)?;
            Ok((
                rgb.concat(),
                [n, h, wd, 3],
                out.sampler.as_str().to_string(),
            ))
        })?;
        let images = PyArray1::from_vec(py, pixels).reshape(shape)?;
        Ok((images.into_any(), name))
    }
}
