//! The sampler study: each sampler's error against its evaluation budget, on a distribution
//! whose exact denoiser makes the truth known, with the fitted order of convergence.

use anyhow::{Result, bail};
use diffuse_core::metrics::{energy_distance, loglog_slope};
use diffuse_core::samplers::{
    self, BatchNoise, GridKind, OdeMethod, Sampler, SamplerName, SamplerSpec, silent,
};
use diffuse_core::tensor::to_vec;
use diffuse_core::{NoiseSource, device};

use crate::run::Watch;
use crate::{dataset, positive, schedule};

/// The step where endpoint errors are measured: the grid's last level above 0, so that the
/// final jump to the denoised estimate does not mask the solver's order.
pub const ENDPOINT_STEP: usize = 1;

/// How many of the largest budgets the order is fitted through.
pub const ORDER_POINTS: usize = 3;

/// A convergence study.
#[derive(Debug, Clone)]
pub struct Study {
    /// The distribution (its exact denoiser drives every sampler).
    pub data: String,
    /// The schedule spec.
    pub schedule: String,
    /// T.
    pub steps: usize,
    /// The samplers compared.
    pub samplers: Vec<SamplerName>,
    /// The evaluation budgets.
    pub nfe: Vec<usize>,
    /// The sigma grid of the sigma samplers (ddim uses trailing timesteps).
    pub grid: String,
    /// Samples per run.
    pub n: usize,
    /// Size of the sample standing in for a toy data set.
    pub reference: usize,
    /// Seed.
    pub seed: u64,
}

/// One sampler's curve.
#[derive(Debug, Clone)]
pub struct Curve {
    /// The sampler.
    pub sampler: SamplerName,
    /// Evaluations each budget actually took.
    pub nfe: Vec<f64>,
    /// Mean absolute endpoint error at [`ENDPOINT_STEP`] against a tight adaptive solve from
    /// the same noise (None for a stochastic sampler).
    pub endpoint_error: Option<Vec<f64>>,
    /// Energy distance of the samples at step 0 to exact samples.
    pub energy_distance: Vec<f64>,
    /// The fitted order: minus the log-log slope of error against evaluations over the
    /// [`ORDER_POINTS`] largest budgets.
    pub order: Option<f64>,
}

/// What a study found.
pub struct Converged {
    /// One curve per sampler, in the order asked.
    pub curves: Vec<Curve>,
    /// The size of the exact sample the energy distances are measured against.
    pub exact_n: usize,
    /// The schedule's canonical name.
    pub schedule: String,
}

/// Runs the study.
pub fn converge(s: &Study, watch: &mut dyn Watch) -> Result<Converged> {
    let data = dataset(&s.data, watch)?;
    let sched = schedule(&s.schedule, s.steps)?;
    let n = positive("--n", s.n)?;
    if s.nfe.is_empty() || s.nfe.contains(&0) {
        bail!("--nfe needs evaluation budgets of at least 1");
    }
    if let Some(name) = s.samplers.iter().find(|n| !n.has_budget()) {
        bail!(
            "--samplers: {name} has no evaluation budget to vary; compare the fixed-step samplers"
        );
    }
    if s.grid == "fitted" || s.grid.starts_with("sigmas:") {
        bail!(
            "--grid {}: converge varies the budget over a family of grids (karras, exponential, ...); a fitted or given grid is for one budget (undiffuse, sample)",
            s.grid
        );
    }
    let sigma_grid = GridKind::parse(&s.grid)?;
    let noise = NoiseSource::new(s.seed);
    let dev = device::default_device();
    let d = data.dim();
    let exact = data.exact(s.reference, &noise)?;
    let den = exact.denoiser(&dev);
    let t = s.steps;
    let batch = BatchNoise::new(noise, 0..n as u64);
    let x_t = batch.prior(d, &dev);
    let run = |sampler: &Sampler, to: usize| {
        samplers::run(
            sampler,
            &den,
            &sched,
            x_t.clone(),
            t,
            to,
            &batch,
            &mut silent,
        )
    };
    // The truth: a tight adaptive solve from the same noise, and exact samples for the law.
    let tight = Sampler::Ode {
        method: OdeMethod::Rk45 {
            rtol: 1e-7,
            atol: 1e-7,
        },
    };
    let reference_end = to_vec(&run(&tight, ENDPOINT_STEP)?.0)?;
    let truth = data.sample(&noise, n as u64..2 * n as u64);
    let mut curves = vec![];
    watch.begin("converge", (s.samplers.len() * s.nfe.len()) as u64);
    for &name in &s.samplers {
        let grid = if name == SamplerName::Ddim {
            GridKind::parse("trailing")?
        } else {
            sigma_grid.clone()
        };
        let deterministic = name != SamplerName::EulerAncestral;
        let (mut nfes, mut errors, mut eds) = (vec![], vec![], vec![]);
        for &budget in &s.nfe {
            let spec = SamplerSpec::new(name)
                .with_grid(grid.clone())
                .with_nfe(budget);
            let (end, used) = run(
                &spec.sampler(t - ENDPOINT_STEP, ENDPOINT_STEP)?,
                ENDPOINT_STEP,
            )?;
            let end = to_vec(&end)?;
            let err = end
                .iter()
                .zip(&reference_end)
                .map(|(p, q)| (p - q).abs())
                .sum::<f64>()
                / end.len() as f64;
            let (x0, _) = run(&spec.sampler(t, 0)?, 0)?;
            nfes.push(used as f64);
            errors.push(err);
            eds.push(energy_distance(&to_vec(&x0)?, &truth, d));
            watch.advance(1)?;
        }
        // Through the last three budgets: the asymptotic end, where error ~ C NFE^-p holds;
        // through all of them the pre-asymptotic start bends the slope (Heun read 2.95).
        let tail = nfes.len().saturating_sub(ORDER_POINTS);
        let order = deterministic
            .then(|| -loglog_slope(&nfes[tail..], &errors[tail..]))
            .filter(|o| o.is_finite());
        curves.push(Curve {
            sampler: name,
            nfe: nfes,
            endpoint_error: deterministic.then_some(errors),
            energy_distance: eds,
            order,
        });
    }
    watch.finish();
    Ok(Converged {
        curves,
        exact_n: truth.len() / d,
        schedule: sched.name().into(),
    })
}
