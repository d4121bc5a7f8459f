//! Gaussian mixtures from JSON: `{"weights":[...], "means":[[...],...], "stds":[...]}`.

use std::path::Path;

use diffuse_core::Mixture;
use serde::Deserialize;

use crate::{DataError, Result};

#[derive(Deserialize)]
#[serde(untagged)]
enum Mean {
    Scalar(f64),
    Vector(Vec<f64>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GmmFile {
    weights: Vec<f64>,
    means: Vec<Mean>,
    stds: Vec<f64>,
}

/// Reads a mixture. Weights that do not sum to 1 are normalised, and the returned warning says so.
pub fn read_gmm(path: &Path) -> Result<(Mixture, Option<String>)> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| DataError::Io {
        path: name.clone(),
        source,
    })?;
    parse_gmm(&text, &name)
}

/// The largest mean or std a mixture file may give.
const SCALE: f64 = 1e15;

pub(crate) fn parse_gmm(text: &str, name: &str) -> Result<(Mixture, Option<String>)> {
    let file: GmmFile = serde_json::from_str(text).map_err(|e| DataError::Content {
        path: name.to_string(),
        line: e.line(),
        message: format!(
            "{e} (expected {{\"weights\":[...], \"means\":[[...],...], \"stds\":[...]}})"
        ),
    })?;
    let whole = |message: String| DataError::Content {
        path: name.to_string(),
        line: 0,
        message,
    };
    let mut weights = file.weights;
    if let Some(w) = weights.iter().find(|w| **w < 0.0) {
        return Err(whole(format!("weight {w} is negative")));
    }
    let total: f64 = weights.iter().sum();
    let mut warning = None;
    if total <= 0.0 {
        return Err(whole("the weights sum to 0".into()));
    }
    if (total - 1.0).abs() > 1e-6 {
        weights.iter_mut().for_each(|w| *w /= total);
        warning = Some(format!(
            "{name}: weights summed to {total}; normalised them to sum to 1"
        ));
    }
    let means: Vec<Vec<f64>> = file
        .means
        .into_iter()
        .map(|m| match m {
            Mean::Scalar(v) => vec![v],
            Mean::Vector(v) => v,
        })
        .collect();
    // The exact denoiser squares distances between points and means: beyond 1e15 they lose
    // every digit (and past 1e154 overflow), which would surface as a sampler's NaN.
    for (i, m) in means.iter().enumerate() {
        if let Some((j, v)) = m.iter().enumerate().find(|(_, v)| v.abs() > SCALE) {
            return Err(whole(format!(
                "means[{i}][{j}] = {v:e}: a mixture's means and stds must be within 1e15 in size \
                 (rescale the data)"
            )));
        }
    }
    if let Some((i, v)) = file.stds.iter().enumerate().find(|(_, v)| v.abs() > SCALE) {
        return Err(whole(format!(
            "stds[{i}] = {v:e}: a mixture's means and stds must be within 1e15 in size (rescale \
             the data)"
        )));
    }
    let mixture = Mixture::new(weights, means, file.stds).map_err(|source| DataError::Core {
        context: name.to_string(),
        source,
    })?;
    Ok((mixture, warning))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_means_too_large_to_square() {
        let e = parse_gmm(
            r#"{"weights":[1],"means":[[0, 1e300]],"stds":[1]}"#,
            "big.json",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("big.json") && e.contains("means[0][1] = 1e300"),
            "{e}"
        );
        let e = parse_gmm(r#"{"weights":[1],"means":[0],"stds":[1e20]}"#, "big.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("stds[0] = 1e20"), "{e}");
    }

    #[test]
    fn reads_a_2d_mixture_and_1d_shorthand() {
        let (m, w) = parse_gmm(
            r#"{"weights":[0.5,0.5],"means":[[0,1],[2,3]],"stds":[0.1,0]}"#,
            "g.json",
        )
        .unwrap();
        assert_eq!(m.dim(), 2);
        assert!(w.is_none());
        let (m, _) = parse_gmm(r#"{"weights":[1],"means":[0.4],"stds":[0]}"#, "g.json").unwrap();
        assert_eq!(m.means(), &[vec![0.4]]);
    }

    #[test]
    fn normalises_weights_and_says_so() {
        let (m, w) = parse_gmm(
            r#"{"weights":[1,3],"means":[[0],[1]],"stds":[1,1]}"#,
            "g.json",
        )
        .unwrap();
        assert_eq!(m.weights(), &[0.25, 0.75]);
        assert!(w.unwrap().contains("normalised"));
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let cases = [
            (r#"{"weights":[1],"means":[[0]]"#, "g.json:1:"),
            (
                r#"{"weights":[1],"means":[[0]],"stds":[-1]}"#,
                "std 0 is -1",
            ),
            (
                r#"{"weights":[0.5,0.5],"means":[[0],[1,2]],"stds":[1,1]}"#,
                "mean 1 has 2 coordinates",
            ),
            (
                r#"{"weights":[1],"means":[[0]],"stds":[1],"extra":2}"#,
                "unknown field",
            ),
            (
                r#"{"weights":[-1, 2],"means":[[0],[1]],"stds":[1,1]}"#,
                "negative",
            ),
        ];
        for (text, want) in cases {
            let e = parse_gmm(text, "g.json").unwrap_err().to_string();
            assert!(e.contains(want), "{e:?} should contain {want:?}");
        }
    }
}
