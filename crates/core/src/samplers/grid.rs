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
#[derive(Debug, Clone, Copy, PartialEq)]
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
}

impl GridKind {
    /// Parses `karras`, `karras:RHO`, `exponential`, `logsnr`, `uniform`, `leading`, `trailing`, `linspace`.
    pub fn parse(spec: &str) -> Result<Self> {
        Ok(match spec {
            "karras" => GridKind::Karras { rho: 7.0 },
            "exponential" | "logsnr" => GridKind::Exponential,
            "uniform" => GridKind::UniformTime,
            "leading" => GridKind::Timesteps(Spacing::Leading),
            "trailing" => GridKind::Timesteps(Spacing::Trailing),
            "linspace" => GridKind::Timesteps(Spacing::Linspace),
            _ => match spec.strip_prefix("karras:").map(str::parse::<f64>) {
                Some(Ok(rho)) if rho > 0.0 => GridKind::Karras { rho },
                _ => {
                    return invalid(format!(
                        "unknown grid '{spec}' (expected karras[:RHO], exponential, logsnr, uniform, leading, trailing or linspace)"
                    ));
                }
            },
        })
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
pub fn sigma_grid(
    kind: GridKind,
    schedule: &Schedule,
    from: usize,
    to: usize,
    n: usize,
) -> Result<Vec<f64>> {
    if n == 0 {
        return invalid("a grid needs at least one step (steps = 0)");
    }
    if to >= from || from > schedule.steps() {
        return invalid(format!("cannot make a grid from step {from} to step {to}"));
    }
    let sigma_at = |t: f64| (1.0 / schedule.alpha_bar_at(t) - 1.0).max(0.0).sqrt();
    // The interior points run from sigma(from) to sigma_low; a run to 0 then appends 0.
    let (low_t, points) = if to == 0 {
        (1.0, n)
    } else {
        (to as f64, n + 1)
    };
    let (hi, lo) = (sigma_at(from as f64), sigma_at(low_t));
    let mut sigmas: Vec<f64> = match kind {
        GridKind::Karras { rho } => {
            let (a, b) = (hi.powf(1.0 / rho), lo.powf(1.0 / rho));
            ramp(points).map(|r| (a + r * (b - a)).powf(rho)).collect()
        }
        GridKind::Exponential => ramp(points)
            .map(|r| (hi.ln() + r * (lo.ln() - hi.ln())).exp())
            .collect(),
        GridKind::UniformTime => {
            return Ok(ramp(n + 1)
                .map(|r| sigma_at(from as f64 + r * (to as f64 - from as f64)))
                .collect());
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
            let g = sigma_grid(kind, &s, 1000, 0, 10).unwrap();
            assert_eq!(g.len(), 11, "{kind:?}");
            assert!(
                (g[0] - s.sigma(1000)).abs() < 1e-9 * s.sigma(1000),
                "{kind:?}"
            );
            assert_eq!(*g.last().unwrap(), 0.0);
            assert!(g.windows(2).all(|w| w[1] < w[0]), "{kind:?}: {g:?}");
        }
        // Karras rho = 7 between sigma_max and sigma_min (k-diffusion's get_sigmas_karras).
        let g = sigma_grid(GridKind::Karras { rho: 7.0 }, &s, 1000, 0, 4).unwrap();
        let (a, b) = (s.sigma(1000).powf(1.0 / 7.0), s.sigma(1).powf(1.0 / 7.0));
        assert!((g[1] - (a + (b - a) / 3.0).powi(7)).abs() < 1e-9 * g[1]);
        assert!((g[3] - s.sigma(1)).abs() < 1e-12);
        // Partial runs end at sigma(to).
        let g = sigma_grid(GridKind::Exponential, &s, 800, 200, 5).unwrap();
        assert_eq!(g.len(), 6);
        assert!((g[5] - s.sigma(200)).abs() < 1e-9 * g[5]);
        assert!(GridKind::parse("wiggly").is_err());
    }
}
