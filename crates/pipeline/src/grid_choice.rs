//! The sigma grid a run takes when the user names none: at few evaluations a fixed grid spends
//! its levels where nothing happens (README, "Few steps"), so an exact mixture, whose denoiser
//! is cheap, gets its grid fitted ([`diffuse_core::samplers::fit`]) unless the user chose a grid
//! or a range. The choice and its reason go to summary.json as `grid_choice`.

use diffuse_core::Mixture;
use diffuse_core::samplers::{
    Ends, GridKind, Sampler, SamplerSpec, SigmaMethod, SigmaRange, grid_name,
};

/// At most this many evaluations count as few: measured on a 2-D mixture of unequal widths
/// (README), the default Karras grid fails a KS test at 10 evaluations and passes at 20.
pub const FEW_NFE: usize = 20;

/// The largest mixture (components x dimensions) fitted by default. A fit spends ~80,000
/// evaluations of a 256-row pilot: 4 s for the eight Gaussians (16) here, 7 minutes for a
/// swiss roll's 2,000 reference points (4,000), which are point masses anyway.
pub const CHEAP_FIT: usize = 64;

/// The sampler a run takes and why its grid is the one it is.
#[derive(Debug, Clone)]
pub struct GridChoice {
    /// The sampler, on a [`GridKind::Fitted`] grid when one was chosen for the user.
    pub sampler: Sampler,
    /// One sentence for summary.json; `None` for samplers without a sigma grid.
    pub why: Option<String>,
}

/// The grid of `sampler` (built from `spec` to spend `nfe` evaluations on a run ending at step
/// `to`) driven by the exact denoiser of `mixture`.
pub fn for_mixture(
    spec: &SamplerSpec,
    sampler: Sampler,
    nfe: usize,
    mixture: &Mixture,
    to: usize,
) -> GridChoice {
    let Sampler::Sigma {
        method,
        grid,
        steps,
        range,
        ends,
    } = &sampler
    else {
        return GridChoice { sampler, why: None };
    };
    let kept = |reason: String| GridChoice {
        why: Some(format!("{}: {reason}", grid_name(grid))),
        sampler: sampler.clone(),
    };
    if spec.grid.is_some() {
        return kept("given".into());
    }
    if spec.range != SigmaRange::FULL {
        return kept("the sampler's default, on the range given".into());
    }
    if nfe > FEW_NFE {
        return kept(format!(
            "the sampler's default ({nfe} evaluations; a grid is fitted by default at {FEW_NFE} or fewer)"
        ));
    }
    if !method.is_deterministic() {
        return kept(
            "the sampler's default (a grid is fitted for deterministic samplers only)".into(),
        );
    }
    if to != 0 {
        return kept("the sampler's default (a grid is fitted for runs to step 0)".into());
    }
    if !mixture.is_continuous() {
        return kept(
            "the sampler's default (the data are point masses, where a fit finds nothing to gain)"
                .into(),
        );
    }
    let size = mixture.weights().len() * mixture.dim();
    if size > CHEAP_FIT {
        return kept(format!(
            "the sampler's default (a fit on {} components in {} dimensions would take minutes; --grid fitted to fit anyway)",
            mixture.weights().len(),
            mixture.dim()
        ));
    }
    // DPM-Solver++(2M) at few steps also takes its ends from the data (README, "Few steps"):
    // a free first step by the data's Gaussian flow and a second-order last step.
    let few_step = spec.ends.is_none() && *method == SigmaMethod::DpmPP2M;
    let (ends, steps, how) = if few_step {
        (
            Ends::FewStep,
            steps + Ends::FewStep.free_levels(),
            ", with few-step ends (the first step the data's Gaussian flow, free; the last second order in sigma)",
        )
    } else {
        (*ends, *steps, "")
    };
    GridChoice {
        sampler: Sampler::Sigma {
            method: *method,
            grid: GridKind::Fitted,
            steps,
            range: *range,
            ends,
        },
        why: Some(format!(
            "fitted: the default at {FEW_NFE} evaluations or fewer on an exact mixture ({nfe} here), where a fixed grid spends its levels where nothing happens{how}"
        )),
    }
}

