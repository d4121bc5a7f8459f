//! The command line: every subcommand, its options and their defaults.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use diffuse_core::samplers::{GridKind, SamplerName, SamplerSpec, SigmaRange, Variance};

/// Diffusion models from the physics of Langevin dynamics up: exact denoisers, samplers, plots.
#[derive(Debug, Parser)]
#[command(name = "diffuse", version, about, propagate_version = true)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Overdamped Langevin dynamics x <- x - delta E'(x) + sqrt(2 delta) z on an energy (seed 000).
    Langevin(LangevinArgs),
    /// Metropolis chains with a Gaussian or a drift-then-diffuse proposal (seed 000).
    Metropolis(MetropolisArgs),
    /// Langevin chains against the Fokker-Planck equation of their density, solved on a grid,
    /// at several times (seed 000, approach 3).
    #[command(name = "fokker-planck")]
    FokkerPlanck(FokkerPlanckArgs),
    /// Diffuse data forward, step by step and in closed form (seeds 000, 004).
    Forward(ForwardArgs),
    /// Run the reverse process with the exact denoiser of the data (seeds 000, 004).
    Undiffuse(UndiffuseArgs),
    /// Train a denoiser (an MLP on [x_t, t/T], or with --model unet a UNet on images) on data with
    /// the DDPM loss; writes a model folder.
    Train(TrainArgs),
    /// Sample from a trained model folder or a shipped model (fashion-mnist, mnist) with any sampler, or
    /// draw from a prompt with a Stable Diffusion folder.
    Sample(Box<SampleArgs>),
    /// Time training steps and sampling of seed 003's MLP (for bench/run.sh's comparison with PyTorch).
    Bench(BenchArgs),
    /// Compare samples with a data distribution: KS, energy distance, sliced Wasserstein; for
    /// images, with --classifier, class accuracy and a Frechet distance on its features.
    Eval(EvalArgs),
    /// Train a small image classifier on real data (for judging generated images with eval).
    Classifier(ClassifierArgs),
    /// Error against evaluations for each sampler, on a distribution with an exact denoiser.
    Converge(ConvergeArgs),
    /// Exact log-likelihood of samples by the probability-flow ODE with the exact denoiser of --data.
    Nll(NllArgs),
    /// Run every experiment and write an HTML page of figures, numbers and commands.
    Tour(TourArgs),
    /// Reproduce one seed's learning experiment with its own settings (no NAME: list them).
    Demo(DemoArgs),
    /// A local web page: type a prompt and watch the picture form, and run the seeds'
    /// experiments with sliders (prints the address to open).
    Serve(ServeArgs),
}

/// `diffuse serve`.
#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Model folders to offer besides the shipped ones: folders written by `diffuse train`, or
    /// Stable Diffusion folders as diffusers saves them.
    pub models: Vec<PathBuf>,
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Address to listen on. The default is this machine only; another address lets other
    /// machines use the server (and its CPU).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// Most images one request may ask of an image model.
    #[arg(long, default_value_t = 64)]
    pub max_images: usize,
    /// Most denoiser evaluations (or Stable Diffusion steps) one request may ask for.
    #[arg(long, default_value_t = 1000)]
    pub max_steps: usize,
    /// Largest Stable Diffusion image side, in pixels.
    #[arg(long, default_value_t = 1024)]
    pub max_size: usize,
    /// Most requests waiting for one model; more are refused until one is done.
    #[arg(long, default_value_t = 16)]
    pub max_queue: usize,
    #[command(flatten)]
    pub compute: DeviceArgs,
}

/// Options every command has.
#[derive(Debug, Args, Clone)]
pub struct Common {
    /// Seed of all randomness: the same seed gives the same numbers.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder for samples.csv, summary.json and figures (default out/COMMAND). A folder
    /// holding an earlier run's results is refused unless --force is given.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace the results of an earlier run in --out (its images/, samples and summary go
    /// first when diffuse wrote them).
    #[arg(long)]
    pub force: bool,
}

/// Where a command computes.
#[derive(Debug, Args, Clone)]
pub struct DeviceArgs {
    /// Compute device: auto (the best this build has: a GPU when built with the wgpu or cuda
    /// feature), cpu, wgpu, wgpu:N (the N-th discrete GPU), cuda or cuda:N. Exact denoisers
    /// compute in f64 on the CPU and hand their results to the device.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

impl DeviceArgs {
    /// The device named, or a one-line error naming what this build can run on.
    pub fn device(&self) -> anyhow::Result<burn::tensor::Device> {
        Ok(diffuse_core::device::parse(&self.device)?)
    }

