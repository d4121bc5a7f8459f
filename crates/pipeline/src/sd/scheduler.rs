//! The scheduler of a diffusers folder: its training noise schedule and how it picks the
//! inference timesteps (spacing, offset, the last step's alpha-bar), so that every sampler of
//! the project runs on the steps diffusers' scheduler of the same name would take.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use diffuse_core::samplers::SamplerName;
use serde::Deserialize;
use serde_json::{Map, Value};

/// The scheduler's training-time noise schedule and the conventions of its timesteps, from
/// `scheduler/scheduler_config.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct SchedulerConfig {
    /// The class the folder names (`PNDMScheduler`, `DDIMScheduler`, ...).
    #[serde(rename = "_class_name", default)]
    pub class: String,
    #[serde(default = "thousand")]
    pub num_train_timesteps: usize,
    #[serde(default = "beta_start")]
    pub beta_start: f64,
    #[serde(default = "beta_end")]
    pub beta_end: f64,
    /// `linear` or `scaled_linear` (linear in sqrt(beta)).
    #[serde(default = "linear")]
    pub beta_schedule: String,
    /// `epsilon`, `v_prediction` or `sample`.
    #[serde(default = "epsilon")]
    pub prediction_type: String,
    /// `leading`, `trailing` or `linspace`.
    #[serde(default = "leading")]
    pub timestep_spacing: String,
    #[serde(default)]
    pub steps_offset: usize,
    #[serde(default = "yes")]
    pub set_alpha_to_one: bool,
    #[serde(default)]
    pub trained_betas: Option<Vec<f64>>,
}

fn thousand() -> usize {
    1000
}
fn beta_start() -> f64 {
    0.0001
}
fn beta_end() -> f64 {
    0.02
}
fn linear() -> String {
    "linear".into()
}
fn epsilon() -> String {
    "epsilon".into()
}
fn leading() -> String {
    "leading".into()
}
fn yes() -> bool {
    true
}

impl SchedulerConfig {
    /// Reads and checks `scheduler_config.json`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join("scheduler_config.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let raw: Map<String, Value> =
            serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
        for (key, ok) in [
            ("thresholding", Value::Bool(false)),
            ("rescale_betas_zero_snr", Value::Bool(false)),
        ] {
            if let Some(v) = raw.get(key)
                && v != &ok
                && !v.is_null()
            {
                bail!("{}: {key} = {v} is not supported", path.display());
            }
        }
        let c: Self = serde_json::from_value(Value::Object(raw))
            .with_context(|| format!("{}: a field has the wrong type", path.display()))?;
        let field = |name: &str, v: &str, allowed: &[&str]| -> Result<()> {
            if allowed.contains(&v) {
                Ok(())
            } else {
                Err(anyhow!(
                    "{}: {name} {v:?} is not supported ({})",
                    path.display(),
                    allowed.join(", ")
                ))
            }
        };
        field(
            "beta_schedule",
            &c.beta_schedule,
            &["linear", "scaled_linear"],
        )
        .or_else(|e| {
            if c.trained_betas.is_some() {
                Ok(())
            } else {
                Err(e)
            }
        })?;
        field(
            "prediction_type",
            &c.prediction_type,
            &["epsilon", "v_prediction", "sample"],
        )?;
        field(
            "timestep_spacing",
            &c.timestep_spacing,
            &["leading", "trailing", "linspace"],
        )?;
        if c.num_train_timesteps < 2 || c.num_train_timesteps > 100_000 {
            bail!(
                "{}: num_train_timesteps {} is out of range",
                path.display(),
                c.num_train_timesteps
            );
        }
        if !(0.0 < c.beta_start && c.beta_start <= c.beta_end && c.beta_end < 1.0) {
            bail!(
                "{}: beta_start {} and beta_end {} must satisfy 0 < start <= end < 1",
                path.display(),
                c.beta_start,
                c.beta_end
            );
        }
        Ok(c)
    }

    /// The training betas, as diffusers computes them (in f32 for `scaled_linear`'s square).
    pub fn betas(&self) -> Vec<f64> {
        if let Some(b) = &self.trained_betas {
            return b.clone();
        }
        let n = self.num_train_timesteps;
        let lin = |a: f64, b: f64| -> Vec<f64> {
            (0..n)
                .map(|i| a + (b - a) * i as f64 / (n - 1) as f64)
                .collect()
        };
        match self.beta_schedule.as_str() {
            "scaled_linear" => lin(self.beta_start.sqrt(), self.beta_end.sqrt())
                .into_iter()
                .map(|s| s * s)
                .collect(),
            _ => lin(self.beta_start, self.beta_end),
        }
    }
}

