//! Colour Fashion-MNIST (issue 13): each Fashion-MNIST item padded to 32x32 and tinted with one
//! of seven named colours on its black background, its label the (colour, class) pair and its
//! captions the pair in varied words ("a red sandal", "a sandal in crimson", "a photo of a
//! scarlet flip-flop", ...). Whole pairs are held out of the training split ([`HELD_OUT`]) so
//! that a model's composition of a colour and a class it never saw together can be tested.
//!
//! The tint multiplies the gray level by the colour's RGB, whose largest channel is 1: the
//! brightest channel of a tinted pixel is the gray level itself, so [`brightness`] gives back
//! the original item exactly and Fashion-MNIST's classifier judges the class. [`read_colour`]
//! judges the colour from the item's pixels (their value-weighted mean chroma, nearest named
//! colour), independent of how bright the item is.

use diffuse_core::{NoiseSource, Stream};

use crate::images::{FASHION_MNIST_CLASSES, ImageSet};

/// The seed `--data colour-fashion` colours with: one fixed data set, whatever a run's `--seed`.
pub const COLOUR_SEED: u64 = 2026;

/// The side of a colour image: 28x28 Fashion-MNIST padded by 2 on each side.
pub const SIZE: usize = 32;

/// The padding around the 28x28 item.
const PAD: usize = 2;

/// A named colour: its RGB (largest channel 1) and the words captions use for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Colour {
    pub name: &'static str,
    pub rgb: [f64; 3],
    pub words: &'static [&'static str],
}

/// The seven colours: six hues 46 to 82 degrees apart, and white (no saturation), so that a
/// pixel measure tells them apart however bright the item.
pub const COLOURS: [Colour; 7] = [
    Colour {
        name: "red",
        rgb: [1.0, 0.12, 0.1],
        words: &["red", "crimson", "scarlet"],
    },
    Colour {
        name: "yellow",
        rgb: [1.0, 0.9, 0.08],
        words: &["yellow", "golden", "lemon"],
    },
    Colour {
        name: "green",
        rgb: [0.15, 1.0, 0.15],
        words: &["green", "emerald", "leaf-green"],
    },
    Colour {
        name: "cyan",
        rgb: [0.1, 0.95, 1.0],
        words: &["cyan", "turquoise", "aqua"],
    },
    Colour {
        name: "blue",
        rgb: [0.15, 0.3, 1.0],
        words: &["blue", "cobalt", "royal blue"],
    },
    Colour {
        name: "purple",
        rgb: [0.72, 0.2, 1.0],
        words: &["purple", "violet", "plum"],
    },
    Colour {
        name: "white",
        rgb: [1.0, 1.0, 1.0],
        words: &["white", "snow-white", "ivory"],
    },
];

/// (colour, class) pairs no training image has, each colour and each class at most twice: the
/// test of composition.
pub const HELD_OUT: [(&str, &str); 12] = [
    ("yellow", "dress"),
    ("blue", "sandal"),
    ("green", "coat"),
    ("red", "sneaker"),
    ("purple", "trouser"),
    ("white", "bag"),
    ("cyan", "ankle-boot"),
    ("red", "pullover"),
    ("blue", "t-shirt"),
    ("yellow", "shirt"),
    ("cyan", "dress"),
    ("white", "sneaker"),
];

/// The nouns captions use for each Fashion-MNIST class: singular forms, then plural forms
/// (people ask for "a red sandal" and for "red sandals"; trousers are mostly plural).
fn nouns(class: usize) -> (&'static [&'static str], &'static [&'static str]) {
    match class {
        0 => (&["t-shirt", "tee", "top"], &["t-shirts", "tees", "tops"]),
        1 => (&["trouser"], &["trousers", "pants", "jeans"]),
        2 => (
            &["pullover", "sweater", "jumper"],
            &["pullovers", "sweaters", "jumpers"],
        ),
        3 => (&["dress", "gown", "frock"], &["dresses", "gowns", "frocks"]),
        4 => (
            &["coat", "jacket", "parka"],
            &["coats", "jackets", "parkas"],
        ),
        5 => (
            &["sandal", "flip-flop", "open summer shoe"],
            &["sandals", "flip-flops", "open summer shoes"],
        ),
        6 => (
            &["shirt", "blouse", "button-up shirt"],
            &["shirts", "blouses", "button-up shirts"],
        ),
        7 => (
            &["sneaker", "trainer", "running shoe"],
            &["sneakers", "trainers", "running shoes"],
        ),
        8 => (
            &["bag", "handbag", "purse"],
            &["bags", "handbags", "purses"],
        ),
        _ => (
            &["ankle boot", "boot", "bootie"],
            &["ankle boots", "boots", "booties"],
        ),
    }
}