    /// The device's name for summary.json: what `auto` chose, or what was asked for.
    pub fn name(&self) -> &str {
        match self.device.as_str() {
            "auto" => diffuse_core::device::default_name(),
            other => other,
        }
    }
}

/// Data-parallel training: who shares every batch.
#[derive(Debug, Args, Clone)]
pub struct ParallelArgs {
    /// Devices that share every batch, one replica of the model each, their gradients summed
    /// before every step (the same model as one device, up to float32 summation order): with
    /// --device cuda, cuda:0 to cuda:N-1 (cuda:K counts from K); on the CPU, N shares computed
    /// side by side (a check of the arithmetic, no faster).
    #[arg(long, default_value_t = 1)]
    pub devices: usize,
    /// Processes (one per machine) that share every batch: start each with the same flags and
    /// its own --rank; rank 0 writes the same model as the others.
    #[arg(long, default_value_t = 1)]
    pub nodes: usize,
    /// This process's rank, 0 to --nodes - 1; rank 0 coordinates.
    #[arg(long, default_value_t = 0)]
    pub rank: usize,
    /// host:port where rank 0 listens and the other ranks connect (plain TCP: a trusted
    /// network only).
    #[arg(long, default_value = "127.0.0.1:29500")]
    pub coordinator: String,
    /// Seconds to wait for every rank to join.
    #[arg(long, default_value_t = 120)]
    pub join_timeout: u64,
}

impl ParallelArgs {
    /// The devices beyond the first and the process group, for a run on `device_spec`.
    pub fn parallel(&self, device_spec: &str) -> anyhow::Result<diffuse_nn::Parallel> {
        let devices = diffuse_core::device::several(device_spec, self.devices)?;
        if self.nodes == 0 || self.rank >= self.nodes {
            anyhow::bail!(
                "--rank {} of --nodes {}: the rank must be 0 to {}",
                self.rank,
                self.nodes,
                self.nodes.saturating_sub(1)
            );
        }
        Ok(diffuse_nn::Parallel {
            extra_devices: devices[1..].to_vec(),
            peers: (self.nodes > 1).then(|| diffuse_nn::Peers {
                rank: self.rank,
                nodes: self.nodes,
                coordinator: self.coordinator.clone(),
                wait: std::time::Duration::from_secs(self.join_timeout),
            }),
        })
    }
}

/// Options of chains.
#[derive(Debug, Args, Clone)]
pub struct ChainArgs {
    /// Energy E(x): quadratic[:K] is K x^2 / 2, whose law exp(-E) is N(0, 1/K); double-well[:A]
    /// is A (x^2 - 1)^2.
    #[arg(long, default_value = "quadratic")]
    pub energy: String,
    /// Steps per chain.
    #[arg(long, default_value_t = 2000)]
    pub steps: usize,
    /// Number of independent chains.
    #[arg(long, default_value_t = 10_000)]
    pub chains: usize,
    /// Where every chain starts.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub start: f64,
    /// Chains whose whole path is plotted.
    #[arg(long, default_value_t = 5)]
    pub trajectories: usize,
}

/// `diffuse langevin`.
#[derive(Debug, Args, Clone)]
pub struct LangevinArgs {
    #[command(flatten)]
    pub chain: ChainArgs,
    /// The step size delta.
    #[arg(long, default_value_t = 0.01, allow_negative_numbers = true)]
    pub delta: f64,
    #[command(flatten)]
    pub common: Common,
}

/// `diffuse fokker-planck`.
#[derive(Debug, Args, Clone)]
pub struct FokkerPlanckArgs {
    /// Energy E(x): quadratic[:K] is K x^2 / 2; double-well[:A] is A (x^2 - 1)^2.
    #[arg(long, default_value = "quadratic")]
    pub energy: String,
    /// Where every chain starts, and the equation's point mass.
    #[arg(long, default_value_t = 3.0, allow_negative_numbers = true)]
    pub start: f64,
    /// Number of independent chains.
    #[arg(long, default_value_t = 10_000)]
    pub chains: usize,
    /// The Langevin step delta (time = steps x delta).
    #[arg(long, default_value_t = 0.01, allow_negative_numbers = true)]
    pub delta: f64,
    /// Times at which to compare the histograms with the equation (comma-separated).
    #[arg(
        long,
        default_value = "0.1,0.3,0.7,1.5,4",
        value_delimiter = ',',
        allow_hyphen_values = true
    )]
    pub times: Vec<f64>,
    /// Grid cells of the equation.
    #[arg(long, default_value_t = 1000)]
    pub cells: usize,
    #[command(flatten)]
    pub common: Common,
}

