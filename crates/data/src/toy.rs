//! The seeds' toy data sets, drawn from the project's counter-based noise: row i of a draw is
//! the same whatever batch it is in.

use diffuse_core::{Mixture, NoiseSource, Stream};
use std::f64::consts::PI;

/// A named toy distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toy {
    /// scikit-learn's swiss roll (noise 1), coordinates (x, z) / 10 (seed 001).
    SwissRoll,
    /// Seed 003's spiral.
    Spiral,
    /// Seed 003's grid of 4 x 4 discs of radius 0.1.
    DiscGrid,
    /// Two interleaved half circles with noise 0.1 (scikit-learn's make_moons).
    Moons,
    /// A 4 x 4 checkerboard on [-4, 4]^2 (FFJORD).
    Checkerboard,
}

impl Toy {
    /// All names, for messages.
    pub const NAMES: &'static [&'static str] = &[
        "swissroll",
        "spiral",
        "discgrid",
        "mixture1d",
        "8gaussians",
        "moons",
        "checkerboard",
    ];

    /// The toy named `name`, if it is sampled (not analytic).
    pub fn from_name(name: &str) -> Option<Toy> {
        Some(match name {
            "swissroll" => Toy::SwissRoll,
            "spiral" => Toy::Spiral,
            "discgrid" => Toy::DiscGrid,
            "moons" => Toy::Moons,
            "checkerboard" => Toy::Checkerboard,
            _ => return None,
        })
    }

    /// Draws rows `rows` (global indices), row-major `[n, 2]`.
    pub fn sample(&self, noise: &NoiseSource, rows: std::ops::Range<u64>) -> Vec<f64> {
        let mut out = Vec::with_capacity(2 * (rows.end - rows.start) as usize);
        for row in rows {
            let u = |j: u64| noise.uniform(Stream::Data, 0, row, j);
            let z = |j: u64| noise.normal(Stream::Data, 1, row, j);
            let p = match self {
                Toy::SwissRoll => {
                    let t = 1.5 * PI * (1.0 + 2.0 * u(0));
                    [(t * t.cos() + z(0)) / 10.0, (t * t.sin() + z(1)) / 10.0]
                }
                Toy::Spiral => {
                    let v = u(0);
                    let rho = v * 0.65 + 0.25 + u(1) * 0.15;
                    let theta = v * PI * 3.0;
                    [theta.cos() * rho, theta.sin() * rho]
                }
                Toy::DiscGrid => {
                    let a = u(0) * 2.0 * PI;
                    let b = u(1).sqrt() * 0.1;
                    let cell = |v: f64| ((v * 4.0).floor().min(3.0) - 1.5) / 1.5;
                    [a.cos() * b + cell(u(2)), a.sin() * b + cell(u(3))]
                }
                Toy::Moons => {
                    let theta = PI * u(0);
                    let p = if u(1) < 0.5 {
                        [theta.cos(), theta.sin()]
                    } else {
                        [1.0 - theta.cos(), 1.0 - theta.sin() - 0.5]
                    };
                    [p[0] + 0.1 * z(0), p[1] + 0.1 * z(1)]
                }
                Toy::Checkerboard => {
                    let x1 = u(0) * 4.0 - 2.0;
                    let x2 = u(1) - if u(2) < 0.5 { 0.0 } else { 2.0 };
                    [2.0 * x1, 2.0 * (x2 + x1.floor().rem_euclid(2.0))]
                }
            };
            out.extend(p);
        }
        out
    }
}

/// Seed 004's four points {-15, -5, 1, 15} (the notebook's `mu_0`).
pub fn mixture1d() -> Mixture {
    Mixture::deltas(&[-15.0, -5.0, 1.0, 15.0]).expect("four finite points form a mixture")
}

/// Eight Gaussians on a circle of radius 2 sqrt 2, each of std sqrt 2 / 4 (FFJORD's scale).
pub fn eight_gaussians() -> Mixture {
    let r = 2.0 * 2f64.sqrt();
    let means = (0..8).map(|k| {
        let a = k as f64 * PI / 4.0;
        vec![r * a.cos(), r * a.sin()]
    });
    Mixture::new(vec![0.125; 8], means.collect(), vec![2f64.sqrt() / 4.0; 8])
        .expect("eight equal components form a mixture")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toys_stay_in_their_shapes() {
        let noise = NoiseSource::new(1);
        let spiral = Toy::Spiral.sample(&noise, 0..2000);
        for p in spiral.chunks(2) {
            let r = (p[0] * p[0] + p[1] * p[1]).sqrt();
            assert!((0.25..=1.05).contains(&r), "spiral radius {r}");
        }
        let grid = Toy::DiscGrid.sample(&noise, 0..2000);
        for p in grid.chunks(2) {
            let near = |v: f64| {
                [-1.0, -1.0 / 3.0, 1.0 / 3.0, 1.0]
                    .iter()
                    .map(|c| (v - c).abs())
                    .fold(9.0, f64::min)
            };
            assert!(near(p[0]).hypot(0.0) <= 0.1 + 1e-12 && near(p[1]) <= 0.1 + 1e-12);
        }
        let board = Toy::Checkerboard.sample(&noise, 0..2000);
        for p in board.chunks(2) {
            // Cells of side 2 alternate: (floor(x/2) + floor(y/2)) is even on the filled ones.
            let parity = ((p[0] / 2.0).floor() + (p[1] / 2.0).floor()).rem_euclid(2.0);
            assert_eq!(parity, 0.0, "{p:?}");
        }
    }

    #[test]
    fn a_row_is_the_same_in_any_batch() {
        let noise = NoiseSource::new(2);
        for toy in [Toy::SwissRoll, Toy::Moons] {
            let all = toy.sample(&noise, 0..50);
            assert_eq!(&all[20..], &toy.sample(&noise, 10..50)[..]);
        }
    }
}
