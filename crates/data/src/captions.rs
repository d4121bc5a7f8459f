//! Sentences that describe a class, for training a prompt-conditioned model (issue 5): each
//! training image is shown one caption of its class, so the model learns to follow the text
//! encoder's embedding of a sentence rather than a class number, and prompts never seen in
//! training land near the captions that mean the same.
//!
//! Fashion-MNIST's and the digits' classes have hand-written captions (names, synonyms, short
//! descriptions); any other class name gets a few templates around the name.

/// Captions for a class, by its name (`t-shirt`, `ankle-boot`, `7`, or a folder's name).
pub fn captions(class: &str) -> Vec<String> {
    if let Some((colour, item)) = crate::colour::parse_label(class) {
        return crate::colour::captions(colour, item);
    }
    let fixed: &[&str] = match class {
        "t-shirt" => &[
            "a t-shirt",
            "a tee",
            "a T-shirt with short sleeves",
            "a plain cotton top",
            "a casual top",
            "a photo of a t-shirt",
            "a short sleeve shirt without buttons",
            "a tank top",
        ],
        "trouser" => &[
            "trousers",
            "a pair of trousers",
            "pants",
            "a pair of jeans",
            "slacks",
            "long pants with two legs",
            "a photo of trousers",
            "leggings",
        ],
        "pullover" => &[
            "a pullover",
            "a sweater",
            "a jumper",
            "a knitted sweater with long sleeves",
            "a hoodie",
            "a sweatshirt",
            "a photo of a pullover",
            "a cardigan",
        ],
        "dress" => &[
            "a dress",
            "a summer dress",
            "an evening gown",
            "a long dress",
            "a frock",
            "a one-piece dress for a woman",
            "a photo of a dress",
            "a sleeveless dress",
        ],
        "coat" => &[
            "a coat",
            "a jacket",
            "a winter coat",
            "an overcoat with buttons",
            "a parka",
            "a trench coat",
            "a photo of a coat",
            "a zipped jacket with long sleeves",
        ],
        "sandal" => &[
            "a sandal",
            "sandals",
            "a flip-flop",
            "an open shoe with straps",
            "a summer sandal",
            "a high-heeled sandal",
            "a photo of a sandal",
            "a slipper",
        ],
        "shirt" => &[
            "a shirt",
            "a button-up shirt",
            "a blouse",
            "a dress shirt with a collar",
            "a flannel shirt",
            "a long-sleeved shirt",
            "a photo of a shirt",
            "a checked shirt",
        ],
        "sneaker" => &[
            "a sneaker",
            "sneakers",
            "a trainer",
            "a sports shoe",
            "a canvas shoe",
            "a low-top shoe",
            "a photo of a sneaker",
            "a tennis shoe",
        ],
        "bag" => &[
            "a bag",
            "a handbag",
            "a purse",
            "a backpack",
            "a tote bag",
            "a shoulder bag with a strap",
            "a photo of a bag",
            "a briefcase",
        ],
        "ankle-boot" => &[
            "an ankle boot",
            "a boot",
            "a leather boot",
            "a short boot",
            "a chelsea boot",
            "a boot with a heel",
            "a photo of an ankle boot",
            "a boot that covers the ankle",
        ],
        _ => &[],
    };
    if !fixed.is_empty() {
        return fixed.iter().map(|s| s.to_string()).collect();
    }
    const DIGITS: [&str; 10] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    ];
    if let Ok(k) = class.parse::<usize>()
        && k < 10
    {
        let (d, w) = (class, DIGITS[k]);
        return vec![
            d.to_string(),
            w.to_string(),
            format!("the digit {d}"),
            format!("the number {w}"),
            format!("a handwritten {d}"),
            format!("a handwritten {w}"),
            format!("the digit {w}"),
        ];
    }
    let name = class.replace(['-', '_'], " ");
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    vec![
        name.clone(),
        format!("{article} {name}"),
        format!("a photo of {article} {name}"),
        format!("a picture of {article} {name}"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::FASHION_MNIST_CLASSES;

    #[test]
    fn every_class_has_distinct_captions() {
        let mut all: Vec<String> = FASHION_MNIST_CLASSES
            .iter()
            .flat_map(|c| captions(c))
            .collect();
        assert_eq!(all.len(), 80);
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 80, "a caption is shared by two classes");
        assert!(captions("7").contains(&"the digit seven".to_string()));
        assert_eq!(captions("ice_cream")[1], "an ice cream");
    }

    /// The prompts the shipped model is judged on (crates/cli/tests/shipped.rs) must stay new
    /// words to it: no caption uses what distinguishes them.
    #[test]
    fn captions_avoid_the_words_of_the_judging_prompts() {
        const HELD_OUT: [&str; 40] = [
            "running",
            "satchel",
            "jersey",
            "woolly",
            "bride",
            "wedding",
            "beach",
            "anorak",
            "rain",
            "hiking",
            "mud",
            "crew",
            "businessman",
            "suit",
            "jogging",
            "denim",
            "lower",
            "groceries",
            "turtleneck",
            "ballgown",
            "open-toed",
            "garment",
            "weather",
            "lace-up",
            "gym",
            "office",
            "cuff",
            "ankle-high",
            "basketball",
            "chinos",
            "duffel",
            "knitwear",
            "prom",
            "strappy",
            "puffer",
            "snow",
            "combat",
            "logo",
            "oxford",
            "pocket",
        ];
        for c in FASHION_MNIST_CLASSES {
            for caption in captions(c) {
                let lower = caption.to_lowercase();
                for word in lower.split_whitespace() {
                    for w in HELD_OUT {
                        assert!(!word.starts_with(w), "'{caption}' uses '{w}'");
                    }
                }
            }
        }
    }
}