/// Whether the class comes in pairs ("a pair of red trousers", "a pair of blue sneakers").
fn in_pairs(class: usize) -> bool {
    matches!(class, 1 | 5 | 7 | 9)
}

/// Number of (colour, class) labels.
pub const PAIRS: usize = COLOURS.len() * FASHION_MNIST_CLASSES.len();

/// The label of a (colour, class) pair.
pub fn label(colour: usize, class: usize) -> usize {
    colour * FASHION_MNIST_CLASSES.len() + class
}

/// The (colour, class) of a label.
pub fn pair(label: usize) -> (usize, usize) {
    let k = FASHION_MNIST_CLASSES.len();
    (label / k, label % k)
}

/// The label names, "red t-shirt" ... "white ankle-boot", in label order.
pub fn label_names() -> Vec<String> {
    (0..PAIRS)
        .map(|l| {
            let (c, k) = pair(l);
            format!("{} {}", COLOURS[c].name, FASHION_MNIST_CLASSES[k])
        })
        .collect()
}

/// The (colour, class) of a label name such as "red t-shirt".
pub fn parse_label(name: &str) -> Option<(usize, usize)> {
    let (c, k) = name.split_once(' ')?;
    Some((
        COLOURS.iter().position(|x| x.name == c)?,
        FASHION_MNIST_CLASSES.iter().position(|x| *x == k)?,
    ))
}

/// True when no training image has this (colour, class).
pub fn is_held_out(colour: usize, class: usize) -> bool {
    HELD_OUT
        .iter()
        .any(|(c, k)| COLOURS[colour].name == *c && FASHION_MNIST_CLASSES[class] == *k)
}

/// "a" or "an" before `word`.
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// Every caption of a (colour, class) pair: for each of the colour's three words, six patterns
/// with each singular noun ("a red sandal", "a sandal in red", "a photo of a red sandal", ...)
/// and three with each plural one ("red sandals", "sandals in red", "a photo of red sandals"),
/// plus "a pair of red sandals" for things that come in pairs. The colour comes first in some
/// and last in others, with and without an article, so that a model cannot read it from one
/// position.
pub fn captions(colour: usize, class: usize) -> Vec<String> {
    let (singular, plural) = nouns(class);
    let mut out = vec![];
    for c in COLOURS[colour].words {
        for n in singular {
            out.push(format!("{} {c} {n}", article(c)));
            out.push(format!("{} {n} in {c}", article(n)));
            out.push(format!("{c} {n}"));
            out.push(format!("a photo of {} {c} {n}", article(c)));
            out.push(format!("{} {n}, coloured {c}", article(n)));
            out.push(format!("{} {c}-coloured {n}", article(c)));
        }
        for n in plural {
            out.push(format!("{c} {n}"));
            out.push(format!("{n} in {c}"));
            out.push(format!("a photo of {c} {n}"));
            if in_pairs(class) {
                out.push(format!("a pair of {c} {n}"));
            }
        }
    }
    out
}

/// The plain prompt of a pair, in the words people use: "a red t-shirt", "red trousers", "an
/// ivory coat" is "a white coat" (the colour's name and the class's first noun).
pub fn plain_prompt(colour: usize, class: usize) -> String {
    let (singular, plural) = nouns(class);
    let c = COLOURS[colour].name;
    if class == 1 {
        format!("{c} {}", plural[0])
    } else {
        format!("{} {c} {}", article(c), singular[0])
    }
}

