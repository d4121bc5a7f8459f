//! Time and noise-level grids: the model's own timesteps (diffusers' leading, trailing and
//! linspace spacings), Karras et al.'s rho-schedule, and grids uniform in log sigma.

use crate::error::{Result, invalid};
use crate::schedule::Schedule;

/// How diffusers spaces a model's own timesteps (`timestep_spacing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spacing {
    /// `(arange(n) * (T // n)).round()[::-1]` (plus `steps_offset`, 0 here).
    Leading,
    /// `round(arange(T, 0, -T / n)) - 1`.
    Trailing,
    /// `linspace(0, T - 1, n).round()[::-1]`.
    Linspace,
}

/// A family of sigma grids.
#[derive(Debug, Clone, PartialEq)]
pub enum GridKind {
    /// The schedule's own steps, spaced as diffusers does.
    Timesteps(Spacing),
    /// Karras et al. (2022) eq. 5: sigma_i = (max^(1/rho) + i/(n-1) (min^(1/rho) - max^(1/rho)))^rho.
    Karras {
        /// rho (7 in EDM).
        rho: f64,
    },
    /// Uniform in log sigma; the same as uniform in log-SNR = -2 ln sigma.
    Exponential,
    /// Uniform in the continuous time t of the schedule.
    UniformTime,
    /// The levels given, one per step, decreasing, for a run to 0 (which appends 0): for
    /// instance a grid fitted once and reused.
    Given(Vec<f64>),
    /// Levels fitted to the denoiser before sampling ([`super::fit::fit_grid`], through
    /// [`super::fix_grid`], which turns this into [`GridKind::Given`]).
    Fitted,
}

impl GridKind {
    /// Parses `karras`, `karras:RHO`, `exponential`, `logsnr`, `uniform`, `leading`, `trailing`,
    /// `linspace`, `fitted` and `sigmas:S1,S2,...`.
    pub fn parse(spec: &str) -> Result<Self> {
        if let Some(list) = spec.strip_prefix("sigmas:") {
            let levels: std::result::Result<Vec<f64>, _> =
                list.split(',').map(|v| v.trim().parse::<f64>()).collect();
            return match levels {
                Ok(levels) => {
                    check_levels(&levels)?;
                    Ok(GridKind::Given(levels))
                }
                Err(_) => invalid(format!(
                    "grid '{spec}': expected sigmas:S1,S2,... with decreasing positive numbers"
                )),
            };
        }
        Ok(match spec {
            "fitted" => GridKind::Fitted,
            "karras" => GridKind::Karras { rho: 7.0 },
            "exponential" | "logsnr" => GridKind::Exponential,
            "uniform" => GridKind::UniformTime,
            "leading" => GridKind::Timesteps(Spacing::Leading),
            "trailing" => GridKind::Timesteps(Spacing::Trailing),
            "linspace" => GridKind::Timesteps(Spacing::Linspace),
            _ => match spec.strip_prefix("karras:").map(str::parse::<f64>) {
                Some(Ok(rho)) if rho > 0.0 && rho <= 100.0 => GridKind::Karras { rho },
                Some(Ok(_)) => {
                    return invalid(format!(
                        "grid '{spec}': rho must be in (0, 100] (Karras et al. use 7)"
                    ));
                }
                _ => {
                    return invalid(format!(
                        "unknown grid '{spec}' (expected karras[:RHO], exponential, logsnr, uniform, leading, trailing, linspace, fitted or sigmas:S1,S2,...)"
                    ));
                }
            },
        })
    }
}

/// Where a Karras, exponential or uniform-time grid starts and (on a run to 0) stops, when not
/// at the schedule's own sigma(from) and sigma(1). As in EDM (sigma_max = 80, sigma_min = 0.002
/// for images), sigma_max should be large against the data's spread: the run starts from the
/// prior as though it were the law at sigma_max. With few steps, a range fitted to the data
/// matters more than the sampler (README, "Few steps").
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SigmaRange {
    /// The first level, if below sigma(from).
    pub max: Option<f64>,
    /// The last level before 0 on a run to step 0, if above sigma(1).
    pub min: Option<f64>,
}

impl SigmaRange {
    /// The schedule's own range.
    pub const FULL: SigmaRange = SigmaRange {
        max: None,
        min: None,
    };

