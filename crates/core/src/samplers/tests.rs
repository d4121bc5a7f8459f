//! Every sampler against the exact answers a mixture gives: KS tests of where the samples end
//! against the true CDF of the (diffused) mixture, at level 0.001 with n = 10,000.

use super::*;
use crate::exact::Mixture;
use crate::forward::jump;
use crate::metrics::ks_one_sample;
use crate::tensor::{from_flat, to_vec};

const N: u64 = 10_000;

fn samplers(steps: usize) -> Vec<(&'static str, Sampler)> {
    let sigma = |method| Sampler::Sigma {
        method,
        grid: GridKind::UniformTime,
        steps,
        range: SigmaRange::FULL,
        ends: Ends::Plain,
    };
    vec![
        ("ddpm", Sampler::Ddpm(Variance::Posterior)),
        ("ddpm-beta", Sampler::Ddpm(Variance::Beta)),
        (
            "ddim-eta1",
            Sampler::Ddim {
                eta: 1.0,
                spacing: Spacing::Linspace,
                steps,
            },
        ),
        ("sde", Sampler::Sde { steps: 4 * steps }),
        ("ode-heun", sigma(SigmaMethod::Heun(Churn::default()))),
        (
            "ode-rk45",
            Sampler::Ode {
                method: OdeMethod::Rk45 {
                    rtol: 1e-5,
                    atol: 1e-5,
                },
            },
        ),
        ("dpmpp-2m", sigma(SigmaMethod::DpmPP2M)),
    ]
}

/// Undiffuses from step `from`, starting from the data diffused there in closed form (seed 000),
/// down to step `to`; rows 0..N.
fn undiffuse(
    sampler: Sampler,
    m: &Mixture,
    s: &Schedule,
    from: usize,
    to: usize,
    seed: u64,
) -> Vec<f64> {
    let device = crate::device::cpu();
    let noise = NoiseSource::new(seed);
    let x0 = from_flat(&m.sample(&noise, 0..N), N as usize, m.dim(), &device);
    let (x_from, _) = jump(x0, s, from, &noise, 0..N).unwrap();
    let (x, _) = run(
        &sampler,
        &m.denoiser(&device),
        s,
        x_from,
        from,
        to,
        &BatchNoise::new(noise, 0..N),
        &mut silent,
    )
    .unwrap();
    to_vec(&x).unwrap()
}

#[test]
fn every_sampler_ends_on_a_point_mass() {
    let m = Mixture::deltas(&[0.4]).unwrap();
    let s = Schedule::linear(1e-4, 0.02, 200).unwrap();
    for (name, sampler) in samplers(200) {
        let x = undiffuse(sampler, &m, &s, 200, 0, 1);
        let worst = x.iter().map(|v| (v - 0.4).abs()).fold(0.0, f64::max);
        // f32 arithmetic: a few ulps of 0.4.
        assert!(worst < 1e-5, "{name}: a sample ended {worst} from 0.4");
    }
}

fn gmm_1d() -> Mixture {
    Mixture::new(vec![0.3, 0.7], vec![vec![-2.0], vec![1.5]], vec![0.3, 0.6]).unwrap()
}

#[test]
fn every_sampler_recovers_a_gaussian_mixture() {
    let m = gmm_1d();
    let s = Schedule::linear(1e-4, 0.02, 200).unwrap();
    for (name, sampler) in samplers(200) {
        let x = undiffuse(sampler, &m, &s, 200, 0, 2);
        let p = ks_one_sample(&x, |v| m.cdf_1d(v)).p_value;
        assert!(p > 1e-3, "{name}: KS p = {p}");
    }
}

/// Seed 000: "run your diffusion from T=0 to T=125 and your undiffusion from T=200 to T=125".
#[test]
fn undiffusing_to_b_matches_diffusing_to_b() {
    let m = gmm_1d();
    let s = Schedule::linear(1e-4, 0.02, 200).unwrap();
    for to in [199, 125, 50, 1] {
        let q_b = m.diffused(s.alpha_bar(to));
        for (name, sampler) in samplers(200 - to) {
            let x = undiffuse(sampler, &m, &s, 200, to, 3);
            let p = ks_one_sample(&x, |v| q_b.cdf_1d(v)).p_value;
            assert!(p > 1e-3, "{name} to {to}: KS p = {p}");
        }
    }
}