/// Colours Fashion-MNIST images: `train` images get a colour among those not held out for their
/// class, test images any colour, each drawn uniformly from `seed` and the image's index (the
/// same set every time). Labels become (colour, class) pairs ([`label`]); images 32x32 RGB.
pub fn colourise(gray: &ImageSet, train: bool, seed: u64) -> ImageSet {
    let noise = NoiseSource::new(seed);
    let (h, w) = (gray.height, gray.width);
    let (oh, ow) = (h + 2 * PAD, w + 2 * PAD);
    let mut pixels = vec![0u8; gray.len() * oh * ow * 3];
    let mut labels = Vec::with_capacity(gray.len());
    for (i, &class) in gray.labels.iter().enumerate() {
        let allowed: Vec<usize> = (0..COLOURS.len())
            .filter(|c| !(train && is_held_out(*c, class)))
            .collect();
        let u = noise.uniform(Stream::Data, 1 << 20, i as u64, 0);
        let colour = allowed[((u * allowed.len() as f64) as usize).min(allowed.len() - 1)];
        labels.push(label(colour, class));
        let rgb = COLOURS[colour].rgb;
        let out = &mut pixels[i * oh * ow * 3..(i + 1) * oh * ow * 3];
        for y in 0..h {
            for x in 0..w {
                let v = f64::from(gray.pixels[i * h * w + y * w + x]);
                let o = ((y + PAD) * ow + x + PAD) * 3;
                for (ch, s) in rgb.iter().enumerate() {
                    out[o + ch] = (v * s).round() as u8;
                }
            }
        }
    }
    ImageSet {
        height: oh,
        width: ow,
        channels: 3,
        pixels,
        labels,
        classes: label_names(),
    }
}

/// The gray item inside a 32x32 RGB image (interleaved): each pixel's brightest channel, the
/// 2-pixel border cropped, 28x28. The inverse of the tint for images [`colourise`] made.
pub fn brightness(rgb: &[u8]) -> Vec<u8> {
    let inner = SIZE - 2 * PAD;
    let mut out = Vec::with_capacity(inner * inner);
    for y in PAD..PAD + inner {
        for x in PAD..PAD + inner {
            let o = (y * SIZE + x) * 3;
            out.push(rgb[o].max(rgb[o + 1]).max(rgb[o + 2]));
        }
    }
    out
}

/// What [`read_colour`] sees in an image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColourReading {
    /// The nearest named colour (an index into [`COLOURS`]); None when no pixel is bright
    /// enough to be part of an item.
    pub colour: Option<usize>,
    /// The value-weighted mean chroma of the item's pixels, (s cos h, s sin h) with h the hue
    /// and s the saturation (max - min) / max: white at the origin, pure hues on the unit circle.
    pub chroma: [f64; 2],
    /// The distance from `chroma` to the named colour's.
    pub distance: f64,
    /// The share of the image's pixels that belong to the item.
    pub coverage: f64,
}

/// Pixels whose brightest channel is below this (of 255) are background.
pub const ITEM_LEVEL: u8 = 64;

/// The chroma point (s cos h, s sin h) of an RGB triple in [0, 1] or 0..255.
fn chroma(r: f64, g: f64, b: f64) -> [f64; 2] {
    let max = r.max(g).max(b);
    if max <= 0.0 {
        return [0.0, 0.0];
    }
    // Hexagonal chroma projection (the hue's cosine and sine, scaled by the chroma), divided
    // by the value: saturation times the hue direction.
    let alpha = r - 0.5 * (g + b);
    let beta = 3f64.sqrt() / 2.0 * (g - b);
    [alpha / max, beta / max]
}

