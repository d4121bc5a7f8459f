//! How a prompt-conditioned model reads a prompt it was not trained on.
//!
//! A pixel UNet trained on a fixed set of captions per class (seed 002's way) learns the text
//! encoder's embedding at those points only: given a paraphrase, whose embedding lies between
//! them, it can answer with another class even when the encoder put the paraphrase nearest to
//! the right one ("a puffer for the snow" is nearest to a coat caption; the shipped model drew
//! bags). So by default the prompt is read as one of the model's own captions: each class gets
//! the vote sum_k exp(cos(prompt, caption_k) / tau) over its captions (a kernel on the unit
//! sphere: |e - c|^2 = 2 - 2 cos), and the winning class's caption nearest to the prompt is what
//! the model is given. Measured in the README (Fashion-MNIST).

/// The vote's temperature on cosines: a Gaussian kernel of standard deviation 0.2 per
/// embedding coordinate (tau = 0.2^2). Chosen on the README's first two prompt lists (0.1 to
/// 0.3 did as well on the third, held-out list).
pub const TAU: f64 = 0.04;

/// The embeddings of `captions` (per class) by `encoder`: what a prompt is read against, and
/// what a prompt model is trained on.
pub fn embed_captions(
    encoder: &diffuse_text::TextEncoder,
    captions: &[Vec<String>],
) -> anyhow::Result<Vec<Vec<Vec<f32>>>> {
    captions
        .iter()
        .map(|cs| {
            cs.iter()
                .map(|c| Ok(encoder.encode(c)?.embedding))
                .collect::<anyhow::Result<Vec<_>>>()
        })
        .collect()
}

/// The caption a prompt is read as: its class and its index among the class's captions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// The class whose captions won the vote.
    pub class: usize,
    /// The caption of that class nearest to the prompt.
    pub caption: usize,
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        0.0
    } else {
        ab / (aa * bb).sqrt()
    }
}

/// Reads `prompt` (an embedding) as one of `captions` (per class, their embeddings) by the
/// kernel vote at temperature `tau`. None when no class has a caption.
pub fn read(prompt: &[f32], captions: &[Vec<Vec<f32>>], tau: f64) -> Option<Reading> {
    let cos: Vec<Vec<f64>> = captions
        .iter()
        .map(|cs| cs.iter().map(|c| cosine(prompt, c)).collect())
        .collect();
    // Subtracting the largest cosine keeps every exponential finite at small tau.
    let top = cos
        .iter()
        .flatten()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    if !top.is_finite() {
        return None;
    }
    let vote = |cs: &Vec<f64>| cs.iter().map(|c| ((c - top) / tau).exp()).sum::<f64>();
    let class = (0..cos.len())
        .filter(|k| !cos[*k].is_empty())
        .max_by(|a, b| vote(&cos[*a]).total_cmp(&vote(&cos[*b])))?;
    let caption = (0..cos[class].len()).max_by(|a, b| cos[class][*a].total_cmp(&cos[class][*b]))?;
    Some(Reading { class, caption })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let l = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / l).collect()
    }

    #[test]
    fn a_caption_reads_as_itself_and_nothing_reads_as_nothing() {
        let caps = vec![
            vec![unit(&[1.0, 0.0, 0.0]), unit(&[1.0, 0.3, 0.0])],
            vec![unit(&[0.0, 1.0, 0.0])],
            vec![],
        ];
        for (k, cs) in caps.iter().enumerate() {
            for (i, c) in cs.iter().enumerate() {
                assert_eq!(
                    read(c, &caps, TAU),
                    Some(Reading {
                        class: k,
                        caption: i
                    })
                );
            }
        }
        assert_eq!(read(&[1.0, 0.0, 0.0], &[vec![], vec![]], TAU), None);
    }

    /// Near a single caption of one class and a cluster of another, the vote follows the
    /// kernel: at small tau the nearest caption wins, at large tau the cluster's mass does.
    #[test]
    fn the_vote_weighs_a_class_by_all_its_captions() {
        let lone = unit(&[1.0, 0.0, 0.0, 0.0]);
        let cluster = vec![
            unit(&[0.8, 0.6, 0.0, 0.0]),
            unit(&[0.8, 0.0, 0.6, 0.0]),
            unit(&[0.8, 0.0, 0.0, 0.6]),
        ];
        let caps = vec![vec![lone], cluster];
        let prompt = unit(&[0.9, 0.2, 0.2, 0.2]);
        // cos to the lone caption 0.9/|p| and to each of the cluster's 0.84/|p|: with
        // |p| = 0.9644, 0.9332 and 0.8710; the votes are e^(0.9332/tau) against
        // 3 e^(0.8710/tau), equal at tau = 0.0622 / ln 3 = 0.0566.
        assert_eq!(read(&prompt, &caps, 0.03).map(|r| r.class), Some(0));
        assert_eq!(read(&prompt, &caps, 0.08).map(|r| r.class), Some(1));
    }
}
