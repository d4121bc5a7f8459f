//! Step tables and whole runs of the fast samplers against diffusers 0.42.1 (PyTorch 2.15,
//! float64 except UniPC, which diffusers runs in float32) on Stable Diffusion's scaled-linear
//! schedule (0.00085, 0.012, 1000 steps), "trailing" timestep spacing, starting from
//! z = (0.5, -1, 2, 0.1) with the fake noise model eps(x, tau) = 0.3 sin(x + 0.01 tau).
//! The numbers below were produced once on a developer machine; the script is not kept.

use super::*;
use crate::denoiser::{Denoiser, Level, Prediction, Target};
use crate::tensor::{from_flat, to_vec};

struct FakeEps;

impl Denoiser for FakeEps {
    fn dim(&self) -> usize {
        1
    }
    fn predict(&self, x: &Tensor<2>, level: Level) -> crate::Result<Prediction> {
        // diffusers' timestep tau is this crate's step tau + 1.
        let tau = level.t - 1.0;
        let v: Vec<f64> = to_vec(x)?
            .iter()
            .map(|xi| 0.3 * (xi + 0.01 * tau).sin())
            .collect();
        let n = v.len();
        Ok(Prediction {
            target: Target::Eps,
            value: from_flat(&v, n, 1, &x.device()),
            x: x.clone(),
            level,
        })
    }
}

const Z: [f64; 4] = [0.5, -1.0, 2.0, 0.1];

fn sd() -> Schedule {
    Schedule::scaled_linear(0.00085, 0.012, 1000).unwrap()
}

/// Runs from x_T = `scale` z (variance-preserving scaling).
fn run_from_z(sampler: Sampler, scale: f64) -> Vec<f64> {
    let device = crate::device::cpu();
    let s = sd();
    let batch = BatchNoise::new(NoiseSource::new(0), 0..4);
    let z: Vec<f64> = Z.iter().map(|v| v * scale).collect();
    let (x, _) = run(
        &sampler,
        &FakeEps,
        &s,
        from_flat(&z, 4, 1, &device),
        1000,
        0,
        &batch,
        &mut silent,
    )
    .unwrap();
    to_vec(&x).unwrap()
}

fn assert_close(name: &str, got: &[f64], want: &[f64], rel: f64) {
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= rel * w.abs().max(1.0),
            "{name}: got {got:?}, diffusers {want:?}"
        );
    }
}

#[test]
fn the_sigma_table_is_diffusers() {
    let want = [
        14.614646911621094,
        8.30280590057373,
        5.087765216827393,
        3.321084499359131,
        2.2764639854431152,
        1.6128870248794556,
        1.1605788469314575,
        0.8298600316047668,
        0.5692853927612305,
        0.34167441725730896,
        0.0,
    ];
    let got = sigma_grid(
        &GridKind::Timesteps(Spacing::Trailing),
        &sd(),
        1000,
        0,
        10,
        SigmaRange::FULL,
    )
    .unwrap();
    // diffusers keeps its sigmas in float32: 1e-6 relative.
    assert_close("sigmas", &got, &want, 1e-6);
    assert_eq!(
        ddim_steps(Spacing::Trailing, 1000, 0, 10).unwrap(),
        vec![1000, 900, 800, 700, 600, 500, 400, 300, 200, 100, 0]
    );
}

#[test]
fn lms_coefficients_are_diffusers() {
    let sigmas = sigma_grid(
        &GridKind::Timesteps(Spacing::Trailing),
        &sd(),
        1000,
        0,
        10,
        SigmaRange::FULL,
    )
    .unwrap();
    let got: Vec<f64> = (0..4)
        .map(|j| karras::lms_coefficient(4, &sigmas, 3, j))
        .collect();
    let want = [
        -1.5832596799518799,
        0.6870721584349572,
        -0.15971846337389217,
        0.011285338008770658,
    ];
    assert_close("LMS coefficients", &got, &want, 1e-5);
}

#[test]
fn whole_runs_match_diffusers() {
    let trailing = GridKind::Timesteps(Spacing::Trailing);
    let sigma = |method, steps| Sampler::Sigma {
        method,
        grid: trailing.clone(),
        steps,
        range: SigmaRange::FULL,
        ends: Ends::Plain,
    };
    let cases: [(&str, Sampler, [f64; 4]); 6] = [
        (
            "DDIM",
            Sampler::Ddim {
                eta: 0.0,
                spacing: Spacing::Trailing,
                steps: 10,
            },
            [
                10.420746580100936,
                -15.72284943894153,
                29.855902767689862,
                1.9234273782633748,
            ],
        ),
        (
            "Euler",
            sigma(SigmaMethod::Euler, 10),
            [
                10.392523280929353,
                -15.688346054295293,
                29.795877623402923,
                1.9191470419535015,
            ],
        ),
        (
            "LMS",
            sigma(SigmaMethod::Lms { order: 4 }, 10),
            [
                10.280475878448238,
                -15.043109193312576,
                29.78583513771291,
                1.6344510023156729,
            ],
        ),
        (
            "DPM-Solver++(2M)",
            sigma(SigmaMethod::DpmPP2M, 10),
            [
                10.18552420204396,
                -15.622393616906184,
                29.377905102134875,
                1.495152424612234,
            ],
        ),
        (
            "DPM-Solver++(3M)",
            sigma(
                SigmaMethod::DpmPP3M {
                    diffusers_form: true,
                },
                20,
            ),
            [
                9.975537401788504,
                -15.502006745317733,
                29.324325583939082,
                1.151233860295697,
            ],
        ),
        (
            "UniPC",
            sigma(SigmaMethod::UniPc, 10),
            [
                10.08326530456543,
                -15.589079856872559,
                29.21734046936035,
                1.3461499214172363,
            ],
        ),
    ];
    // diffusers' Euler and LMS schedulers start from x~ = sigma_max z where the variance-preserving
    // start x_T = z is x~ = sqrt(1 + sigma_max^2) z ("init_noise_sigma" for trailing spacing): start
    // from their point to compare the updates themselves.
    let sigma_max = sd().sigma(1000);
    let k_scale = sigma_max / (1.0 + sigma_max * sigma_max).sqrt();
    let mut report = vec![];
    for (name, sampler, want) in cases {
        let scale = if matches!(name, "Euler" | "LMS") {
            k_scale
        } else {
            1.0
        };
        let got = run_from_z(sampler, scale);
        let worst = got
            .iter()
            .zip(&want)
            .map(|(g, w)| ((g - w) / w).abs())
            .fold(0.0, f64::max);
        report.push(format!(
            "{name}: worst relative difference {worst:.2e}, got {got:?}"
        ));
        if worst > 1e-5 {
            panic!("{}", report.join("\n"));
        }
    }
}
