//! `diffuse demo NAME`: each seed's learning experiment with the seed's own model and
//! hyper-parameters, as the command lines a user could type, run one after the other. The tour
//! runs them too.

use std::fmt::Write as _;

use anyhow::{Result, bail};

use super::runner::{Experiment, run_all};
use crate::args::DemoArgs;

/// One seed's recipe.
pub(crate) struct Demo {
    /// The name `diffuse demo` takes.
    pub name: &'static str,
    /// What it reproduces.
    pub about: &'static str,
    /// Its steps; later steps refer to earlier ones' folders as {out}/NAME.
    pub steps: &'static [Experiment],
}

const LOSS: &[(&str, &str)] = &[("loss.png", "Training loss and its 100-step mean")];
const SCATTER: &[(&str, &str)] = &[("scatter.png", "Model samples against the data")];
const HIST_1D: &[(&str, &str)] = &[
    ("histogram.png", "Samples against the data"),
    ("paths.png", "Reverse paths"),
    ("guess.png", "The model's guess of the noise against x_t"),
];

pub(crate) const DEMOS: &[Demo] = &[
    Demo {
        name: "seed000",
        about: "Seed 000: a tiny network (two hidden layers of 15, ReLU) learns the noise of two points, \
                then follows the prompt 'left' or 'right'",
        steps: &[
            Experiment {
                name: "seed000-train",
                title: "Seed 000: learning the noise guess, with a prompt",
                caption: "Two hidden layers of 15 ReLU units, T = 200, linear 1e-4..0.02, Adam 1e-3; the class \
                          is seed 000's prompt (left: the point below zero, right: the one above), hidden 10% of \
                          the time so that the same model also samples unprompted.",
                args: "train --data delta:-0.5,0.5 --cond sign --timesteps 200 --hidden 15 --depth 2 --steps 20000 --batch 64",
                figures: LOSS,
            },
            Experiment {
                name: "seed000-unprompted",
                title: "Undiffusion with the learned guess (no prompt)",
                caption: "Guidance 0 is the unconditional model: both points come back.",
                args: "sample --model {out}/seed000-train --prompt left --guidance 0 --n 2000 --sampler ddpm --trajectories 10",
                figures: HIST_1D,
            },
            Experiment {
                name: "seed000-left",
                title: "Prompt: left",
                caption: "fraction_matching_prompt: the share of samples below zero.",
                args: "sample --model {out}/seed000-train --prompt left --n 2000 --sampler ddpm --trajectories 10",
                figures: HIST_1D,
            },
            Experiment {
                name: "seed000-right",
                title: "Prompt: right",
                caption: "fraction_matching_prompt: the share of samples above zero.",
                args: "sample --model {out}/seed000-train --prompt right --n 2000 --sampler ddpm --trajectories 10",
                figures: HIST_1D,
            },
        ],
    },
    Demo {
        name: "seed001",
        about: "Seed 001: the swiss roll with ConditionalLinear layers (a learned scale per step), \
                sigmoid schedule, T = 100",
        steps: &[
            Experiment {
                name: "seed001-train",
                title: "Seed 001: ConditionalLinear on the swiss roll",
                caption: "Three ConditionalLinear layers of 128 (softplus), T = 100, sigmoid betas 1e-5..1e-2, \
                          Adam 1e-3, batch 128, gradients clipped at norm 1, the data scaled by hand (/10) and \
                          not standardised, as in the seed.",
                args: "train --data swissroll --model conditional-mlp --hidden 128 --depth 3 --activation softplus \
                       --schedule sigmoid:1e-5:1e-2 --timesteps 100 --batch 128 --clip 1 --no-standardize --steps 20000",
                figures: LOSS,
            },
            Experiment {
                name: "seed001-sample",
                title: "Sampling the learned swiss roll",
                caption: "DDPM with beta as the step variance (seed 001). This schedule ends at alpha-bar = 0.6, not at \
                          noise, so even the exact denoiser (next) leaves the roll blurred: compare the two \
                          excess energy distances.",
                args: "sample --model {out}/seed001-train --n 2000 --sampler ddpm --variance beta",
                figures: SCATTER,
            },
            Experiment {
                name: "seed001-exact",
                title: "The same sampler with the exact denoiser",
                caption: "What the schedule itself allows: the ideal denoiser of 2,000 reference points \
                          (a perfect denoiser of a finite sample; its excess energy distance is the floor of \
                          this schedule and sampler).",
                args: "undiffuse --data swissroll --schedule sigmoid:1e-5:1e-2 --steps 100 --prior normal \
                       --sampler ddpm --variance beta --n 2000",
                figures: &[("scatter.png", "Exact-denoiser samples against the data")],
            },
        ],
    },
    Demo {
        name: "seed003",
        about: "Seed 003: Francois Fleuret's minidiffusion MLP (3 x 256, ReLU, T = 1000) on the spiral \
                and the disc grid",
        steps: &[
            Experiment {
                name: "seed003-spiral-train",
                title: "Seed 003: the spiral",
                caption: "Three hidden layers of 256, ReLU, T = 1000, linear 1e-4..0.02, Adam 1e-3, batch 25 \
                          (the seed's), data standardised; 40,000 steps = the seed's 40 epochs of 25,000 points.",
                args: "train --data spiral --steps 40000 --batch 25",
                figures: LOSS,
            },
            Experiment {
                name: "seed003-spiral",
                title: "Sampling the learned spiral",
                caption: "DDPM, 1000 steps, beta as the step variance (seed 003).",
                args: "sample --model {out}/seed003-spiral-train --n 2000 --sampler ddpm --variance beta",
                figures: SCATTER,
            },
            Experiment {
                name: "seed003-discgrid-train",
                title: "Seed 003: the disc grid",
                caption: "The same model and budget on sixteen small discs.",
                args: "train --data discgrid --steps 40000 --batch 25",
                figures: LOSS,
            },
            Experiment {
                name: "seed003-discgrid",
                title: "Sampling the learned disc grid",
                caption: "DDPM, 1000 steps.",
                args: "sample --model {out}/seed003-discgrid-train --n 2000 --sampler ddpm --variance beta",
                figures: SCATTER,
            },
        ],
    },
    Demo {
        name: "seed004",
        about: "Seed 004: an ELU network learns epsilon for the four points {-15, -5, 1, 15} \
                (constant beta = 0.04, T = 200)",
        steps: &[
            Experiment {
                name: "seed004-train",
                title: "Seed 004: learning epsilon for a 1-D mixture",
                caption: "Four hidden layers of 256, ELU, constant beta = 0.2^2 over T = 200, batch 100, the \
                          data as they are (not standardised), as in the seed. The seed loads a network trained \
                          elsewhere; its commented-out loop (Adam 1e-4, 5,000 iterations) leaves the samples \
                          spread over the whole range, so this recipe trains 20,000 steps at 1e-3.",
                args: "train --data mixture1d --depth 4 --hidden 256 --activation elu --schedule constant:0.04 \
                       --timesteps 200 --lr 1e-3 --batch 100 --steps 20000 --no-standardize",
                figures: LOSS,
            },
            Experiment {
                name: "seed004-sample",
                title: "Sampling the learned mixture",
                caption: "DDPM from N(0, 1): {fraction_within_atom_radius%} of the samples end within \
                          {atom_radius} of one of the four points (counts by point: {atom_counts_within_radius}, \
                          against equal weights: chi-square p {atom_weights_chi_square_p}); excess energy \
                          distance {excess_energy_distance}.",
                args: "sample --model {out}/seed004-train --n 2000 --sampler ddpm --trajectories 20",
                figures: HIST_1D,
            },
        ],
    },
];

/// `diffuse demo`.
pub fn run(a: &DemoArgs) -> Result<()> {
    let Some(name) = &a.name else {
        let mut s = String::from("demos (diffuse demo NAME):\n");
        for d in DEMOS {
            let _ = writeln!(s, "  {:<8} {}", d.name, d.about);
        }
        print!("{s}");
        return Ok(());
    };
    let Some(demo) = DEMOS.iter().find(|d| d.name == name) else {
        bail!(
            "no demo '{name}' (there are {})",
            DEMOS.iter().map(|d| d.name).collect::<Vec<_>>().join(", ")
        );
    };
    let out = a.out.clone().unwrap_or_else(|| demo.name.into());
    let steps: Vec<&Experiment> = demo.steps.iter().collect();
    let index = run_all(&out, demo.about, demo.name, &steps, a.quick)?;
    eprintln!("wrote {} (open it in a browser)", index.display());
    Ok(())
}
