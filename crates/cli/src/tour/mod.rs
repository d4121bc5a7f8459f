//! `diffuse tour`: every experiment of the seeds with their own settings, and one HTML page with
//! each figure, its caption, the numbers behind it and the command that re-makes it.

pub mod demo;
mod glossary;
mod runner;

use anyhow::Result;

use crate::args::TourArgs;
use runner::{Experiment, run_all};

const CHAIN_FIGS: &[(&str, &str)] = &[
    ("histogram.png", "Final states against exp(-E)/Z"),
    ("paths.png", "A few chains over time"),
];
const FOKKER_PLANCK_FIGS: &[(&str, &str)] = &[
    (
        "densities.png",
        "Histograms of the chains at several times (bars) on the equation's density (lines), and exp(-E)/Z (dashed)",
    ),
    (
        "distance.png",
        "KS distances over time: chains against the equation stay at the sampling noise while both approach exp(-E)/Z",
    ),
];
const FORWARD_FIGS: &[(&str, &str)] = &[
    ("paths.png", "Forward paths x_t against t"),
    (
        "histogram.png",
        "The distribution at the last step, with the closed-form theory curve",
    ),
    ("compare.png", "Step by step against the closed-form jump"),
    (
        "heatmap.png",
        "The marginal density q_t(x) over (t, x), paths on top",
    ),
    ("scatter.png", "Diffused samples against the data"),
];
const REVERSE_FIGS: &[(&str, &str)] = &[
    ("paths.png", "Reverse paths x_t against t"),
    (
        "histogram.png",
        "Where the samples end, with the true distribution",
    ),
    (
        "compare.png",
        "Undiffused to B against diffused from 0 to B",
    ),
    (
        "guess.png",
        "The exact denoiser's best guess of the noise z against x_t",
    ),
    (
        "heatmap.png",
        "Reverse paths over the marginal density q_t(x)",
    ),
    ("scatter.png", "Samples against the data"),
];

