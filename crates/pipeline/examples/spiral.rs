//! Seed 003's spiral through the pipeline API alone: train its 3 x 256 ReLU MLP (T = 1000,
//! linear betas, Adam 1e-3), sample it with 20 steps of DPM-Solver++(2M), and measure the
//! samples against fresh draws of the spiral. Run: `cargo run --release --example spiral`.

use anyhow::{Context, Result, ensure};
use diffuse_core::samplers::{SamplerName, SamplerSpec};
use diffuse_pipeline::{Request, Silent, TrainRun, eval, generate, load, train};

pub fn main() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("diffuse-spiral-{}", std::process::id()));
    let run = TrainRun {
        batch: 128,
        ..TrainRun::new("spiral", 4000)
    };
    let trained = train(&run, &dir, &mut Silent)?;
    let loss = trained.report.get("final_loss_mean_of_last_100");
    println!("trained 4000 steps; mean loss of the last 100: {loss:?}");

    let model = load(&dir)?;
    let request = Request {
        sampler: SamplerSpec::new(SamplerName::DpmPP2M).with_nfe(20),
        ..Request::new(2000)
    };
    let samples = generate(&model, &request, &mut Silent)?;

    let check = eval::against_data("spiral", &samples.x, samples.dim, 2000, 0, true)
        .context("the spiral is always there")?;
    let excess = check
        .report
        .get("excess_energy_distance")
        .and_then(|v| v.as_f64());
    println!("excess energy distance to the spiral: {excess:?} (0: as close as fresh draws)");
    std::fs::remove_dir_all(&dir)?;
    ensure!(
        excess.is_some_and(|e| e < EXCESS),
        "the samples are far from the spiral"
    );
    Ok(())
}

/// The bound `crates/cli/tests/cli.rs` holds `diffuse train` + `diffuse sample` to on the same
/// run (`a_short_spiral_run_lands_on_the_spiral`).
const EXCESS: f64 = 0.02;