/// Why a learned model's sampler `ran` on its grid (`spec` as the user gave it): a model's grid
/// is fitted only when asked (`--grid fitted`), since a fit spends ~80,000 evaluations of a
/// 256-row pilot: 42 s and 148 s for the tour's MLPs, hours for an image UNet on 2 cores.
/// `None` for samplers without a sigma grid.
pub fn for_model(spec: &SamplerSpec, ran: &Sampler) -> Option<String> {
    let Sampler::Sigma { grid, .. } = ran else {
        return None;
    };
    Some(match (&spec.grid, spec.range != SigmaRange::FULL) {
        (Some(g), _) => format!("{}: given", grid_name(g)),
        (None, true) => format!(
            "{}: the sampler's default, on the range given",
            grid_name(grid)
        ),
        (None, false) => format!(
            "{}: the sampler's default (a learned model's grid is fitted only with --grid fitted: \
             a fit costs ~80,000 evaluations of a 256-row pilot, a minute or more)",
            grid_name(grid)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use diffuse_core::samplers::SamplerName;

    fn mixture(stds: [f64; 2]) -> Mixture {
        Mixture::new(vec![0.5, 0.5], vec![vec![-1.0], vec![1.0]], stds.to_vec()).unwrap()
    }

    fn choose(spec: &SamplerSpec, m: &Mixture, to: usize) -> GridChoice {
        let sampler = spec.sampler(1000 - to, to).unwrap();
        for_mixture(spec, sampler, spec.budget(1000 - to).unwrap(), m, to)
    }

    fn fitted(c: &GridChoice) -> bool {
        matches!(
            c.sampler,
            Sampler::Sigma {
                grid: GridKind::Fitted,
                ..
            }
        )
    }

    #[test]
    fn few_evaluations_on_a_small_exact_mixture_are_fitted() {
        let m = mixture([0.1, 0.2]);
        for name in [SamplerName::Unipc, SamplerName::DpmPP2M, SamplerName::Heun] {
            let c = choose(&SamplerSpec::new(name).with_nfe(10), &m, 0);
            assert!(fitted(&c), "{name}: {c:?}");
            assert!(c.why.unwrap().starts_with("fitted"));
        }
        // 20 is still few; 21 is not.
        assert!(fitted(&choose(
            &SamplerSpec::new(SamplerName::Unipc).with_nfe(20),
            &m,
            0
        )));
        let c = choose(&SamplerSpec::new(SamplerName::Unipc).with_nfe(21), &m, 0);
        assert!(!fitted(&c) && c.why.unwrap().starts_with("karras"));
    }

    #[test]
    fn dpmpp_2m_alone_takes_few_step_ends_unless_told_otherwise() {
        let m = mixture([0.1, 0.2]);
        let ends_of = |c: &GridChoice| match c.sampler {
            Sampler::Sigma { ends, steps, .. } => (ends, steps),
            _ => panic!("{c:?}"),
        };
        let dpm = SamplerSpec::new(SamplerName::DpmPP2M).with_nfe(10);
        let c = choose(&dpm, &m, 0);
        assert_eq!(ends_of(&c), (Ends::FewStep, 11));
        assert!(c.why.unwrap().contains("few-step ends"));
        let plain = SamplerSpec {
            ends: Some(Ends::Plain),
            ..dpm
        };
        assert_eq!(ends_of(&choose(&plain, &m, 0)), (Ends::Plain, 10));
        let unipc = choose(&SamplerSpec::new(SamplerName::Unipc).with_nfe(10), &m, 0);
        assert_eq!(ends_of(&unipc), (Ends::Plain, 10));
    }

    #[test]
    fn the_users_choices_and_what_cannot_be_fitted_keep_the_default() {
        let m = mixture([0.1, 0.2]);
        let unipc = SamplerSpec::new(SamplerName::Unipc).with_nfe(10);
        let given = unipc.clone().with_grid(GridKind::Exponential);
        assert!(!fitted(&choose(&given, &m, 0)));
        let ranged = SamplerSpec {
            range: SigmaRange {
                max: Some(20.0),
                min: None,
            },
            ..unipc.clone()
        };
        assert!(!fitted(&choose(&ranged, &m, 0)));
        // A run that stops before step 0, point masses, a stochastic sampler, DDPM.
        assert!(!fitted(&choose(&unipc, &m, 10)));
        assert!(!fitted(&choose(&unipc, &mixture([0.0, 0.0]), 0)));
        let ancestral = SamplerSpec::new(SamplerName::EulerAncestral).with_nfe(10);
        assert!(!fitted(&choose(&ancestral, &m, 0)));
        let ddpm = choose(&SamplerSpec::new(SamplerName::Ddpm), &m, 0);
        assert!(!fitted(&ddpm) && ddpm.why.is_none());
    }

    #[test]
    fn a_learned_model_says_why_its_grid_is_not_fitted() {
        let spec = SamplerSpec::new(SamplerName::DpmPP2M).with_nfe(10);
        let ran = spec.sampler(1000, 0).unwrap();
        let why = for_model(&spec, &ran).unwrap();
        assert!(
            why.starts_with("karras:7: the sampler's default") && why.contains("--grid fitted")
        );
        let given = spec.clone().with_grid(GridKind::Fitted);
        assert_eq!(
            for_model(&given, &spec.sampler(1000, 0).unwrap()).unwrap(),
            "fitted: given"
        );
        let ddpm = SamplerSpec::new(SamplerName::Ddpm);
        assert!(for_model(&ddpm, &ddpm.sampler(1000, 0).unwrap()).is_none());
    }

    #[test]
    fn a_large_mixture_is_not_fitted_by_default() {
        let k = CHEAP_FIT + 1;
        let m = Mixture::new(
            vec![1.0 / k as f64; k],
            (0..k).map(|i| vec![i as f64]).collect(),
            vec![0.1; k],
        )
        .unwrap();
        let c = choose(&SamplerSpec::new(SamplerName::Unipc).with_nfe(10), &m, 0);
        assert!(!fitted(&c));
        assert!(c.why.unwrap().contains("--grid fitted"));
    }
}
