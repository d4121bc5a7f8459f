//! How to read the numbers on the tour's page: what each summary.json key means and what value
//! to expect, so that a p of 0.002 or a negative energy distance is read in its context.

/// What a key means and what to expect of it.
pub struct Entry {
    /// The summary.json key.
    pub key: &'static str,
    /// One line: what it is and what a good value is.
    pub note: &'static str,
    /// Whether it is a number a reader should look at first (a test's verdict or a quality
    /// measure) rather than a setting.
    pub verdict: bool,
}

const P: &str = "a p-value: under a correct method it is uniform on [0, 1] (0.3 and 0.03 are \
                 equally fine); below 0.001, the tests' level, is a failure";

/// The keys the page explains, verdicts first.
pub const ENTRIES: &[Entry] = &[
    Entry {
        key: "ks_p_value",
        note: P,
        verdict: true,
    },
    Entry {
        key: "ks_vs_theory_p",
        note: "the smallest KS p-value over the projections, samples against the exact law; \
               uniform on [0, 1] when right, fails below 0.001",
        verdict: true,
    },
    Entry {
        key: "ks_vs_diffused_reference_p",
        note: "the same against a fresh sample of the forward process (two-sample KS); fails below 0.001",
        verdict: true,
    },
    Entry {
        key: "ks_step_vs_closed_form_p",
        note: "step-by-step chain against the one-jump closed form (two-sample KS); fails below 0.001",
        verdict: true,
    },
    Entry {
        key: "ks_step_vs_theory_p",
        note: "step-by-step chain against the closed-form law; fails below 0.001",
        verdict: true,
    },
    Entry {
        key: "ks_closed_form_vs_theory_p",
        note: "one-jump samples against the closed-form law; fails below 0.001",
        verdict: true,
    },
    Entry {
        key: "ks_min_p",
        note: "the smallest KS p-value over the projections, samples against the exact law; with k \
               projections chance alone gives about 1/(k+1); read ks_p_bonferroni",
        verdict: false,
    },
    Entry {
        key: "ks_p_bonferroni",
        note: "ks_min_p times the number of projections (Bonferroni); fails below 0.001",
        verdict: true,
    },
    Entry {
        key: "min_ks_p_value",
        note: "the smallest KS p-value over the times compared (one per time in 'times'); with k \
               times chance alone gives about 1/(k+1); fails below 0.001/k",
        verdict: true,
    },
    Entry {
        key: "times",
        note: "at each time: the chains' KS statistic and p-value against the equation's density, \
               and the density's distance to exp(-E)/Z",
        verdict: false,
    },
    Entry {
        key: "ks_two_sample_min_p",
        note: "the smallest two-sample KS p-value over the projections, samples against fresh \
               data; with k projections chance alone gives about 1/(k+1); fails below 0.001/k",
        verdict: true,
    },
    Entry {
        key: "chi_square_p",
        note: "whether the samples reached the points in the right shares; fails below 0.001",
        verdict: true,
    },
    Entry {
        key: "atom_weights_chi_square_p",
        note: "whether the samples near the points came in the data's shares; fails below 0.001",
        verdict: true,
    },
    Entry {
        key: "fraction_within_atom_radius",
        note: "the share of samples that ended near one of the points (within atom_radius); 1 is perfect",
        verdict: true,
    },
    Entry {
        key: "max_distance_to_nearest_atom",
        note: "how far the worst sample ended from a point; round-off size (below 1e-3) when exact",
        verdict: true,
    },
    Entry {
        key: "fraction_matching_prompt",
        note: "the share of samples on the side the prompt asks for; 1 is perfect, 0.5 is chance",
        verdict: true,
    },
    Entry {
        key: "excess_energy_distance",
        note: "energy distance to the data beyond what two fresh draws of the data differ by: 0 is \
               as good as real data; it can come out slightly negative by chance",
        verdict: true,
    },
    Entry {
        key: "energy_distance_vs_reference",
        note: "energy distance to a fresh sample; near 0 (within a few thousandths) when the laws agree; \
               it can come out slightly negative by chance",
        verdict: true,
    },
    Entry {
        key: "accuracy",
        note: "the share of images the classifier sees as the class asked for",
        verdict: true,
    },
    Entry {
        key: "judge_accuracy",
        note: "the share of images the shipped classifier sees as the class asked for",
        verdict: true,
    },
    Entry {
        key: "judge_counts",
        note: "how many images the shipped classifier put in each class",
        verdict: true,
    },
    Entry {
        key: "frechet_distance",
        note: "Frechet distance between Gaussians fitted to the classifier's features of samples and \
               of real test images; compare with frechet_floor, real images against real images",
        verdict: true,
    },
    Entry {
        key: "frechet_floor",
        note: "the same distance for as many real training images: the best a model can get at this n",
        verdict: false,
    },
    Entry {
        key: "error_nats_per_dim",
        note: "the ODE's log-likelihood against the exact log-density, per dimension; near 0 (1e-3 or \
               less) when right",
        verdict: true,
    },
    Entry {
        key: "mass_error",
        note: "how far the equation's total mass drifted from 1; round-off (1e-12) for a conservative scheme",
        verdict: true,
    },
    Entry {
        key: "acceptance",
        note: "the share of Metropolis proposals accepted",
        verdict: true,
    },
    Entry {
        key: "loss",
        note: "the training loss averaged over the last steps; lower is better, but only the samples \
               say whether the model learned",
        verdict: false,
    },
    Entry {
        key: "nfe",
        note: "denoiser evaluations per sample",
        verdict: false,
    },
    Entry {
        key: "grid_choice",
        note: "which sigma grid ran and why: at 20 evaluations or fewer an exact mixture's grid \
               is fitted unless one was given",
        verdict: false,
    },
    Entry {
        key: "energy_distance_floor",
        note: "the energy distance between two fresh draws of the data: what chance alone gives",
        verdict: false,
    },
    Entry {
        key: "seed",
        note: "the random seed (--seed) of this run; not the seed documents 000 to 004",
        verdict: false,
    },
];

/// The entry of `key`, if the page explains it.
pub fn entry(key: &str) -> Option<&'static Entry> {
    ENTRIES.iter().find(|e| e.key == key)
}

/// Whether `key` holds a p-value of a test at the page's level.
pub fn is_p_value(key: &str) -> bool {
    key.ends_with("_p") || key == "ks_p_value" || key == "min_ks_p_value"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_explained_once() {
        let mut keys: Vec<&str> = ENTRIES.iter().map(|e| e.key).collect();
        keys.sort();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "a key is explained twice");
        assert!(ENTRIES.iter().all(|e| !e.note.is_empty()));
    }
}
