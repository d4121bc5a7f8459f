//! Seed 002's edits of the prompt embedding: a walk between two prompts' token states, and one
//! word's token states of one prompt put in the place of another's.

use anyhow::{Result, bail};
use burn::tensor::Tensor;

use super::StableDiffusion;

/// `frames` token states on the straight line from `a` to `b` (`a` first, `b` last), each
/// `(1 - w) a + w b` with w = k / (frames - 1).
pub fn interpolate(a: &Tensor<3>, b: &Tensor<3>, frames: usize) -> Result<Vec<Tensor<3>>> {
    if a.dims() != b.dims() {
        bail!(
            "the two prompts' states differ in shape: {:?} and {:?}",
            a.dims(),
            b.dims()
        );
    }
    if frames < 2 {
        bail!("--frames must be at least 2 (got {frames})");
    }
    Ok((0..frames)
        .map(|k| {
            let w = k as f64 / (frames - 1) as f64;
            a.clone() * (1.0 - w) + b.clone() * w
        })
        .collect())
}

/// Prompt `a`'s token states with the states of `word` taken from prompt `b` (seed 002: "an
/// adorable photo of a puppy" with "koala" from "a adorable photo of a koala"): the positions of
/// the word's tokens in `b` are copied over the same positions of `a`. Gives the states and the
/// positions (0 is BOS).
pub fn swap_token(
    sd: &StableDiffusion,
    a: &str,
    b: &str,
    word: &str,
) -> Result<(Tensor<3>, Vec<usize>)> {
    let piece = sd.pieces(word)?;
    if piece.is_empty() {
        bail!("--swap-token {word:?} has no tokens");
    }
    let (states_a, _) = sd.encode_prompt(a)?;
    let (states_b, tokens_b) = sd.encode_prompt(b)?;
    let Some(at) = tokens_b
        .ids
        .windows(piece.len())
        .position(|w| w == piece.as_slice())
    else {
        let words: Vec<String> = sd
            .pieces(b)?
            .into_iter()
            .filter_map(|id| sd.token(id))
            .collect();
        bail!(
            "--swap-token {word:?} is not among the tokens of {b:?} ({})",
            words.join(" ")
        );
    };
    let positions: Vec<usize> = (at..at + piece.len()).collect();
    // CLIP pads both prompts to 77; MiniLM's states have each prompt's own length.
    let len_a = states_a.dims()[1];
    if at + piece.len() > len_a {
        bail!(
            "--swap-token {word:?} sits at token {} of {b:?}, beyond the {len_a} tokens of {a:?}",
            at
        );
    }
    let mut states = states_a;
    for &p in &positions {
        let row = states_b.clone().narrow(1, p, 1);
        states = states.slice_assign([0..1, p..p + 1], row);
    }
    Ok((states, positions))
}