    fn check(&self) -> Result<()> {
        for (name, v) in [("sigma_max", self.max), ("sigma_min", self.min)] {
            if let Some(v) = v
                && !(v.is_finite() && v > 0.0)
            {
                return invalid(format!("{name} must be a positive number (got {v})"));
            }
        }
        if let (Some(hi), Some(lo)) = (self.max, self.min)
            && lo >= hi
        {
            return invalid(format!("sigma_min {lo} must be below sigma_max {hi}"));
        }
        Ok(())
    }
}

/// diffusers' inference timesteps (0-based, decreasing) for `n` steps of a `t`-step schedule.
pub fn diffusers_timesteps(spacing: Spacing, t: usize, n: usize) -> Vec<usize> {
    match spacing {
        Spacing::Linspace => crate::schedule::linspace(0.0, (t - 1) as f64, n)
            .into_iter()
            .rev()
            .map(|v| v.round() as usize)
            .collect(),
        Spacing::Leading => {
            let ratio = t / n;
            (0..n).rev().map(|i| i * ratio).collect()
        }
        Spacing::Trailing => {
            let ratio = t as f64 / n as f64;
            let mut out = vec![];
            let mut v = t as f64;
            while v > 0.0 {
                out.push((v.round() as usize).saturating_sub(1));
                v -= ratio;
            }
            out
        }
    }
}

/// The sigma grid of `n` steps from whole step `from` down to step `to` (its last entry is 0
/// when `to` = 0, as k-diffusion appends). Model timesteps use the schedule's steps
/// (diffusers timestep tau is this crate's step tau + 1).
/// `range` narrows Karras, exponential and uniform-time grids; it is an error with timesteps.
pub fn sigma_grid(
    kind: &GridKind,
    schedule: &Schedule,
    from: usize,
    to: usize,
    n: usize,
    range: SigmaRange,
) -> Result<Vec<f64>> {
    range.check()?;
    if matches!(kind, GridKind::Timesteps(_)) && range != SigmaRange::FULL {
        return invalid(
            "a sigma range applies to karras, exponential and uniform grids, not to the model's own timesteps",
        );
    }
    if n == 0 {
        return invalid("a grid needs at least one step (steps = 0)");
    }
    if to >= from || from > schedule.steps() {
        return invalid(format!("cannot make a grid from step {from} to step {to}"));
    }
    match kind {
        GridKind::Given(levels) => return given(levels, schedule, from, to, n, range),
        GridKind::Fitted => {
            return invalid("a fitted grid is fitted before sampling (samplers::fix_grid)");
        }
        _ => {}
    }
    let sigma_at = |t: f64| (1.0 / schedule.alpha_bar_at(t) - 1.0).max(0.0).sqrt();
    // The interior points run from sigma(from) to sigma_low; a run to 0 then appends 0.
    let (low_t, points) = if to == 0 {
        (1.0, n)
    } else {
        (to as f64, n + 1)
    };
    let mut hi = sigma_at(from as f64);
    let mut lo = sigma_at(low_t);
    if let Some(max) = range.max {
        hi = hi.min(max);
    }
    if let (Some(min), 0) = (range.min, to) {
        lo = lo.max(min);
    }
    if lo >= hi {
        return invalid(format!(
            "the grid would start at sigma {hi} and stop at {lo}: sigma_max must be above sigma_min"
        ));
    }
    let mut sigmas: Vec<f64> = match *kind {
        GridKind::Given(_) | GridKind::Fitted => unreachable!("handled above"),
        GridKind::Karras { rho } => {
            let (a, b) = (hi.powf(1.0 / rho), lo.powf(1.0 / rho));
            ramp(points).map(|r| (a + r * (b - a)).powf(rho)).collect()
        }
        GridKind::Exponential => ramp(points)
            .map(|r| (hi.ln() + r * (lo.ln() - hi.ln())).exp())
            .collect(),
        GridKind::UniformTime if range == SigmaRange::FULL => {
            return Ok(ramp(n + 1)
                .map(|r| sigma_at(from as f64 + r * (to as f64 - from as f64)))
                .collect());
        }
        GridKind::UniformTime => {
            let (t_hi, t_lo) = (schedule.t_at_sigma(hi), schedule.t_at_sigma(lo));
            ramp(points)
                .map(|r| sigma_at(t_hi + r * (t_lo - t_hi)))
                .collect()
        }
        GridKind::Timesteps(spacing) => {
            let span = from - to;
            if n > span {
                return invalid(format!(
                    "{n} steps are more than the {span} steps from {from} to {to}"
                ));
            }
            let mut s: Vec<f64> = diffusers_timesteps(spacing, span, n)
                .into_iter()
                .map(|tau| sigma_at((to + tau + 1) as f64))
                .collect();
            if to > 0 {
                s.push(sigma_at(to as f64));
            }
            s
        }
    };
    if to == 0 {
        sigmas.push(0.0);
    }
    Ok(sigmas)
}