/// The generative setting: from N(0, I) at T = 1000, where q_T is N(0, I) to 4e-5.
#[test]
fn from_the_prior_every_sampler_recovers_a_2d_mixture_along_projections() {
    let device = crate::device::cpu();
    let m = Mixture::new(
        vec![0.25, 0.25, 0.5],
        vec![vec![-2.0, 0.0], vec![2.0, 0.0], vec![0.0, 2.0]],
        vec![0.2, 0.5, 0.3],
    )
    .unwrap();
    let s = Schedule::linear(1e-4, 0.02, 1000).unwrap();
    let noise = NoiseSource::new(4);
    for (name, sampler) in samplers(250) {
        let batch = BatchNoise::new(noise, 0..N);
        let sampler = match sampler {
            Sampler::Sde { .. } => Sampler::Sde { steps: 1000 },
            other => other,
        };
        let (x, _) = run(
            &sampler,
            &m.denoiser(&device),
            &s,
            batch.prior(2, &device),
            1000,
            0,
            &batch,
            &mut silent,
        )
        .unwrap();
        let x = to_vec(&x).unwrap();
        for p in 0..4 {
            let u = crate::metrics::unit_direction(&noise, p, 2);
            let proj = crate::metrics::project(&x, &u);
            let q = m.projected(&u);
            let pv = ks_one_sample(&proj, |v| q.cdf_1d(v)).p_value;
            assert!(pv > 1e-3, "{name}, direction {p}: KS p = {pv}");
        }
    }
}

/// With the grid of an adaptive solve fixed on a pilot batch, every sampler gives each sample
/// the same value whatever batch it is drawn in, to the last bit.
#[test]
fn a_sample_does_not_depend_on_its_batch() {
    let device = crate::device::cpu();
    let m = gmm_1d();
    let s = Schedule::cosine(50).unwrap();
    let noise = NoiseSource::new(6);
    let den = m.denoiser(&device);
    for (name, sampler) in samplers(50) {
        let pilot = BatchNoise::new(noise, 0..16);
        let sampler = fix_grid(&sampler, &den, &s, pilot.prior(1, &device), 50, 0)
            .unwrap()
            .sampler;
        let draw = |rows: std::ops::Range<u64>| {
            let batch = BatchNoise::new(noise, rows);
            let (x, _) = run(
                &sampler,
                &den,
                &s,
                batch.prior(1, &device),
                50,
                0,
                &batch,
                &mut silent,
            )
            .unwrap();
            to_vec(&x).unwrap()
        };
        let whole = draw(0..30);
        let mut parts = draw(0..11);
        parts.extend(draw(11..30));
        assert_eq!(whole, parts, "{name}");
    }
}

/// An adaptive solve's grid, replayed with fixed Dopri5 steps, gives the adaptive solve's answer.
#[test]
fn replaying_an_adaptive_grid_reproduces_the_adaptive_solve() {
    let device = crate::device::cpu();
    let m = gmm_1d();
    let s = Schedule::linear(1e-4, 0.02, 200).unwrap();
    let batch = BatchNoise::new(NoiseSource::new(8), 0..200);
    let den = m.denoiser(&device);
    let x = batch.prior(1, &device);
    let method = OdeMethod::Rk45 {
        rtol: 1e-5,
        atol: 1e-5,
    };
    let (a, stats) =
        probability_flow(&den, &s, x.clone(), 200.0, 0.0, &method, &mut silent).unwrap();
    let (b, replay) = probability_flow(
        &den,
        &s,
        x,
        200.0,
        0.0,
        &OdeMethod::Dopri5(stats.sigmas.clone()),
        &mut silent,
    )
    .unwrap();
    assert_eq!(to_vec(&a).unwrap(), to_vec(&b).unwrap());
    assert_eq!(replay.sigmas, stats.sigmas);
    assert!(replay.nfe <= stats.nfe);
}

#[test]
fn impossible_runs_are_errors() {
    let device = crate::device::cpu();
    let m = gmm_1d();
    let s = Schedule::linear(1e-4, 0.02, 10).unwrap();
    let batch = BatchNoise::new(NoiseSource::new(0), 0..5);
    let den = m.denoiser(&device);
    assert!(
        run(
            &Sampler::Ddpm(Variance::Beta),
            &den,
            &s,
            batch.prior(1, &device),
            11,
            0,
            &batch,
            &mut silent
        )
        .is_err()
    );
    assert!(
        run(
            &Sampler::Sde { steps: 0 },
            &den,
            &s,
            batch.prior(1, &device),
            10,
            0,
            &batch,
            &mut silent
        )
        .is_err()
    );
    assert!(
        run(
            &Sampler::Ddpm(Variance::Beta),
            &den,
            &s,
            batch.prior(2, &device),
            10,
            0,
            &batch,
            &mut silent
        )
        .is_err()
    );
}

