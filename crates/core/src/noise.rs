//! A counter-based noise source (Philox4x32-10, Salmon et al. 2011, "Parallel random numbers:
//! as easy as 1, 2, 3").
//!
//! The noise for (seed, stream, step, sample row, coordinate) is a pure function of those five
//! numbers, so a sample's noise never depends on the batch it was drawn in, on the batch size,
//! or on the order in which batches run.

use std::ops::Range;

use burn::tensor::{Device, Tensor, TensorData};

/// What a draw is used for; each purpose gets its own independent stream of numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Drawing data points x_0 from a data distribution.
    Data = 1,
    /// Per-step noise of the forward process.
    Forward = 2,
    /// The starting noise of a reverse process (x_T ~ N(0, I)).
    Prior = 3,
    /// Per-step noise of a reverse sampler.
    Reverse = 4,
    /// Starting states and per-step noise of MCMC chains.
    Chain = 5,
    /// Uniform numbers for accept/reject decisions.
    Accept = 6,
    /// Random projections in metrics.
    Projection = 7,
    /// Random choice of a mixture component.
    Component = 8,
    /// The noise of a closed-form jump q(x_k | x_0).
    Jump = 10,
    /// Free for callers (training time steps, shuffles, ...).
    Other = 9,
}

const PHILOX_M0: u32 = 0xD251_1F53;
const PHILOX_M1: u32 = 0xCD9E_8D57;
const PHILOX_W0: u32 = 0x9E37_79B9;
const PHILOX_W1: u32 = 0xBB67_AE85;

/// Philox4x32 with 10 rounds: a bijection of the 128-bit counter under a 64-bit key.
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = counter;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k[0] = k[0].wrapping_add(PHILOX_W0);
            k[1] = k[1].wrapping_add(PHILOX_W1);
        }
        let p0 = u64::from(PHILOX_M0) * u64::from(c[0]);
        let p1 = u64::from(PHILOX_M1) * u64::from(c[2]);
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// The project's single source of randomness: a seed, and pure functions of counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoiseSource {
    seed: u64,
}