/// Given levels: checked against the steps asked for and the schedule's top level.
fn given(
    levels: &[f64],
    schedule: &Schedule,
    from: usize,
    to: usize,
    n: usize,
    range: SigmaRange,
) -> Result<Vec<f64>> {
    check_levels(levels)?;
    if to != 0 || range != SigmaRange::FULL {
        return invalid("a grid of given levels runs to 0 and takes no sigma range");
    }
    if levels.len() != n {
        return invalid(format!(
            "the grid gives {} levels but the sampler asks for {n} steps",
            levels.len()
        ));
    }
    let top = schedule.sigma(from);
    if levels[0] > top * (1.0 + 1e-9) {
        return invalid(format!(
            "the grid starts at sigma {} above the schedule's sigma {top} at step {from}",
            levels[0]
        ));
    }
    Ok(levels.iter().copied().chain([0.0]).collect())
}

fn check_levels(levels: &[f64]) -> Result<()> {
    let ok = !levels.is_empty()
        && levels.iter().all(|s| s.is_finite() && *s > 0.0)
        && levels.windows(2).all(|w| w[1] < w[0]);
    if ok {
        Ok(())
    } else {
        invalid(format!(
            "grid levels must be positive and decreasing (got {levels:?})"
        ))
    }
}

fn ramp(points: usize) -> impl Iterator<Item = f64> {
    (0..points).map(move |i| {
        if points == 1 {
            0.0
        } else {
            i as f64 / (points - 1) as f64
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// diffusers' set_timesteps for T = 1000, n = 10 (DDIMScheduler, steps_offset = 0).
    #[test]
    fn timesteps_match_diffusers() {
        assert_eq!(
            diffusers_timesteps(Spacing::Leading, 1000, 10),
            vec![900, 800, 700, 600, 500, 400, 300, 200, 100, 0]
        );
        assert_eq!(
            diffusers_timesteps(Spacing::Trailing, 1000, 10),
            vec![999, 899, 799, 699, 599, 499, 399, 299, 199, 99]
        );
        assert_eq!(
            diffusers_timesteps(Spacing::Linspace, 1000, 10),
            vec![999, 888, 777, 666, 555, 444, 333, 222, 111, 0]
        );
    }

    #[test]
    fn grids_run_from_sigma_max_down() {
        let s = Schedule::scaled_linear(0.00085, 0.012, 1000).unwrap();
        for kind in [
            GridKind::Karras { rho: 7.0 },
            GridKind::Exponential,
            GridKind::UniformTime,
            GridKind::Timesteps(Spacing::Trailing),
        ] {
            let g = sigma_grid(&kind, &s, 1000, 0, 10, SigmaRange::FULL).unwrap();
            assert_eq!(g.len(), 11, "{kind:?}");
            assert!(
                (g[0] - s.sigma(1000)).abs() < 1e-9 * s.sigma(1000),
                "{kind:?}"
            );
            assert_eq!(*g.last().unwrap(), 0.0);
            assert!(g.windows(2).all(|w| w[1] < w[0]), "{kind:?}: {g:?}");
        }
        // Karras rho = 7 between sigma_max and sigma_min (k-diffusion's get_sigmas_karras).
        let g = sigma_grid(
            &GridKind::Karras { rho: 7.0 },
            &s,
            1000,
            0,
            4,
            SigmaRange::FULL,
        )
        .unwrap();
        let (a, b) = (s.sigma(1000).powf(1.0 / 7.0), s.sigma(1).powf(1.0 / 7.0));
        assert!((g[1] - (a + (b - a) / 3.0).powi(7)).abs() < 1e-9 * g[1]);
        assert!((g[3] - s.sigma(1)).abs() < 1e-12);
        // Partial runs end at sigma(to).
        let g = sigma_grid(&GridKind::Exponential, &s, 800, 200, 5, SigmaRange::FULL).unwrap();
        assert_eq!(g.len(), 6);
        assert!((g[5] - s.sigma(200)).abs() < 1e-9 * g[5]);
        assert!(GridKind::parse("wiggly").is_err());
    }

    #[test]
    fn a_range_narrows_the_grid_to_sigma_max_and_sigma_min() {
        let s = Schedule::linear(1e-4, 0.02, 1000).unwrap();
        let range = SigmaRange {
            max: Some(20.0),
            min: Some(0.05),
        };
        for kind in [
            GridKind::Karras { rho: 7.0 },
            GridKind::Exponential,
            GridKind::UniformTime,
        ] {
            let g = sigma_grid(&kind, &s, 1000, 0, 10, range).unwrap();
            assert_eq!(g.len(), 11, "{kind:?}");
            assert!(
                (g[0] - 20.0).abs() < 1e-9 && (g[9] - 0.05).abs() < 1e-9,
                "{kind:?}: {g:?}"
            );
            assert_eq!(g[10], 0.0);
        }
        // Exponential: equal ratios between neighbours.
        let g = sigma_grid(&GridKind::Exponential, &s, 1000, 0, 10, range).unwrap();
        let q = (0.05f64 / 20.0).powf(1.0 / 9.0);
        assert!(
            g.windows(2)
                .take(9)
                .all(|w| (w[1] / w[0] - q).abs() < 1e-12)
        );
        // A sigma_max above the start changes nothing; bad ranges are errors.
        let wide = SigmaRange {
            max: Some(1e6),
            min: None,
        };
        assert_eq!(
            sigma_grid(&GridKind::Exponential, &s, 1000, 0, 10, wide).unwrap(),
            sigma_grid(&GridKind::Exponential, &s, 1000, 0, 10, SigmaRange::FULL).unwrap()
        );
        for bad in [
            SigmaRange {
                max: Some(0.01),
                min: Some(0.05),
            },
            SigmaRange {
                max: Some(f64::NAN),
                min: None,
            },
            SigmaRange {
                max: None,
                min: Some(-1.0),
            },
        ] {
            assert!(
                sigma_grid(&GridKind::Exponential, &s, 1000, 0, 10, bad).is_err(),
                "{bad:?}"
            );
        }
        assert!(
            sigma_grid(
                &GridKind::Timesteps(Spacing::Trailing),
                &s,
                1000,
                0,
                10,
                range
            )
            .is_err()
        );
    }

    #[test]
    fn given_levels_are_parsed_checked_and_end_at_zero() {
        let s = Schedule::linear(1e-4, 0.02, 1000).unwrap();
        let kind = GridKind::parse("sigmas:10, 1,0.1").unwrap();
        assert_eq!(kind, GridKind::Given(vec![10.0, 1.0, 0.1]));
        assert_eq!(
            sigma_grid(&kind, &s, 1000, 0, 3, SigmaRange::FULL).unwrap(),
            vec![10.0, 1.0, 0.1, 0.0]
        );
        assert_eq!(GridKind::parse("fitted").unwrap(), GridKind::Fitted);
        for bad in [
            "sigmas:1,10",
            "sigmas:1,1",
            "sigmas:1,-0.1",
            "sigmas:x",
            "sigmas:",
            "sigmas:1,nan",
        ] {
            assert!(GridKind::parse(bad).is_err(), "{bad}");
        }
        // The steps must match the levels; the run must go to 0, start no higher than the
        // schedule, and take no range.
        assert!(sigma_grid(&kind, &s, 1000, 0, 4, SigmaRange::FULL).is_err());
        assert!(sigma_grid(&kind, &s, 1000, 10, 3, SigmaRange::FULL).is_err());
        assert!(sigma_grid(&kind, &s, 10, 0, 3, SigmaRange::FULL).is_err());
        let range = SigmaRange {
            max: Some(5.0),
            min: None,
        };
        assert!(sigma_grid(&kind, &s, 1000, 0, 3, range).is_err());
        // A fitted grid is fitted by fix_grid first.
        assert!(sigma_grid(&GridKind::Fitted, &s, 1000, 0, 3, SigmaRange::FULL).is_err());
    }
}