const EXPERIMENTS: &[Experiment] = &[
    Experiment {
        name: "langevin",
        title: "Langevin dynamics reach exp(-E)",
        caption: "Seed 000, approach 1: chains x <- x - delta E'(x) + sqrt(2 delta) z on E = x^2/2, started at x = 2, \
                  end distributed as exp(-E)/Z = N(0, 1). The KS p-value tests it.",
        args: "langevin --energy quadratic --delta 0.01 --steps 2000 --chains 10000 --start 2",
        figures: CHAIN_FIGS,
    },
    Experiment {
        name: "metropolis-gaussian",
        title: "Metropolis with a Gaussian proposal",
        caption: "Seed 000, approach 2: a Markov chain built to have exp(-E) as its stationary law.",
        args: "metropolis --energy quadratic --proposal gaussian:1.0 --steps 500 --chains 10000 --start 2",
        figures: CHAIN_FIGS,
    },
    Experiment {
        name: "metropolis-langevin",
        title: "Metropolis with the drift-then-diffuse proposal accepts almost everything",
        caption: "Seed 000: proposing x' = x - delta E'(x) + sqrt(2 delta) z, the Metropolis acceptance ratio tends \
                  to 1 as delta shrinks, so Langevin dynamics is already (almost) an exact sampler. See 'acceptance'.",
        args: "metropolis --energy quadratic --proposal langevin:0.01 --steps 2000 --chains 10000 --start 2",
        figures: CHAIN_FIGS,
    },
    Experiment {
        name: "fokker-planck",
        title: "Langevin dynamics follow the Fokker-Planck equation",
        caption: "Seed 000, approach 3: the density of the chains obeys d rho/dt = d/dx (E' rho + d rho/dx), solved \
                  here on a grid (finite volumes, Scharfetter-Gummel fluxes, backward Euler) from the same point mass \
                  at x = 3. At every time the chains' histogram is the equation's density (KS p-values in 'times'), \
                  and both converge to exp(-E)/Z. For E = x^2/2 the equation's solution is also known in closed form \
                  (an Ornstein-Uhlenbeck law), which the tests check.",
        args: "fokker-planck --energy quadratic --start 3 --delta 0.01 --times 0.1,0.3,0.7,1.5,4 --chains 10000",
        figures: FOKKER_PLANCK_FIGS,
    },
    Experiment {
        name: "fokker-planck-double-well",
        title: "The same in a double well, where nothing is Gaussian",
        caption: "E = 2 (x^2 - 1)^2, chains started in the right well: the mass leaks over the barrier at x = 0 \
                  slowly, and the equation says how fast; the chains agree at every time.",
        args: "fokker-planck --energy double-well:2 --start 1 --delta 0.005 --times 0.05,0.5,2,6,15 --chains 10000",
        figures: FOKKER_PLANCK_FIGS,
    },
    Experiment {
        name: "forward-delta",
        title: "Forward diffusion of a point mass at 0.4",
        caption: "Seed 000: beta linear from 1e-4 to 0.02 over T = 200 steps. Five paths; the histogram at T with \
                  the theory N(sqrt(alpha-bar_T) 0.4, 1 - alpha-bar_T); the step-by-step chain against the one-jump \
                  closed form (two-sample KS p-value in the numbers).",
        args: "forward --data delta:0.4 --schedule linear:1e-4:0.02 --steps 200 --n 10000 --trajectories 5",
        figures: FORWARD_FIGS,
    },
    Experiment {
        name: "undiffuse-delta",
        title: "Undiffusing to a point mass at 0.4",
        caption: "Seed 000: DDPM ancestral steps with the exact guess of the noise. Every sample ends at 0.4 \
                  (max_distance_to_nearest_atom).",
        args: "undiffuse --data delta:0.4 --schedule linear:1e-4:0.02 --steps 200 --n 10000 --sampler ddpm --trajectories 5",
        figures: REVERSE_FIGS,
    },
    Experiment {
        name: "undiffuse-one-point",
        title: "Five undiffusions from one diffused point",
        caption: "Seed 000: five reverse runs all starting from x_200 = 1.5 take different paths and all end at 0.4.",
        args: "undiffuse --data delta:0.4 --schedule linear:1e-4:0.02 --steps 200 --n 5 --start 1.5 --trajectories 5",
        figures: &[
            ("paths.png", "Reverse paths from one point"),
            ("guess.png", "The guessed noise against x_t"),
        ],
    },
    Experiment {
        name: "undiffuse-to-125",
        title: "Undiffusing from 200 to 125 = diffusing from 0 to 125",
        caption: "Seed 000: the reverse process stopped at step 125 gives the same distribution as the forward \
                  process run to 125 (KS p-values against the closed form and against a diffused sample).",
        args: "undiffuse --data delta:0.4 --schedule linear:1e-4:0.02 --steps 200 --from 200 --to 125 --n 10000",
        figures: REVERSE_FIGS,
    },
    Experiment {
        name: "undiffuse-two-points",
        title: "A harder distribution: two point masses",
        caption: "Seed 000 continues with a distribution of two points (its formula did not survive in the seed; \
                  here -0.5 and 0.5). The guess of z now depends on which point x_t is likely to have come from.",
        args: "undiffuse --data delta:-0.5,0.5 --schedule linear:1e-4:0.02 --steps 200 --n 10000 --trajectories 10",
        figures: REVERSE_FIGS,
    },
    Experiment {
        name: "forward-mixture1d",
        title: "Seed 004's four points, diffused with a constant schedule",
        caption: "Seed 004: x_t = sqrt(1 - beta) x_{t-1} + sqrt(beta) z with beta = 0.2^2 from the points \
                  {-15, -5, 1, 15}; q_t(x) is a four-component mixture at every t.",
        args: "forward --data mixture1d --schedule constant:0.04 --steps 200 --n 2000 --trajectories 8",
        figures: FORWARD_FIGS,
    },
    Experiment {
        name: "sde-mixture1d",
        title: "The reverse SDE with the analytic mixture score",
        caption: "Seed 004: Euler-Maruyama on dx = [-beta/2 x - beta grad log q_t(x)] dt + sqrt(beta) dw, from N(0, 1). \
                  The samples return to the four points in equal shares (chi-square p-value).",
        args: "undiffuse --data mixture1d --schedule constant:0.04 --steps 200 --sampler sde --prior normal --n 4000 --trajectories 20",
        figures: REVERSE_FIGS,
    },
    Experiment {
        name: "ode-mixture1d",
        title: "The probability-flow ODE with the analytic mixture score",
        caption: "Seed 004: dx/dt = -beta/2 (x + grad log q_t(x)) has the same marginals as the SDE; an adaptive \
                  Dormand-Prince solver needs far fewer evaluations (nfe).",
        args: "undiffuse --data mixture1d --schedule constant:0.04 --steps 200 --sampler ode --prior normal --n 4000 --trajectories 20",
        figures: REVERSE_FIGS,
    },
    Experiment {
        name: "ode-8gaussians",
        title: "Eight Gaussians in 2-D by the probability-flow ODE",
        caption: "The exact denoiser of a 2-D mixture drives the ODE from N(0, I); KS p-values along random \
                  projections test the result against the true mixture.",
        args: "undiffuse --data 8gaussians --schedule linear:1e-4:0.02 --steps 1000 --sampler ode --prior normal --n 4000",
        figures: REVERSE_FIGS,
    },
    Experiment {
        name: "ddpm-spiral",
        title: "The spiral by its empirical denoiser",
        caption: "Seed 003's spiral, with the ideal denoiser of 1000 reference points: DDPM returns to those \
                  points (a perfect denoiser of a finite sample memorises it; learning comes next).",
        args: "undiffuse --data spiral --schedule linear:1e-4:0.02 --steps 200 --sampler ddpm --prior normal --n 2000 --reference 1000",
        figures: REVERSE_FIGS,
    },
    Experiment {
        name: "converge-8gaussians",
        title: "Fast samplers: error against evaluations",
        caption: "Each fixed-step sampler's endpoint error against a tight adaptive solve from the same noise \
                  (log-log, fitted order in the legend) and the energy distance of its samples to exact ones, \
                  on eight Gaussians with their exact denoiser.",
        args: "converge --data 8gaussians --schedule linear:1e-4:0.02 --steps 1000 --nfe 5,10,20,40,80 --n 2000",
        figures: &[
            ("orders.png", "Endpoint error against evaluations"),
            ("energy.png", "Energy distance to exact samples"),
        ],
    },
    Experiment {
        name: "ten-steps-exponential",
        title: "Ten evaluations on a fixed grid",
        caption: "UniPC with 10 evaluations on the exponential grid of the schedule's own range (157 to 0.01): \
                  too few levels where the modes split, so the clusters come out too wide: the smallest \
                  KS p-value along random projections is {ks_vs_theory_p}.",
        args: "undiffuse --data 8gaussians --schedule linear:1e-4:0.02 --steps 1000 --sampler unipc --nfe 10 --grid exponential --prior normal --n 4000",
        figures: REVERSE_FIGS,
    },
    Experiment {
        name: "ten-steps-fitted",
        title: "Ten evaluations on a fitted grid",
        caption: "The same sampler and budget on a grid fitted to the denoiser first (grid_sigmas in the \
                  summary; pilot_nfe is what the fit cost): the smallest KS p-value is now {ks_vs_theory_p}.",
        args: "undiffuse --data 8gaussians --schedule linear:1e-4:0.02 --steps 1000 --sampler unipc --nfe 10 --grid fitted --prior normal --n 4000",
        figures: REVERSE_FIGS,
    },
    Experiment {
        name: "data-8gaussians",
        title: "Samples of eight Gaussians",
        caption: "Exact draws of the mixture (the forward process stopped at step 0), for the likelihood below.",
        args: "forward --data 8gaussians --to 0 --n 2000 --trajectories 0",
        figures: &[("scatter.png", "The samples")],
    },
    Experiment {
        name: "nll-8gaussians",
        title: "Exact likelihood by the probability-flow ODE",
        caption: "Seed 004: the ODE is a continuous normalizing flow, so the change of variables gives each \
                  sample's log-likelihood; with the exact denoiser it matches the mixture's log-density \
                  (true_nll_nats, error_nats_per_dim).",
        args: "nll --data 8gaussians --samples {out}/data-8gaussians/samples.csv",
        figures: &[],
    },
    Experiment {
        name: "images-classes",
        title: "Fashion-MNIST, class by class",
        caption: "Seed 002's conditioning on a small scale: the shipped prompt-conditioned UNet asked for each class by its label (one row \
                  per class: t-shirt, trouser, pullover, dress, coat, sandal, shirt, sneaker, bag, ankle \
                  boot), 20-NFE DPM-Solver++(2M) with classifier-free guidance 3; and the reverse \
                  process from noise to picture.",
        args: "sample --model fashion-mnist --label all --n 10 --sampler dpmpp-2m --nfe 20 --guidance 3 --animate",
        figures: &[
            ("grid.png", "Ten samples of each class"),
            ("animation.gif", "The reverse process, one image per class"),
        ],
    },
    Experiment {
        name: "images-eval",
        title: "Judging the pictures with a classifier",
        caption: "The shipped classifier (trained by diffuse classifier on the 60,000 training images) \
                  says which class each sample above looks like: accuracy is the fraction drawn as asked. \
                  The Frechet distance on its features compares the samples with the real test images of \
                  the same classes; frechet_floor is the same distance for as many real training images \
                  (with 100 samples both are dominated by the small-sample bias).",
        args: "eval --samples {out}/images-classes --classifier fashion-mnist-classifier",
        figures: &[],
    },
    Experiment {
        name: "images-prompt",
        title: "A prompt in words the model never saw",
        caption: "The same model asked in words: the text encoder (all-MiniLM-L6-v2) places the sentence \
                  near the training captions of the class it means, and the model is given the caption \
                  the sentence is read as by a vote over each class's captions: '{prompt_read_as}' \
                  ({prompt_read_as_class}).",
        args: "sample --model fashion-mnist --prompt \"a shoe for running\" --n 20 --sampler dpmpp-2m --nfe 20 --guidance 3",
        figures: &[("grid.png", "Twenty samples of 'a shoe for running'")],
    },
    Experiment {
        name: "colour-vae",
        title: "A latent text-to-image model trained here: the VAE",
        caption: "Seed 002's latent diffusion, trained on this machine (colour-fashion): Fashion-MNIST \
                  padded to 32x32 and tinted in seven colours. One test image of each (colour, class) \
                  pair, rows red, yellow, green, cyan, blue, purple, white, over what the shipped \
                  AutoencoderKL (the same module as Stable Diffusion's VAE) makes of its 8x8x4 latents; \
                  psnr_db is the mean over 1,000 test images (higher is closer; 20 dB is an error of a \
                  tenth of the range).",
        args: "eval --vae colour-fashion",
        figures: &[
            ("originals.png", "Test images, one per (colour, class)"),
            (
                "reconstructions.png",
                "Their reconstructions through 8x8x4 latents",
            ),
        ],
    },
    Experiment {
        name: "colour-prompts",
        title: "Prompts that compose: every colour with every class",
        caption: "The shipped latent UNet (cross-attending to MiniLM's token states) asked for each \
                  pair in plain words ('a red sandal'), eight pictures per row, 20 steps, guidance 3. \
                  Twelve pairs never appear in training (held out: the second grid): a model that \
                  draws them has composed a colour and a class it only saw apart. Each picture is \
                  judged by the shipped classifier (class, on its brightness) and by its mean hue \
                  (colour); the *_mean numbers are the shares right, averaged over prompts.",
        args: "eval --model colour-fashion --prompts all --n 8",
        figures: &[
            (
                "grid-trained.png",
                "Pairs seen in training, one prompt per row",
            ),
            (
                "grid-held-out.png",
                "The twelve held-out pairs, one prompt per row",
            ),
        ],
    },
    Experiment {
        name: "colour-guidance",
        title: "How much guidance",
        caption: "The held-out prompts at several classifier-free guidance scales, 20 pictures each: \
                  the share right by class, by colour and by both. Guidance 1 is the conditional \
                  model alone; more guidance sharpens the class, and past 2 or 3 starts to push \
                  some colours toward a neighbour (the blue sandal's thin straps toward cyan). The \
                  default is 3.",
        args: "eval --model colour-fashion --prompts held-out --n 20 --guidance 1,2,3,5,8",
        figures: &[("guidance.png", "Shares right against the guidance scale")],
    },
    Experiment {
        name: "colour-walk",
        title: "From 'a red dress' to 'a blue bag'",
        caption: "Seed 002's walk between two prompts' token states: nine pictures from the same \
                  starting latents, the prompt embedding moving in a straight line from one prompt \
                  to the other (one row per starting noise).",
        args: "sample --model colour-fashion --prompt \"a red dress\" --prompt-to \"a blue bag\" --frames 9 --n 4",
        figures: &[
            ("strip.png", "The walk, one row per starting noise"),
            ("interpolation.gif", "The walk as a film"),
        ],
    },
    Experiment {
        name: "colour-swap",
        title: "A token swap",
        caption: "Seed 002's embedding edit: the state of the token 'blue' from 'a blue dress' put in \
                  place of 'red' in 'a red dress' (same positions), every other token's state kept. \
                  CLIP's states before a word do not see it; MiniLM's do (it reads both ways), so the \
                  kept tokens still carry 'red' and the colour lands between the two \
                  (judge_colour_counts).",
        args: "sample --model colour-fashion --prompt \"a red dress\" --swap-from \"a blue dress\" --swap-token blue --n 16",
        figures: &[("grid.png", "'a red dress' with the token 'blue' swapped in")],
    },
    Experiment {
        name: "colour-red-dress",
        title: "A red dress, for the blue loss to change",
        caption: "Sixteen pictures of 'a red dress' at the model's defaults, the starting point of the \
                  next experiment (same seeds).",
        args: "sample --model colour-fashion --prompt \"a red dress\" --n 16",
        figures: &[("grid.png", "'a red dress'")],
    },
    Experiment {
        name: "colour-blue-loss",
        title: "Seed 002's blue loss on a trained model",
        caption: "The same sixteen starting latents, with the gradient of the mean |blue - 0.9| of \
                  the decoded picture subtracted from the latents every fifth step (scale k). The \
                  dresses turn pink-violet and stay dresses: eval below gives the blue-to-red ratio \
                  of the items' pixels and what the classifier says.",
        args: "sample --model colour-fashion --prompt \"a red dress\" --n 16 --loss blue --loss-scale 1000 --loss-every 5",
        figures: &[("grid.png", "'a red dress' under the blue loss")],
    },
    Experiment {
        name: "colour-blue-loss-eval",
        title: "The blue loss, measured",
        caption: "blue_to_red is the items' mean blue over their mean red (without the loss: the \
                  eval of colour-red-dress-eval); class_accuracy the share the classifier still calls \
                  a dress.",
        args: "eval --samples {out}/colour-blue-loss --classifier fashion-mnist-classifier --class \"red dress\"",
        figures: &[],
    },
    Experiment {
        name: "colour-red-dress-eval",
        title: "The red dresses without the loss, measured",
        caption: "The same numbers for the sixteen pictures drawn without the loss.",
        args: "eval --samples {out}/colour-red-dress --classifier fashion-mnist-classifier --class \"red dress\"",
        figures: &[],
    },
];

/// Every experiment of the tour: the physics and samplers, then every demo's steps.
fn all_experiments() -> Vec<&'static Experiment> {
    EXPERIMENTS
        .iter()
        .chain(demo::DEMOS.iter().flat_map(|d| d.steps.iter()))
        .collect()
}

/// `diffuse tour`.
pub fn run(a: &TourArgs) -> Result<()> {
    let index = run_all(
        &a.out,
        "Every experiment of the seeds, run by diffuse tour. Under each: what it shows, the command \
         that re-makes it, its figures, and the numbers from its summary.json.",
        "tour",
        &all_experiments(),
        a.quick,
    )?;
    eprintln!("wrote {} (open it in a browser)", index.display());
    Ok(())
}