/// `diffuse metropolis`.
#[derive(Debug, Args, Clone)]
pub struct MetropolisArgs {
    #[command(flatten)]
    pub chain: ChainArgs,
    /// Proposal: gaussian:WIDTH, or langevin:DELTA (drift then diffuse).
    #[arg(long, default_value = "gaussian:1.0")]
    pub proposal: String,
    #[command(flatten)]
    pub common: Common,
}

/// T of `forward` and `undiffuse` when `--steps` is not given (seed 000's chains).
pub const DEFAULT_STEPS: usize = 200;

/// Options that pick data and a schedule.
#[derive(Debug, Args, Clone)]
pub struct DiffusionArgs {
    /// Data: delta:V[,V...], gmm:FILE.json, csv:PATH, swissroll, spiral, discgrid, mixture1d,
    /// 8gaussians, moons, checkerboard.
    #[arg(long)]
    pub data: String,
    /// Noise schedule: linear[:START:END], scaled-linear[:START:END], sigmoid[:START:END],
    /// cosine, constant:BETA.
    #[arg(long, default_value = "linear:1e-4:0.02")]
    pub schedule: String,
    /// T, the number of steps of the schedule (default 200; 1000 for undiffuse --prior normal,
    /// so that x_T is close to N(0, I)).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Number of samples.
    #[arg(long, default_value_t = 10_000)]
    pub n: usize,
    /// Samples per batch; the samples do not depend on it.
    #[arg(long, default_value_t = 10_000)]
    pub batch: usize,
    /// Samples whose whole path is plotted.
    #[arg(long, default_value_t = 5)]
    pub trajectories: usize,
}

/// `diffuse forward`.
#[derive(Debug, Args, Clone)]
pub struct ForwardArgs {
    #[command(flatten)]
    pub diffusion: DiffusionArgs,
    /// Stop after step B (default T).
    #[arg(long)]
    pub to: Option<usize>,
    /// Write the closed-form jump to step B to samples.csv instead of the step-by-step chain.
    #[arg(long)]
    pub closed_form: bool,
    #[command(flatten)]
    pub common: Common,
}

/// Parses a sampler name into the core's [`SamplerName`], listing every name in `--help`.
fn sampler_name() -> impl clap::builder::TypedValueParser<Value = SamplerName> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new(
        SamplerName::ALL.map(|n| PossibleValue::new(n.as_str()).help(n.about())),
    )
    .try_map(|s| s.parse::<SamplerName>())
}

/// Where the reverse process starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PriorName {
    /// Data diffused to step A in closed form (seed 000): the exact q_A.
    Diffused,
    /// N(0, I): the generative setting.
    Normal,
}

/// Variance of DDPM's reverse steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VarianceName {
    /// The posterior variance beta-tilde.
    Posterior,
    /// beta, as seeds 001 and 003.
    Beta,
}

/// Which reverse sampler, and its settings.
#[derive(Debug, Args, Clone)]
pub struct SamplerArgs {
    /// The reverse sampler (default ddpm; dpmpp-2m with 20 evaluations for `sample` of an image
    /// model; for a Stable Diffusion folder, the one that stands for its scheduler: PNDM's
    /// folders get dpmpp-2m).
    #[arg(long, value_parser = sampler_name())]
    pub sampler: Option<SamplerName>,
    /// DDPM's step variance.
    #[arg(long, value_enum, default_value_t = VarianceName::Posterior)]
    pub variance: VarianceName,
    /// Denoiser evaluations for the fixed-step samplers (default 50; ddpm always uses every step).
    #[arg(long)]
    pub nfe: Option<usize>,
    /// Grid: karras[:RHO], exponential, logsnr, uniform (in t), the model's own steps spaced
    /// leading, trailing or linspace (default: karras; trailing for ddim); fitted (levels fitted
    /// to the denoiser on the first 256 samples before sampling, written to summary.json as
    /// grid_sigmas); or sigmas:S1,S2,... (given levels, one per step, e.g. a fitted grid reused).
    #[arg(long)]
    pub grid: Option<String>,
    /// Noise of ddim and euler-ancestral (ddim default 0, euler-ancestral default 1).
    #[arg(long, allow_negative_numbers = true)]
    pub eta: Option<f64>,
    /// EDM's S_churn for heun (0: deterministic).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub churn: f64,
    /// Steps of the SDE (default: 4 per schedule step).
    #[arg(long)]
    pub grid_steps: Option<usize>,
    /// Tolerance (relative and absolute) of the adaptive ODE solver.
    #[arg(long, default_value_t = 1e-5)]
    pub tol: f64,
    /// Start a karras, exponential or uniform grid at this sigma instead of sigma(A): the prior
    /// sample is taken as one at sigma_max (EDM; keep it well above the data's spread).
    #[arg(long)]
    pub sigma_max: Option<f64>,
    /// On a run to step 0, the last sigma before 0 (default sigma(1)).
    #[arg(long)]
    pub sigma_min: Option<f64>,
    /// How a sigma-grid sampler takes its first and last steps: plain (as k-diffusion and
    /// diffusers), or few-step (exact mixtures only: the first step is the data Gaussian's
    /// closed-form flow, without an evaluation, so the grid has one level more than --nfe; and
    /// dpmpp-2m's last step is second order in sigma). Default: few-step for `undiffuse` with
    /// dpmpp-2m on a fitted default grid (20 evaluations or fewer), plain otherwise.
    #[arg(long, value_parser = ["plain", "few-step"])]
    pub ends: Option<String>,
}