/// The sampler that stands for the folder's scheduler class when none is asked for. PNDM (the
/// class SD 1.x folders name) is not implemented: DPM-Solver++(2M) stands in for it, as for any
/// class not listed.
pub fn sampler_for_class(class: &str) -> SamplerName {
    match class {
        "DDIMScheduler" => SamplerName::Ddim,
        "EulerDiscreteScheduler" => SamplerName::Euler,
        "EulerAncestralDiscreteScheduler" => SamplerName::EulerAncestral,
        "HeunDiscreteScheduler" => SamplerName::Heun,
        "LMSDiscreteScheduler" => SamplerName::Lms,
        "UniPCMultistepScheduler" => SamplerName::Unipc,
        _ => SamplerName::DpmPP2M,
    }
}

impl SchedulerConfig {
    /// diffusers' inference timesteps (0-based training steps, decreasing) for `n` steps of the
    /// sampler `name`: the multistep solvers (DPM-Solver++, UniPC) space "leading" steps by
    /// T / (n + 1), the others by T / n; `steps_offset` shifts "leading" steps; Euler, Heun and
    /// LMS keep "linspace" steps fractional, as diffusers does.
    pub fn timesteps(&self, name: SamplerName, n: usize) -> Result<Vec<f64>> {
        let t = self.num_train_timesteps;
        if n == 0 || n > t {
            bail!("--nfe must be 1 to {t} steps for this scheduler (got {n})");
        }
        let multistep = matches!(
            name,
            SamplerName::DpmPP2M
                | SamplerName::DpmPP3M
                | SamplerName::DpmPP3MDiffusers
                | SamplerName::Unipc
        );
        let fractional = matches!(
            name,
            SamplerName::Euler | SamplerName::EulerAncestral | SamplerName::Heun | SamplerName::Lms
        );
        let steps: Vec<f64> = match self.timestep_spacing.as_str() {
            "linspace" if multistep => diffuse_core::schedule::linspace(0.0, t as f64 - 1.0, n + 1)
                .into_iter()
                .rev()
                .take(n)
                .map(f64::round)
                .collect(),
            "linspace" => diffuse_core::schedule::linspace(0.0, t as f64 - 1.0, n)
                .into_iter()
                .rev()
                .map(|v| if fractional { v } else { v.round() })
                .collect(),
            "leading" => {
                let ratio = if multistep { t / (n + 1) } else { t / n };
                let first = if multistep { 1 } else { 0 };
                (first..n + first)
                    .rev()
                    .map(|i| (i * ratio + self.steps_offset) as f64)
                    .collect()
            }
            _ => {
                // trailing: round(T - i T / n) - 1.
                let ratio = t as f64 / n as f64;
                (0..n)
                    .map(|i| ((t as f64 - i as f64 * ratio).round() - 1.0).max(0.0))
                    .collect()
            }
        };
        if steps.iter().any(|&s| s > (t - 1) as f64) || !steps.windows(2).all(|w| w[1] < w[0]) {
            bail!(
                "{n} steps with timestep_spacing {} and steps_offset {} leave the schedule's {t} steps",
                self.timestep_spacing,
                self.steps_offset
            );
        }
        Ok(steps)
    }
}