impl NoiseSource {
    /// A noise source for `seed`.
    pub fn new(seed: u64) -> Self {
        Self { seed }
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// 128 random bits for (stream, step, row, block) as two u64 words.
    fn block(&self, stream: Stream, step: u64, row: u64, block: u64) -> (u64, u64) {
        let counter = [
            row as u32,
            (row >> 32) as u32,
            step as u32,
            ((stream as u32) << 24) ^ (block as u32 & 0x00FF_FFFF) ^ (((step >> 32) as u32) << 16),
        ];
        let key = [self.seed as u32, (self.seed >> 32) as u32];
        let r = philox4x32_10(counter, key);
        (
            u64::from(r[0]) | (u64::from(r[1]) << 32),
            u64::from(r[2]) | (u64::from(r[3]) << 32),
        )
    }

    /// A uniform number in [0, 1) for (stream, step, row, coordinate j).
    pub fn uniform(&self, stream: Stream, step: u64, row: u64, j: u64) -> f64 {
        let (a, b) = self.block(stream, step, row, j / 2);
        let w = if j.is_multiple_of(2) { a } else { b };
        (w >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Two independent standard normals from one Philox block, by Box-Muller.
    fn normal_pair(&self, stream: Stream, step: u64, row: u64, block: u64) -> (f64, f64) {
        let (a, b) = self.block(stream, step, row, block);
        // u1 in (0, 1] so that ln(u1) is finite; u2 in [0, 1).
        let u1 = ((a >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64);
        let u2 = (b >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        let r = (-2.0 * u1.ln()).sqrt();
        let angle = std::f64::consts::TAU * u2;
        (r * angle.cos(), r * angle.sin())
    }

    /// A standard normal number for (stream, step, row, coordinate j); coordinates 2m and
    /// 2m+1 share a Box-Muller block.
    pub fn normal(&self, stream: Stream, step: u64, row: u64, j: u64) -> f64 {
        let (z0, z1) = self.normal_pair(stream, step, row, j / 2);
        if j.is_multiple_of(2) { z0 } else { z1 }
    }

    /// Standard normals for rows `rows` and `dim` coordinates, row-major.
    pub fn normals(&self, stream: Stream, step: u64, rows: Range<u64>, dim: usize) -> Vec<f64> {
        let mut out = Vec::with_capacity((rows.end - rows.start) as usize * dim);
        for row in rows {
            for block in 0..dim.div_ceil(2) {
                let (z0, z1) = self.normal_pair(stream, step, row, block as u64);
                out.push(z0);
                if 2 * block + 1 < dim {
                    out.push(z1);
                }
            }
        }
        out
    }

    /// Uniforms in [0, 1) for rows `rows`, one per row (coordinate 0).
    pub fn uniforms(&self, stream: Stream, step: u64, rows: Range<u64>) -> Vec<f64> {
        rows.map(|row| self.uniform(stream, step, row, 0)).collect()
    }

    /// A `[rows, dim]` tensor of standard normals.
    pub fn normal_tensor(
        &self,
        stream: Stream,
        step: u64,
        rows: Range<u64>,
        dim: usize,
        device: &Device,
    ) -> Tensor<2> {
        let n = (rows.end - rows.start) as usize;
        let values: Vec<f32> = self
            .normals(stream, step, rows, dim)
            .into_iter()
            .map(|v| v as f32)
            .collect();
        Tensor::from_data(TensorData::new(values, [n, dim]), device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known-answer vectors of the Random123 distribution (kat_vectors, philox4x32 10 rounds).
    #[test]
    fn philox_matches_random123_known_answers() {
        assert_eq!(
            philox4x32_10([0, 0, 0, 0], [0, 0]),
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0]
            ),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }

    #[test]
    fn a_row_does_not_depend_on_the_batch_it_is_drawn_in() {
        let src = NoiseSource::new(7);
        let all = src.normals(Stream::Prior, 3, 0..100, 3);
        let part = src.normals(Stream::Prior, 3, 40..70, 3);
        assert_eq!(&all[40 * 3..70 * 3], &part[..]);
        assert_eq!(all[5 * 3 + 2], src.normal(Stream::Prior, 3, 5, 2));
    }

    #[test]
    fn streams_steps_and_seeds_differ() {
        let a = NoiseSource::new(1).normal(Stream::Prior, 0, 0, 0);
        assert_ne!(a, NoiseSource::new(2).normal(Stream::Prior, 0, 0, 0));
        assert_ne!(a, NoiseSource::new(1).normal(Stream::Reverse, 0, 0, 0));
        assert_ne!(a, NoiseSource::new(1).normal(Stream::Prior, 1, 0, 0));
    }

    /// Mean, variance and fourth moment of 200,000 normals, each within 5 standard errors.
    #[test]
    fn normals_have_standard_moments() {
        let n = 200_000usize;
        let z = NoiseSource::new(42).normals(Stream::Other, 0, 0..(n as u64 / 2), 2);
        let nf = n as f64;
        let mean = z.iter().sum::<f64>() / nf;
        let m2 = z.iter().map(|v| v * v).sum::<f64>() / nf;
        let m4 = z.iter().map(|v| v.powi(4)).sum::<f64>() / nf;
        // Var(z) = 1, Var(z^2) = 2, Var(z^4) = 105 - 9 = 96.
        assert!(mean.abs() < 5.0 / nf.sqrt(), "mean {mean}");
        assert!((m2 - 1.0).abs() < 5.0 * (2.0 / nf).sqrt(), "m2 {m2}");
        assert!((m4 - 3.0).abs() < 5.0 * (96.0 / nf).sqrt(), "m4 {m4}");
        // Coordinates 0 and 1 share a Box-Muller block: they must be uncorrelated.
        let c = z.chunks(2).map(|p| p[0] * p[1]).sum::<f64>() / (nf / 2.0);
        assert!(c.abs() < 5.0 / (nf / 2.0).sqrt(), "corr {c}");
    }
}