impl SamplerArgs {
    /// The sampler's name (ddpm unless given).
    pub fn name(&self) -> SamplerName {
        self.sampler.unwrap_or(SamplerName::Ddpm)
    }

    /// The sampler these options name.
    pub fn spec(&self) -> anyhow::Result<SamplerSpec> {
        self.spec_or(SamplerName::Ddpm, None)
    }

    /// The sampler these options name, with `sampler` and `nfe` where they name none.
    pub fn spec_or(&self, sampler: SamplerName, nfe: Option<usize>) -> anyhow::Result<SamplerSpec> {
        let grid = self
            .grid
            .as_deref()
            .map(GridKind::parse)
            .transpose()
            .context("--grid")?;
        Ok(SamplerSpec {
            variance: match self.variance {
                VarianceName::Posterior => Variance::Posterior,
                VarianceName::Beta => Variance::Beta,
            },
            grid,
            eta: self.eta,
            churn: self.churn,
            grid_steps: self.grid_steps,
            tol: self.tol,
            range: SigmaRange {
                max: self.sigma_max,
                min: self.sigma_min,
            },
            ends: self
                .ends
                .as_deref()
                .map(str::parse)
                .transpose()
                .context("--ends")?,
            ..SamplerSpec::chosen(self.sampler, self.nfe, sampler, nfe)
        })
    }
}

/// `diffuse undiffuse`.
#[derive(Debug, Args, Clone)]
pub struct UndiffuseArgs {
    #[command(flatten)]
    pub diffusion: DiffusionArgs,
    /// Start at step A (default T).
    #[arg(long)]
    pub from: Option<usize>,
    /// Stop at step B.
    #[arg(long, default_value_t = 0)]
    pub to: usize,
    /// What x_A is.
    #[arg(long, value_enum, default_value_t = PriorName::Diffused)]
    pub prior: PriorName,
    /// Start every sample at this point instead (comma-separated coordinates).
    #[arg(long, allow_hyphen_values = true)]
    pub start: Option<String>,
    #[command(flatten)]
    pub sampling: SamplerArgs,
    /// Size of the sample whose empirical distribution stands in for a toy data set.
    #[arg(long, default_value_t = 2000)]
    pub reference: usize,
    #[command(flatten)]
    pub compute: DeviceArgs,
    #[command(flatten)]
    pub common: Common,
}