/// DPM-Solver++(2M)'s last steps on a Gaussian of std s = 0.05: a fine grid down to 0.02, then
/// 0.01 and 0, from noise z on the exact trajectory x = z sqrt(s^2 + sigma^2), which ends at
/// z s. x = D(x) at 0.01 draws the component about s / sqrt(s^2 + 0.01^2) = 0.981 of its width
/// (1.4% short here, the step from 0.02 adding its own error); the second-order end, exact
/// where d = (x - D) / sigma is linear in sigma (d = z sigma / sqrt(s^2 + sigma^2) is nearly
/// so at sigma << s), comes within a quarter of that.
#[test]
fn dpmpp_2m_second_order_end_keeps_a_narrow_components_width() {
    let (s_data, top, n) = (0.05f64, 1.0f64, 400);
    let m = Mixture::new(vec![1.0], vec![vec![0.0]], vec![s_data]).unwrap();
    let sched = Schedule::linear(1e-4, 0.02, 1000).unwrap();
    let den = m.denoiser(&crate::device::cpu());
    let model = sigma::SigmaDenoiser::new(&den, &sched);
    let mut sigmas: Vec<f64> = (0..n)
        .map(|i| (top.ln() + (0.02f64.ln() - top.ln()) * i as f64 / (n - 1) as f64).exp())
        .collect();
    sigmas.extend([0.01, 0.0]);
    let z = [-2.0, -0.5, 1.0, 2.5];
    let on = |z: f64, sigma: f64| z * (s_data * s_data + sigma * sigma).sqrt();
    let x = from_flat(&z.map(|z| on(z, top)), 4, 1, &crate::device::cpu());
    let end = |second_order_end: bool| -> Vec<f64> {
        let y = karras::dpmpp_2m(&model, x.clone(), &sigmas, second_order_end, &mut silent);
        to_vec(&y.unwrap()).unwrap()
    };
    for ((plain, second), z) in end(false).into_iter().zip(end(true)).zip(z) {
        let exact = z * s_data;
        let short = 1.0 - plain / exact;
        assert!(
            (0.01..0.03).contains(&short),
            "x = D(x): {plain} against {exact}"
        );
        assert!(
            (second - exact).abs() < 0.25 * (plain - exact).abs(),
            "second-order end: {second} against {exact} (x = D(x): {plain})"
        );
    }
}

/// Few-step ends: the first step costs no evaluation (so a grid of k levels spends k - 1), and a
/// denoiser that does not know its data's moments is refused by name.
#[test]
fn few_step_ends_spend_one_evaluation_less_and_need_the_datas_moments() {
    struct Unknown<'a>(&'a dyn crate::denoiser::Denoiser);
    impl crate::denoiser::Denoiser for Unknown<'_> {
        fn dim(&self) -> usize {
            self.0.dim()
        }
        fn predict(
            &self,
            x: &Tensor<2>,
            level: Level,
        ) -> crate::Result<crate::denoiser::Prediction> {
            self.0.predict(x, level)
        }
    }
    let device = crate::device::cpu();
    let m = Mixture::new(vec![0.5, 0.5], vec![vec![-1.0], vec![1.0]], vec![0.2, 0.3]).unwrap();
    let s = Schedule::linear(1e-4, 0.02, 1000).unwrap();
    let den = m.denoiser(&device);
    let batch = BatchNoise::new(NoiseSource::new(5), 0..64);
    for method in [SigmaMethod::DpmPP2M, SigmaMethod::UniPc, SigmaMethod::Euler] {
        let sampler = Sampler::Sigma {
            method,
            grid: GridKind::Exponential,
            steps: 11,
            range: SigmaRange::FULL,
            ends: Ends::FewStep,
        };
        let x = batch.prior(1, &device);
        let (y, nfe) = run(&sampler, &den, &s, x.clone(), 1000, 0, &batch, &mut silent).unwrap();
        assert_eq!(nfe, 10, "{method:?}");
        assert!(to_vec(&y).unwrap().iter().all(|v| v.is_finite()));
        let e = run(
            &sampler,
            &Unknown(&den),
            &s,
            x,
            1000,
            0,
            &batch,
            &mut silent,
        )
        .unwrap_err();
        assert!(e.to_string().contains("mean and covariance"), "{e}");
    }
}
