//! Multi-head attention for inference on the CPU: softmax(q k^T / sqrt(d) + mask) v for every
//! head, read from and written to the `[batch, tokens, heads * d]` layout of the projections
//! around it. burn-flex's kernel (the fallback) runs its softmax one score at a time through
//! the C library's `expf` with the masks tested per score, and re-scales its accumulator for
//! every tile of 64 keys: `perf` put 30% of a Stable Diffusion UNet step there. Here each task
//! takes a block of query rows of one head, computes the block's whole score rows with one
//! gemm, the softmax with [`crate::act::exp_neg`] (AVX2 or AVX-512 wide, its sums always in
//! eight lanes, so the same bits on either), and the output with a second gemm of depth `s` (no
//! re-scaling: the rows fit in the L2 cache).

use burn::backend::Flex;
use burn::tensor::module::attention as burn_attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, DType, Tensor};
use rayon::prelude::*;

use super::Out;
use crate::act::exp_neg;

/// The sizes of one attention call: `b` batches of `l` queries over `s` keys, `h` heads of
/// `dk` query/key and `dv` value features, keys after query `i + s - l` hidden when `causal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heads {
    pub b: usize,
    pub l: usize,
    pub s: usize,
    pub h: usize,
    pub dk: usize,
    pub dv: usize,
    pub causal: bool,
}

/// Score elements a task keeps (1 MB of f32): the rows of a block stay in the L2 cache
/// between the two gemms.
const SCORE_BUDGET: usize = 256 * 1024;

/// `q` `[B, L, H dk]`, `k` `[B, S, H dk]`, `v` `[B, S, H dv]` -> `[B, L, H dv]`: each head's
/// softmax(q k^T / sqrt(dk)) v, with key `j` of batch `b` left out where `pad[b, j]` is true,
/// and the keys after `i + S - L` left out of query `i` when `causal` (as burn's `attention`);
/// a query that sees no key gets zeros, as burn gives it.
pub fn attention(
    q: Tensor<3>,
    k: Tensor<3>,
    v: Tensor<3>,
    heads: usize,
    causal: bool,
    pad: Option<&Tensor<2, Bool>>,
) -> Tensor<3> {
    let device = q.device();
    let ([b, l, dq], [_, s, dkv], [_, _, dvv]) = (q.dims(), k.dims(), v.dims());
    let fast = super::fast_path(&device, q.dtype())
        && k.dtype() == DType::F32
        && v.dtype() == DType::F32
        && heads > 0
        && dq.is_multiple_of(heads)
        && dvv.is_multiple_of(heads)
        && dq == dkv
        && k.dims()[0] == b
        && v.dims()[..2] == [b, s]
        && pad.is_none_or(|p| p.dims() == [b, s])
        && [b, l, s, dq, dvv].iter().all(|&n| n > 0);
    if !fast {
        return reference(q, k, v, heads, causal, pad);
    }
    let sizes = Heads {
        b,
        l,
        s,
        h: heads,
        dk: dq / heads,
        dv: dvv / heads,
        causal,
    };
    let flex = |t: Tensor<3>| match t.try_into_primitive::<Flex>() {
        Ok(p) => p,
        Err(_) => unreachable!("fast_path: a tensor on the inference CPU device is a Flex tensor"),
    };
    let pad: Option<Vec<bool>> = pad.map(|p| p.clone().into_data().iter::<bool>().collect());
    let (q, k, v) = (flex(q), flex(k), flex(v));
    let out = attention_f32(
        &super::flex_f32(&q),
        &super::flex_f32(&k),
        &super::flex_f32(&v),
        pad.as_deref(),
        &sizes,
    );
    Tensor::from_primitive::<Flex>(super::flex_from(out, [b, l, dvv]))
}

/// burn's own attention on the same layout: the heads split out, `module::attention`, merged
/// back.
pub fn reference(
    q: Tensor<3>,
    k: Tensor<3>,
    v: Tensor<3>,
    heads: usize,
    causal: bool,
    pad: Option<&Tensor<2, Bool>>,
) -> Tensor<3> {
    let ([b, l, _], [_, s, _], [_, _, dv]) = (q.dims(), k.dims(), v.dims());
    let split = |t: Tensor<3>| {
        let [b, n, d] = t.dims();
        t.reshape([b, n, heads, d / heads]).swap_dims(1, 2)
    };
    let options = AttentionModuleOptions {
        scale: None,
        softcap: None,
        is_causal: causal,
    };
    let mask = pad.map(|p| p.clone().reshape([b, 1, 1, s]).expand([b, heads, l, s]));
    let a = burn_attention(split(q), split(k), split(v), mask, None, options);
    a.swap_dims(1, 2).reshape([b, l, dv])
}