/// `diffuse eval`.
#[derive(Debug, Args, Clone)]
pub struct EvalArgs {
    /// A CSV of samples (as written by the other commands), or a `diffuse sample` folder.
    #[arg(long, required_unless_present_any = ["model", "vae"])]
    pub samples: Option<PathBuf>,
    /// Instead of --samples: a VAE's reconstructions and PSNR on --data (default
    /// colour-fashion-test): a folder of `train --model vae`, a text-to-image folder (its
    /// vae/), or colour-fashion.
    #[arg(long, conflicts_with_all = ["samples", "model"])]
    pub vae: Option<PathBuf>,
    /// Instead of --samples: draw and judge a text-to-image model trained on colour-fashion
    /// (`colour-fashion`, or a folder of `train --model latent`), --n pictures of each of
    /// --prompts, with --classifier (default fashion-mnist-classifier) and the colour measure.
    #[arg(long, conflicts_with = "samples")]
    pub model: Option<PathBuf>,
    /// With --model: all (the 70 pairs), trained, held-out, or pairs such as
    /// "red sandal,blue bag=a cobalt handbag" (a pair's own words after =).
    #[arg(long, default_value = "all", requires = "model")]
    pub prompts: String,
    /// With --model: pictures per prompt.
    #[arg(long, default_value_t = 100, requires = "model")]
    pub n: usize,
    /// With --model: the guidance scale (default the model's: 3); several separated by commas
    /// sweep them (guidance.png).
    #[arg(long, requires = "model", value_delimiter = ',')]
    pub guidance: Vec<f64>,
    /// With --model: denoising steps (default the model's: 20).
    #[arg(long, requires = "model")]
    pub nfe: Option<usize>,
    /// The distribution they should follow (with --classifier: the real images to compare
    /// with; default its test set).
    #[arg(long, required_unless_present_any = ["classifier", "model", "vae"])]
    pub data: Option<String>,
    /// Judge images with a classifier folder written by `diffuse classifier`.
    #[arg(long)]
    pub classifier: Option<PathBuf>,
    /// The class every sample was asked for (default: the sample folder's labels.csv); for a
    /// folder of colour pictures, a colour and a class ("red sandal").
    #[arg(long, requires = "classifier")]
    pub class: Option<String>,
    /// Random projections for sliced Wasserstein and the projected KS tests (2-D and up).
    #[arg(long, default_value_t = 64)]
    pub projections: usize,
    /// Largest sample used for the O(n^2) energy distance.
    #[arg(long, default_value_t = 4000)]
    pub max_energy_n: usize,
    /// With --model or --vae, where the pictures are drawn and the VAE runs (the judges and a
    /// samples file's checks run on the CPU).
    #[command(flatten)]
    pub compute: DeviceArgs,
    #[command(flatten)]
    pub common: Common,
}

/// `diffuse classifier`.
#[derive(Debug, Args, Clone)]
pub struct ClassifierArgs {
    /// Labelled images to learn (fashion-mnist, mnist:DIR, digits, images:DIR).
    #[arg(long, default_value = "fashion-mnist")]
    pub data: String,
    /// Labelled images to score it on (default: the test split of --data).
    #[arg(long)]
    pub test_data: Option<String>,
    /// Optimiser steps.
    #[arg(long, default_value_t = 3000)]
    pub steps: usize,
    /// Images per step.
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3, allow_negative_numbers = true)]
    pub lr: f64,
    /// Channels of the first convolution.
    #[arg(long, default_value_t = 16)]
    pub channels: usize,
    #[command(flatten)]
    pub compute: DeviceArgs,
    #[command(flatten)]
    pub common: Common,
}

/// `diffuse nll`.
#[derive(Debug, Args, Clone)]
pub struct NllArgs {
    /// A CSV of points whose log-likelihood is wanted.
    #[arg(long)]
    pub samples: PathBuf,
    /// The distribution whose exact denoiser defines the model.
    #[arg(long, required_unless_present = "model", conflicts_with = "model")]
    pub data: Option<String>,
    /// A trained model (a `diffuse train` directory): its learned denoiser, schedule and
    /// standardisation define the density (unconditional).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Noise schedule with --data (its last step must reach N(0, I): the prior).
    #[arg(long, default_value = "linear:1e-4:0.02")]
    pub schedule: String,
    /// T, the number of steps of the schedule, with --data.
    #[arg(long, default_value_t = 1000)]
    pub steps: usize,
    /// Hutchinson probes for the divergence (0: exact, by every coordinate).
    #[arg(long, default_value_t = 0)]
    pub probes: usize,
    /// RK4 steps of the ODE in ln sigma.
    #[arg(long, default_value_t = 200)]
    pub ode_steps: usize,
    /// Samples per batch; the answers do not depend on it.
    #[arg(long, default_value_t = 2000)]
    pub batch: usize,
    /// Size of the sample whose empirical distribution stands in for a toy data set.
    #[arg(long, default_value_t = 2000)]
    pub reference: usize,
    #[command(flatten)]
    pub common: Common,
}

