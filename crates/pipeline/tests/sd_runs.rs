//! Whole Stable Diffusion runs against diffusers: 4 guided steps (scale 5, a negative prompt)
//! from the latents `scripts/sd-fixtures.py` injected, for DDIM, Euler, LMS and DPM-Solver++(2M),
//! on an epsilon (SD 1.x style) and a v-prediction (SD 2.x style) tiny pipeline; the final
//! latents and the decoded image compared.

mod common;

use std::path::PathBuf;

use burn::tensor::Device;
use common::{check_runs, tiny};

// Four steps through a UNet whose outputs match diffusers to ~1.5e-6 (tests/sd.rs of nn), with
// the schedule in f64 here and f32 there (1e-7 relative on sigma), amplified by guidance 5 and by
// the step sizes (x0 = (x - sigma eps) / ... with sigma up to 14): 1e-4 absolute on latents of
// size ~1-10, and the image (decoded from them, in [0, 1]) the same.
#[test]
fn tiny_runs_match_diffusers() {
    check_runs(&tiny("tiny-sd1"), &Device::flex(), 1e-4, 1e-4);
    check_runs(&tiny("tiny-sd2"), &Device::flex(), 1e-4, 1e-4);
}

/// The full-size SD 1.x and 2.x architectures (random weights) of `scripts/sd-fixtures.py --full`:
/// a 2-step guided DDIM run at 512x512 (SD 1.x) and 768x768 (SD 2.x, v-prediction).
#[test]
#[ignore = "needs the full-size pipelines of scripts/sd-fixtures.py --full in $DIFFUSE_SD_FULL"]
fn full_size_runs_match_diffusers() {
    let dir = PathBuf::from(std::env::var_os("DIFFUSE_SD_FULL").expect("set DIFFUSE_SD_FULL"));
    for name in ["sd1-full", "sd2-full"] {
        let t0 = std::time::Instant::now();
        check_runs(&dir.join(name), &Device::flex(), 1e-3, 1e-3);
        println!("{name}: {:.1} s", t0.elapsed().as_secs_f64());
    }
}