/// The named colour of an image's item: the value-weighted mean chroma of its pixels whose
/// brightest channel is at least 64 of 255, then the nearest of the [`COLOURS`]' chroma points.
/// `rgb` is interleaved 8-bit RGB of any size.
pub fn read_colour(rgb: &[u8]) -> ColourReading {
    let (mut sum, mut weight, mut count) = ([0.0, 0.0], 0.0, 0usize);
    for p in rgb.chunks_exact(3) {
        let max = p[0].max(p[1]).max(p[2]);
        if max < ITEM_LEVEL {
            continue;
        }
        let v = f64::from(max);
        let c = chroma(f64::from(p[0]), f64::from(p[1]), f64::from(p[2]));
        sum[0] += v * c[0];
        sum[1] += v * c[1];
        weight += v;
        count += 1;
    }
    let pixels = (rgb.len() / 3).max(1);
    if count == 0 {
        return ColourReading {
            colour: None,
            chroma: [0.0, 0.0],
            distance: f64::NAN,
            coverage: 0.0,
        };
    }
    let mean = [sum[0] / weight, sum[1] / weight];
    let (colour, distance) = COLOURS
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let p = chroma(c.rgb[0], c.rgb[1], c.rgb[2]);
            (i, (p[0] - mean[0]).hypot(p[1] - mean[1]))
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .expect("there are colours");
    ColourReading {
        colour: Some(colour),
        chroma: mean,
        distance,
        coverage: count as f64 / pixels as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small fake gray set: a bright square of level `v` per image, classes cycling.
    fn gray(n: usize) -> ImageSet {
        let (h, w) = (28, 28);
        let mut pixels = vec![0u8; n * h * w];
        for i in 0..n {
            let v = 110 + (i * 37 % 140) as u8;
            for y in 6..22 {
                for x in 8..20 {
                    pixels[i * h * w + y * w + x] = v - (x as u8 % 5) * 3;
                }
            }
        }
        ImageSet {
            height: h,
            width: w,
            channels: 1,
            pixels,
            labels: (0..n).map(|i| i % 10).collect(),
            classes: FASHION_MNIST_CLASSES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }

    #[test]
    fn the_colours_are_far_apart_and_white_has_no_saturation() {
        let points: Vec<[f64; 2]> = COLOURS
            .iter()
            .map(|c| chroma(c.rgb[0], c.rgb[1], c.rgb[2]))
            .collect();
        for (i, a) in points.iter().enumerate() {
            for (j, b) in points.iter().enumerate().skip(i + 1) {
                let d = (a[0] - b[0]).hypot(a[1] - b[1]);
                assert!(d > 0.6, "{} and {}: {d}", COLOURS[i].name, COLOURS[j].name);
            }
        }
        assert_eq!(points[6], [0.0, 0.0]);
        for c in COLOURS {
            assert_eq!(c.rgb.iter().copied().fold(0.0, f64::max), 1.0, "{}", c.name);
        }
    }

    #[test]
    fn held_out_pairs_are_real_pairs_and_never_in_the_training_split() {
        for (c, k) in HELD_OUT {
            let name = format!("{c} {k}");
            let (ci, ki) = parse_label(&name).unwrap_or_else(|| panic!("{name}"));
            assert!(is_held_out(ci, ki));
        }
        let train = colourise(&gray(2000), true, 0);
        let mut seen = vec![0usize; PAIRS];
        for l in &train.labels {
            seen[*l] += 1;
        }
        for (l, n) in seen.iter().enumerate() {
            let (c, k) = pair(l);
            if is_held_out(c, k) {
                assert_eq!(*n, 0, "{}", label_names()[l]);
            } else {
                // 200 images per class over 6 or 7 colours: ~30 each.
                assert!(*n > 10, "{} only {n} times", label_names()[l]);
            }
        }
        let test = colourise(&gray(2000), false, 0);
        for (c, k) in HELD_OUT {
            let (ci, ki) = parse_label(&format!("{c} {k}")).unwrap();
            assert!(test.labels.contains(&label(ci, ki)), "{c} {k} not in test");
        }
    }

    #[test]
    fn colouring_is_deterministic_and_brightness_gives_the_item_back() {
        let g = gray(50);
        let a = colourise(&g, true, 3);
        assert_eq!(a, colourise(&g, true, 3));
        assert_ne!(a.labels, colourise(&g, true, 4).labels);
        assert_eq!((a.height, a.width, a.channels), (32, 32, 3));
        assert_eq!(a.pixels.len(), 50 * 32 * 32 * 3);
        for i in 0..50 {
            let rgb = &a.pixels[i * 32 * 32 * 3..(i + 1) * 32 * 32 * 3];
            assert_eq!(
                brightness(rgb),
                &g.pixels[i * 784..(i + 1) * 784],
                "image {i}"
            );
            // The border stays black.
            assert!(rgb[..32 * 3 * 2].iter().all(|v| *v == 0));
        }
    }

    #[test]
    fn the_pixel_measure_reads_every_tint_at_every_brightness_and_under_noise() {
        let g = gray(300);
        let set = colourise(&g, false, 1);
        let noise = NoiseSource::new(9);
        let d = 32 * 32 * 3;
        for i in 0..set.len() {
            let (c, _) = pair(set.labels[i]);
            let rgb = &set.pixels[i * d..(i + 1) * d];
            let r = read_colour(rgb);
            assert_eq!(r.colour, Some(c), "image {i}: {r:?}");
            assert!(r.distance < 0.02, "{r:?}");
            // Two thirds as bright, and with pixel noise of std 20 levels: still the same colour.
            let dim: Vec<u8> = rgb.iter().map(|v| (u16::from(*v) * 2 / 3) as u8).collect();
            assert_eq!(read_colour(&dim).colour, Some(c));
            let z = noise.normals(Stream::Other, 0, i as u64..i as u64 + 1, d);
            let noisy: Vec<u8> = rgb
                .iter()
                .zip(z)
                .map(|(v, z)| (f64::from(*v) + 20.0 * z).clamp(0.0, 255.0) as u8)
                .collect();
            assert_eq!(read_colour(&noisy).colour, Some(c), "noisy image {i}");
        }
        assert_eq!(read_colour(&[0u8; 32 * 32 * 3]).colour, None);
        assert_eq!(read_colour(&[10u8; 32 * 32 * 3]).coverage, 0.0);
    }

    #[test]
    fn captions_name_the_colour_and_the_item_in_varied_words() {
        for l in 0..PAIRS {
            let (c, k) = pair(l);
            let caps = captions(c, k);
            let (singular, plural) = nouns(k);
            let per_plural = if in_pairs(k) { 4 } else { 3 };
            assert_eq!(
                caps.len(),
                3 * (6 * singular.len() + per_plural * plural.len())
            );
            let mut unique = caps.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), caps.len(), "{}", label_names()[l]);
            for s in &caps {
                assert!(COLOURS[c].words.iter().any(|w| s.contains(w)), "{s}");
                assert!(singular.iter().chain(plural).any(|w| s.contains(w)), "{s}");
                assert!(!s.contains("  ") && !s.starts_with(' '), "{s:?}");
                let words: Vec<&str> = s.split(' ').collect();
                for w in words.windows(2) {
                    let vowel = w[1].starts_with(['a', 'e', 'i', 'o', 'u']);
                    assert!(!(w[0] == "a" && vowel || w[0] == "an" && !vowel), "{s}");
                }
            }
        }
        assert!(captions(0, 5).contains(&"a red sandal".to_string()));
        assert!(captions(6, 4).contains(&"an ivory coat".to_string()));
        assert!(captions(0, 1).contains(&"red trousers".to_string()));
        assert!(captions(0, 1).contains(&"trousers in red".to_string()));
        assert!(captions(0, 1).contains(&"a red trouser".to_string()));
        assert!(captions(0, 1).contains(&"a pair of red jeans".to_string()));
        assert!(captions(4, 5).contains(&"blue sandals".to_string()));
        assert!(captions(4, 9).contains(&"an ankle boot in cobalt".to_string()));
        // Plain prompts are captions.
        for l in 0..PAIRS {
            let (c, k) = pair(l);
            assert!(
                captions(c, k).contains(&plain_prompt(c, k)),
                "{}",
                plain_prompt(c, k)
            );
        }
        assert_eq!(plain_prompt(0, 1), "red trousers");
        assert_eq!(plain_prompt(6, 9), "a white ankle boot");
    }
}