/// `diffuse converge`.
#[derive(Debug, Args, Clone)]
pub struct ConvergeArgs {
    /// The distribution (its exact denoiser drives every sampler).
    #[arg(long, default_value = "8gaussians")]
    pub data: String,
    /// Noise schedule.
    #[arg(long, default_value = "linear:1e-4:0.02")]
    pub schedule: String,
    /// T, the number of steps of the schedule.
    #[arg(long, default_value_t = 1000)]
    pub steps: usize,
    /// Samplers to compare (comma-separated names as for undiffuse --sampler).
    #[arg(
        long,
        value_parser = sampler_name(),
        default_value = "euler,heun,ddim,lms,dpmpp-2m,dpmpp-3m,unipc",
        value_delimiter = ','
    )]
    pub samplers: Vec<SamplerName>,
    /// Evaluation budgets (comma-separated).
    #[arg(long, default_value = "5,10,20,40,80", value_delimiter = ',')]
    pub nfe: Vec<usize>,
    /// Sigma grid of the sigma samplers (ddim uses trailing timesteps).
    #[arg(long, default_value = "exponential")]
    pub grid: String,
    /// Samples per run.
    #[arg(long, default_value_t = 2000)]
    pub n: usize,
    /// Size of the sample whose empirical distribution stands in for a toy data set.
    #[arg(long, default_value_t = 2000)]
    pub reference: usize,
    #[command(flatten)]
    pub common: Common,
}

/// `diffuse train`.
#[derive(Debug, Args, Clone)]
pub struct TrainArgs {
    /// Data to learn (the --data grammar).
    #[arg(long)]
    pub data: String,
    /// Architecture: mlp (t/T appended to the input: seeds 000, 003, 004), conditional-mlp
    /// (seed 001's ConditionalLinear: a learned scale per step and unit), sinusoidal-mlp (sin/cos
    /// features of t appended), unet (images: residual blocks, attention, skips), vae (latent
    /// diffusion's KL autoencoder, as a diffusers vae/ folder) or latent (a text-to-image
    /// UNet on the latents of --vae, attending to MiniLM's token states: a diffusers pipeline
    /// folder).
    #[arg(long, default_value = "mlp")]
    pub model: String,
    /// Number of sin/cos time features of sinusoidal-mlp.
    #[arg(long, default_value_t = 32)]
    pub time_features: usize,
    /// Channels of the UNet's first level (images; the levels have x1, x2, x2).
    #[arg(long, default_value_t = 32)]
    pub channels: usize,
    /// Width of the hidden layers.
    #[arg(long, default_value_t = 256)]
    pub hidden: usize,
    /// Number of hidden layers.
    #[arg(long, default_value_t = 3)]
    pub depth: usize,
    /// relu, elu, silu or softplus.
    #[arg(long, default_value = "relu")]
    pub activation: String,
    /// Noise schedule.
    #[arg(long, default_value = "linear:1e-4:0.02")]
    pub schedule: String,
    /// T, the steps of the diffusion.
    #[arg(long, default_value_t = 1000)]
    pub timesteps: usize,
    /// Optimiser steps.
    #[arg(long, default_value_t = 5000)]
    pub steps: usize,
    /// Samples per step.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Adam's learning rate (eps = 1e-8, as PyTorch).
    #[arg(long, default_value_t = 1e-3, allow_negative_numbers = true)]
    pub lr: f64,
    /// Train with AdamW and this decoupled weight decay (PyTorch's AdamW default is 0.01).
    #[arg(long, allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,
    /// Train on the data as they are, not standardised to mean 0 and std 1 per coordinate
    /// (seed 001 scales its swiss roll by hand).
    #[arg(long)]
    pub no_standardize: bool,
    /// Clip the gradient norm to this.
    #[arg(long, allow_negative_numbers = true)]
    pub clip: Option<f64>,
    /// Write a checkpoint every this many steps (and at the end).
    #[arg(long, default_value_t = 1000)]
    pub save_every: usize,
    /// Continue the model in --out instead of starting a new one.
    #[arg(long)]
    pub resume: bool,
    /// Condition on a class: sign (seed 000's left/right prompt, by the sign of the first
    /// coordinate), label (the CSV's label column or the images' classes), or prompt (images:
    /// sentences describing each class, read by the text encoder all-MiniLM-L6-v2).
    #[arg(long, default_value = "none")]
    pub cond: String,
    /// What the model predicts: eps (DDPM), x0, or v.
    #[arg(long, default_value = "eps")]
    pub target: String,
    /// Keep an exponential moving average of the weights with this decay (e.g. 0.999) and sample
    /// with it.
    #[arg(long)]
    pub ema: Option<f64>,
    /// Probability of hiding the class (or prompt) in training, so that guidance works when
    /// sampling.
    #[arg(long, default_value_t = 0.1)]
    pub label_dropout: f64,
    /// --cond prompt: put Gaussian noise (a standard deviation per coordinate drawn in [0, this])
    /// on each caption's embedding, back to unit length, so that prompts near the captions, not
    /// only the captions, land on their class. 0: none.
    #[arg(long, default_value_t = 0.0)]
    pub prompt_noise: f64,
    /// --model vae: the weight of the KL term against the summed squared error per image
    /// (latent diffusion's KL autoencoders: 1e-6).
    #[arg(long, default_value_t = diffuse_pipeline::KL_WEIGHT)]
    pub kl_weight: f64,
    /// --model latent: the VAE folder (from `diffuse train --model vae`) whose latents the
    /// text-to-image UNet learns.
    #[arg(long)]
    pub vae: Option<String>,
    #[command(flatten)]
    pub compute: DeviceArgs,
    #[command(flatten)]
    pub parallel: ParallelArgs,
    #[command(flatten)]
    pub common: Common,
}