/// The kernel on row-major slices in the layout of [`attention`]; `pad` is `[b, s]`. Panics if
/// the slices do not match `n` (the callers take the sizes from the tensors themselves).
pub fn attention_f32(q: &[f32], k: &[f32], v: &[f32], pad: Option<&[bool]>, n: &Heads) -> Vec<f32> {
    let Heads {
        b,
        l,
        s,
        h,
        dk,
        dv,
        causal,
    } = *n;
    let (qw, vw) = (h * dk, h * dv);
    assert_eq!(q.len(), b * l * qw, "attention: queries");
    assert_eq!(k.len(), b * s * qw, "attention: keys");
    assert_eq!(v.len(), b * s * vw, "attention: values");
    assert!(
        pad.is_none_or(|p| p.len() == b * s),
        "attention: padding mask"
    );
    let mut out = vec![0f32; b * l * vw];
    let rows = (SCORE_BUDGET / s).clamp(8, 256).min(l);
    let blocks = l.div_ceil(rows);
    let scale = 1.0 / (dk as f32).sqrt();
    let dst = Out(out.as_mut_ptr());
    (0..b * h * blocks)
        .into_par_iter()
        .for_each_init(Vec::new, |scores: &mut Vec<f32>, task| {
            let (bh, blk) = (task / blocks, task % blocks);
            let (bi, hi) = (bh / h, bh % h);
            let i0 = blk * rows;
            let m = rows.min(l - i0);
            scores.resize(m * s, 0.0);
            // S = scale Q K^T: Q's rows at stride qw, K^T read from K's rows (column stride qw).
            // SAFETY: the pointers and strides stay inside q, k and scores (sizes asserted above).
            unsafe {
                gemm::gemm(
                    m,
                    s,
                    dk,
                    scores.as_mut_ptr(),
                    1,
                    s as isize,
                    false,
                    q.as_ptr().add((bi * l + i0) * qw + hi * dk),
                    1,
                    qw as isize,
                    k.as_ptr().add(bi * s * qw + hi * dk),
                    qw as isize,
                    1,
                    0.0,
                    scale,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
            let key_pad = pad.map(|p| &p[bi * s..(bi + 1) * s]);
            let mut inv = [0f32; 256];
            for (r, row) in scores.chunks_exact_mut(s).enumerate() {
                // Keys 0..seen are visible to query i (causal: j <= i + s - l).
                let seen = if causal {
                    (i0 + r + 1 + s).saturating_sub(l).min(s)
                } else {
                    s
                };
                inv[r] = softmax_row(row, seen, key_pad);
            }
            // O = P V, then each row divided by its sum (0 for a query that sees no key).
            // SAFETY: as above; the output rows of this head and block belong to this task.
            unsafe {
                let o = dst.at((bi * l + i0) * vw + hi * dv);
                gemm::gemm(
                    m,
                    dv,
                    s,
                    o,
                    1,
                    vw as isize,
                    false,
                    scores.as_ptr(),
                    1,
                    s as isize,
                    v.as_ptr().add(bi * s * vw + hi * dv),
                    1,
                    vw as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
                for (r, &c) in inv[..m].iter().enumerate() {
                    let row = std::slice::from_raw_parts_mut(o.add(r * vw), dv);
                    row.iter_mut().for_each(|e| *e *= c);
                }
            }
        });
    out
}

/// The unnormalised softmax of one score row in place, exp(x_j - max) for the first `seen`
/// keys not in `pad`, zeros elsewhere; returns 1 / their sum (0 when no key is seen).
fn softmax_row(row: &mut [f32], seen: usize, pad: Option<&[bool]>) -> f32 {
    row[seen..].fill(0.0);
    let row = &mut row[..seen];
    if let Some(p) = pad {
        for (x, &hidden) in row.iter_mut().zip(p) {
            if hidden {
                *x = f32::NEG_INFINITY;
            }
        }
    }
    super::isa::widest(
        #[inline(always)]
        || exp_sum(row),
    )
}

/// exp(x - max x) in place (0 for -inf) and 1 / the sum, summed in eight lanes (the same
/// operations in the same order whatever the vector width, so the same bits on every CPU).
#[inline(always)]
fn exp_sum(row: &mut [f32]) -> f32 {
    let top = row.iter().fold(f32::NEG_INFINITY, |a, &x| a.max(x));
    if top == f32::NEG_INFINITY {
        row.fill(0.0);
        return 0.0;
    }
    let mut lanes = [0f32; 8];
    let mut chunks = row.chunks_exact_mut(8);
    for c in &mut chunks {
        for (x, acc) in c.iter_mut().zip(&mut lanes) {
            let e = exp_neg(top - *x);
            *x = if *x == f32::NEG_INFINITY { 0.0 } else { e };
            *acc += *x;
        }
    }
    for (x, acc) in chunks.into_remainder().iter_mut().zip(&mut lanes) {
        let e = exp_neg(top - *x);
        *x = if *x == f32::NEG_INFINITY { 0.0 } else { e };
        *acc += *x;
    }
    let sum = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5]))
        + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
    1.0 / sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, TensorData};

    fn values(t: Tensor<3>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_to_vec().unwrap()
    }

    /// The kernel against burn's attention on odd shapes: batch 1 and 2, one query and one key,
    /// prime sizes, head widths that are not multiples of the SIMD width, values wider than
    /// keys, query blocks that split (300 rows over 5 keys is two blocks of 256), the causal
    /// mask with fewer queries than keys, and padding that hides every key of one batch.
    #[test]
    fn matches_burns_attention_on_odd_shapes() {
        let device = diffuse_core::device::cpu();
        // b, l, s, h, dk, dv, causal, pad
        type Case = (usize, usize, usize, usize, usize, usize, bool, bool);
        let cases: &[Case] = &[
            (1, 1, 1, 1, 1, 1, false, false),
            (2, 7, 13, 3, 5, 5, false, false),
            (1, 300, 5, 2, 8, 3, false, false),
            (2, 13, 13, 1, 17, 17, true, false),
            (1, 5, 11, 2, 4, 4, true, false),
            (2, 9, 77, 3, 7, 7, true, true),
            (2, 6, 31, 2, 9, 9, false, true),
            (1, 3, 1100, 1, 40, 40, false, false),
        ];
        for &(b, l, s, h, dk, dv, causal, padded) in cases {
            let draw = |n: usize, d: usize| {
                Tensor::<3>::random([b, n, d], Distribution::Uniform(-2.0, 2.0), &device)
            };
            let (q, k, v) = (draw(l, h * dk), draw(s, h * dk), draw(s, h * dv));
            // Batch 0 hides its keys 1 and 4 (when there are that many), batch 1 hides all.
            let pad: Vec<bool> = (0..b * s)
                .map(|i| if i < s { i == 1 || i == 4 } else { true })
                .collect();
            let pad = padded.then(|| {
                Tensor::<2, Bool>::from_data(TensorData::new(pad.clone(), [b, s]), &device)
            });
            let want = values(reference(
                q.clone(),
                k.clone(),
                v.clone(),
                h,
                causal,
                pad.as_ref(),
            ));
            let got = values(attention(q, k, v, h, causal, pad.as_ref()));
            assert_eq!(got.len(), want.len());
            // Round-off of both, as a random walk (sqrt of the terms; the worst case would
            // hide a missed key among 1100): a score's dot product (dk terms of |q k| <= 4,
            // times the scale 1 / sqrt(dk): 4 eps) moves each weight by twice that; exp adds 4 ulp,
            // the sum over s keys and the output's dot product of s terms sqrt(s) eps each;
            // outputs are averages of values within 2; both sides err, and 2 for the tail.
            let eps = f32::EPSILON;
            let score = 4.0 * eps;
            let tol = 2.0 * 2.0 * 2.0 * (2.0 * score + 8.0 * eps + 2.0 * (s as f32).sqrt() * eps);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= tol,
                    "case {b}x{l}x{s} h{h} dk{dk} dv{dv} causal {causal} pad {padded}: \
                     element {i}: {g} vs burn {w} (tolerance {tol:e})"
                );
            }
            if padded {
                // Batch 1 sees no key: zeros, as burn gives.
                assert!(got[l * h * dv..].iter().all(|&x| x == 0.0));
            }
        }
    }
}
