//! The composition test of a latent text-to-image model trained on colour Fashion-MNIST
//! (issue 13): pictures of prompts naming a colour and a class, every prompt from the same
//! seeds, each set judged by class (the classifier) and colour (the pixel measure). The
//! held-out pairs, which no training image has, say whether the model composes words.

use anyhow::{Result, bail};
use diffuse_data::colour::{COLOURS, PAIRS, is_held_out, pair, plain_prompt};

use super::colour::{ColourJudge, parse_pair};
use crate::report::Report;
use crate::run::Watch;
use crate::sd::{SdRequest, StableDiffusion, generate, to_rgb8};

/// A prompt and the (colour, class) it asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptCheck {
    pub prompt: String,
    pub colour: usize,
    pub class: usize,
}

impl PromptCheck {
    /// "red sandal".
    pub fn pair_name(&self) -> String {
        format!(
            "{} {}",
            COLOURS[self.colour].name,
            diffuse_data::images::FASHION_MNIST_CLASSES[self.class]
        )
    }

    /// Whether no training image has this pair.
    pub fn held_out(&self) -> bool {
        is_held_out(self.colour, self.class)
    }
}

/// The plain prompts of a set of pairs: `all` (70), `trained`, `held-out` (12), or a list of
/// pairs separated by commas ("red sandal,blue bag"); a pair may carry its own words after
/// `=` ("red bag=a crimson handbag").
pub fn pair_prompts(which: &str) -> Result<Vec<PromptCheck>> {
    let plain = |keep: &dyn Fn(usize, usize) -> bool| {
        (0..PAIRS)
            .map(pair)
            .filter(|(c, k)| keep(*c, *k))
            .map(|(colour, class)| PromptCheck {
                prompt: plain_prompt(colour, class),
                colour,
                class,
            })
            .collect::<Vec<_>>()
    };
    Ok(match which {
        "all" => plain(&|_, _| true),
        "trained" => plain(&|c, k| !is_held_out(c, k)),
        "held-out" => plain(&is_held_out),
        list => {
            let mut out = vec![];
            for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let (name, words) = match item.split_once('=') {
                    Some((n, w)) => (n.trim(), Some(w.trim())),
                    None => (item, None),
                };
                let (colour, class) = parse_pair(name)?;
                out.push(PromptCheck {
                    prompt: words.map_or_else(|| plain_prompt(colour, class), str::to_string),
                    colour,
                    class,
                });
            }
            if out.is_empty() {
                bail!(
                    "--prompts {which:?}: all, trained, held-out, or pairs such as \"red sandal,blue bag\""
                );
            }
            out
        }
    })
}

/// One prompt's pictures and how they were judged.
pub struct Judged {
    pub check: PromptCheck,
    /// The judge's report ([`ColourJudge::judge`]).
    pub report: Report,
    /// The pictures, interleaved 32x32 RGB.
    pub pictures: Vec<Vec<u8>>,
}

impl Judged {
    fn share(&self, key: &str) -> f64 {
        self.report
            .get(key)
            .and_then(|v| v.as_f64())
            .unwrap_or(f64::NAN)
    }

    /// The shares of pictures of the asked class, colour, and both.
    pub fn accuracies(&self) -> [f64; 3] {
        [
            self.share("class_accuracy"),
            self.share("colour_accuracy"),
            self.share("both_accuracy"),
        ]
    }
}

/// Draws `n` pictures of each prompt (seed `seed` for every prompt: the same starting noise)
/// at `sd`'s defaults or the given guidance and steps, and judges them. `watch` hears one unit
/// per prompt.
pub fn judge_prompts(
    sd: &StableDiffusion,
    checks: &[PromptCheck],
    n: usize,
    seed: u64,
    guidance: Option<f64>,
    steps: Option<usize>,
    judge: &ColourJudge,
    watch: &mut dyn Watch,
) -> Result<Vec<Judged>> {
    if n == 0 {
        bail!("--n must be at least 1");
    }
    watch.begin("prompts", checks.len() as u64);
    let mut out = vec![];
    for check in checks {
        let defaults = SdRequest::for_pipeline(sd, check.prompt.clone());
        let request = SdRequest {
            n,
            batch: n.min(100),
            seed,
            guidance: guidance.unwrap_or(defaults.guidance),
            steps: steps.unwrap_or(defaults.steps),
            ..defaults
        };
        let images = generate(sd, &request, &mut crate::run::Silent)?;
        let pictures = to_rgb8(&images.images)?;
        let report = judge.judge(&pictures, Some((check.colour, check.class)))?;
        out.push(Judged {
            check: check.clone(),
            report,
            pictures,
        });
        watch.advance(1)?;
    }
    watch.finish();
    Ok(out)
}

/// The summary of a table: for the trained and the held-out prompts, the mean and the lowest
/// share of each of class, colour and both.
pub fn summarise(judged: &[Judged]) -> Report {
    let mut r = Report::new();
    for (key, held) in [("trained", false), ("held_out", true)] {
        let rows: Vec<[f64; 3]> = judged
            .iter()
            .filter(|j| j.check.held_out() == held)
            .map(Judged::accuracies)
            .collect();
        if rows.is_empty() {
            continue;
        }
        r.set(&format!("{key}_prompts"), rows.len());
        for (i, what) in ["class", "colour", "both"].iter().enumerate() {
            let v: Vec<f64> = rows.iter().map(|a| a[i]).collect();
            r.num(
                &format!("{key}_{what}_mean"),
                v.iter().sum::<f64>() / v.len() as f64,
            );
            r.num(
                &format!("{key}_{what}_min"),
                v.iter().copied().fold(f64::INFINITY, f64::min),
            );
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sets_of_prompts_are_the_pairs() {
        assert_eq!(pair_prompts("all").unwrap().len(), PAIRS);
        let held = pair_prompts("held-out").unwrap();
        assert_eq!(held.len(), diffuse_data::colour::HELD_OUT.len());
        assert!(held.iter().all(PromptCheck::held_out));
        assert_eq!(pair_prompts("trained").unwrap().len(), PAIRS - held.len());
        let list = pair_prompts("red sandal, blue bag=a cobalt handbag").unwrap();
        assert_eq!(list[0].prompt, "a red sandal");
        assert_eq!(list[1].prompt, "a cobalt handbag");
        assert_eq!(list[1].pair_name(), "blue bag");
        assert!(pair_prompts("pink sandal").is_err());
        assert!(pair_prompts(",").is_err());
    }
}