/// `diffuse sample`.
#[derive(Debug, Args, Clone)]
pub struct SampleArgs {
    /// A model folder written by `diffuse train`, a shipped model's name (fashion-mnist, mnist), or a Stable Diffusion
    /// folder as diffusers saves it (with model_index.json).
    #[arg(long)]
    pub model: PathBuf,
    /// Number of samples (default 10,000 for the toy models; 20 for image models, 10 of each
    /// class with --label all; 1 for Stable Diffusion).
    #[arg(long)]
    pub n: Option<usize>,
    /// Samples per batch; the samples do not depend on it (default 10,000; 1 for a downloaded
    /// Stable Diffusion; 100 for colour-fashion and other latent models trained here).
    #[arg(long)]
    pub batch: Option<usize>,
    /// The class to sample (a label of the training data).
    #[arg(long)]
    pub label: Option<String>,
    /// What to draw, in words, for a model trained with --cond prompt ("a shoe for running");
    /// for seed 000's --cond sign models: left or right.
    #[arg(long)]
    pub prompt: Option<String>,
    /// A model trained on captions reads a prompt as the caption of its own that the text
    /// encoder puts nearest (by a vote over each class's captions; printed, and in
    /// summary.json); this gives it the prompt's embedding as it is instead.
    #[arg(long)]
    pub prompt_as_is: bool,
    /// Classifier-free guidance weight: 0 unconditional, 1 conditional, > 1 guided (default 1;
    /// 3 for image models asked for a label or prompt and for latent models trained here such
    /// as colour-fashion; 7.5 for a downloaded Stable Diffusion, as diffusers).
    #[arg(long)]
    pub guidance: Option<f64>,
    /// Images: also write animation.gif, the reverse process of the first 16 images (with
    /// --label all, of the first images of each class) from noise to picture; for Stable
    /// Diffusion, the VAE's picture of the predicted clean latents after every step.
    #[arg(long)]
    pub animate: bool,
    /// Images: do not clip the predicted clean image to the pixel range [-1, 1] (clipping, as
    /// DDPM and diffusers do by default, keeps guided samples from saturating).
    #[arg(long)]
    pub no_clip: bool,
    /// Samples whose whole path is plotted (1-D models).
    #[arg(long, default_value_t = 5)]
    pub trajectories: usize,
    #[command(flatten)]
    pub sampling: SamplerArgs,
    #[command(flatten)]
    pub sd: SdArgs,
    #[command(flatten)]
    pub compute: DeviceArgs,
    #[command(flatten)]
    pub common: Common,
}

impl SdArgs {
    /// The Stable Diffusion options given (for refusing them on other models).
    pub fn given(&self) -> Vec<&'static str> {
        let mut v = vec![];
        let flags = [
            (self.negative_prompt.is_some(), "--negative-prompt"),
            (self.height.is_some(), "--height"),
            (self.width.is_some(), "--width"),
            (self.init_latents.is_some(), "--init-latents"),
            (self.init_image.is_some(), "--init-image"),
            (self.loss.is_some(), "--loss"),
            (self.prompt_to.is_some(), "--prompt-to"),
            (self.swap_from.is_some(), "--swap-from"),
            (self.truncate, "--truncate"),
        ];
        for (given, flag) in flags {
            if given {
                v.push(flag);
            }
        }
        v
    }
}

/// Options of `diffuse sample` for Stable Diffusion folders.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Stable Diffusion")]
pub struct SdArgs {
    /// What guidance pushes away from (default "", as diffusers).
    #[arg(long)]
    pub negative_prompt: Option<String>,
    /// Image height in pixels (default: the UNet's sample_size times the VAE's factor, or the
    /// init image's).
    #[arg(long)]
    pub height: Option<usize>,
    /// Image width in pixels.
    #[arg(long)]
    pub width: Option<usize>,
    /// Start from these latents (a safetensors file with a tensor `latents` [n, 4, h, w]) in
    /// place of the seeded noise, scaled as diffusers scales latents it is given.
    #[arg(long)]
    pub init_latents: Option<PathBuf>,
    /// img2img: start from this picture (PNG or JPEG), noised to --strength of the way up.
    #[arg(long)]
    pub init_image: Option<PathBuf>,
    /// img2img: how much of the schedule runs, in (0, 1].
    #[arg(long, default_value_t = 0.8)]
    pub strength: f64,
    /// Seed 002's loss-guided sampling: blue (the seed's blue_loss, towards blue 0.9) or blue:T
    /// (towards T; blue:0 drains blue).
    #[arg(long)]
    pub loss: Option<String>,
    /// The loss's scale k (the seed's 75).
    #[arg(long, default_value_t = 75.0)]
    pub loss_scale: f64,
    /// Guide every P steps (the seed's periodicity, 5).
    #[arg(long, default_value_t = 5)]
    pub loss_every: usize,
    /// Walk from --prompt's embedding to this prompt's in --frames pictures from the same
    /// starting latents (strip.png and interpolation.gif).
    #[arg(long)]
    pub prompt_to: Option<String>,
    /// Pictures of the walk, both ends included.
    #[arg(long, default_value_t = 8)]
    pub frames: usize,
    /// Seed 002's token swap: the prompt to take --swap-token's states from.
    #[arg(long, requires = "swap_token")]
    pub swap_from: Option<String>,
    /// The word whose token states are taken from --swap-from (at the same positions).
    #[arg(long, requires = "swap_from")]
    pub swap_token: Option<String>,
    /// Cut prompts longer than the text encoder reads (77 tokens), keeping EOS, as diffusers
    /// does, instead of refusing them; the cut is said on stderr and in summary.json.
    #[arg(long)]
    pub truncate: bool,
}

/// `diffuse bench`.
#[derive(Debug, Args, Clone)]
pub struct BenchArgs {
    /// Training steps timed at each batch size.
    #[arg(long, default_value_t = 300)]
    pub train_steps: usize,
    /// Batch sizes to time.
    #[arg(long, default_value = "25,256", value_delimiter = ',')]
    pub batches: Vec<usize>,
    /// Points sampled with 1000 DDPM steps.
    #[arg(long, default_value_t = 10_000)]
    pub sample_n: usize,
    /// Repetitions; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Training steps of the image UNet timed (0: skip the UNet).
    #[arg(long, default_value_t = 20)]
    pub unet_steps: usize,
    /// Channels of the timed UNet (the shipped Fashion-MNIST model has 16).
    #[arg(long, default_value_t = 16)]
    pub unet_channels: usize,
    /// Time a Stable Diffusion folder instead (bench/sd.sh): one guided UNet step and one VAE
    /// decode at --sd-latent latents, each the median of --repeats.
    #[arg(long)]
    pub sd: Option<PathBuf>,
    /// Latent side for --sd (default the UNet's sample_size: 64 for SD 1.x, 8 for
    /// colour-fashion).
    #[arg(long)]
    pub sd_latent: Option<usize>,
    /// With --sd, also time the generation of this many images at the pipeline's default size,
    /// guidance and steps (default 100 for a model trained here, such as colour-fashion; 0 for
    /// a downloaded Stable Diffusion).
    #[arg(long)]
    pub sd_images: Option<usize>,
    #[command(flatten)]
    pub compute: DeviceArgs,
    #[command(flatten)]
    pub common: Common,
}

/// `diffuse tour`.
#[derive(Debug, Args, Clone)]
pub struct TourArgs {
    /// Output folder; index.html is written there.
    #[arg(long, default_value = "tour")]
    pub out: PathBuf,
    /// Smaller samples (2,000 instead of 10,000) and a tenth of the training: a faster, rougher tour.
    #[arg(long)]
    pub quick: bool,
}

/// `diffuse demo`.
#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// seed000, seed001, seed003 or seed004 (none: list them).
    pub name: Option<String>,
    /// Output folder (default: the demo's name); index.html is written there.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A tenth of the training and smaller samples: a fast, rough run.
    #[arg(long)]
    pub quick: bool,
}
