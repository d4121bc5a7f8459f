//! The judge of colour Fashion-MNIST pictures on real test images written as a sample folder:
//! every colour read right, the class by the shipped classifier on the brightness, and the asked
//! pair's shares; bad requests named.

use std::path::Path;

use diffuse_data::colour;
use diffuse_data::{Dataset, Source};
use diffuse_pipeline::eval::judge_colour_images;

#[test]
fn test_pictures_are_judged_by_class_and_colour() {
    let Source::Images(set) = Dataset::parse("colour-fashion-test").unwrap().source else {
        unreachable!("images")
    };
    let dir = std::env::temp_dir().join(format!("diffuse-colour-eval-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("images")).unwrap();
    // Forty pictures labelled "red sandal" (a trained pair).
    let (red, sandal) = colour::parse_label("red sandal").unwrap();
    let want = colour::label(red, sandal);
    let d = set.dim();
    let picked: Vec<usize> = (0..set.len())
        .filter(|i| set.labels[*i] == want)
        .take(40)
        .collect();
    assert_eq!(picked.len(), 40);
    for (k, i) in picked.iter().enumerate() {
        let path = dir.join("images").join(format!("{k:04}.png"));
        diffuse_data::images::write_png(&path, &set.pixels[i * d..(i + 1) * d], 32, 32, 3).unwrap();
    }
    let classifier = Path::new("fashion-mnist-classifier");
    let r = judge_colour_images(&dir, Some("red sandal"), classifier).unwrap();
    let get = |k: &str| r.get(k).and_then(|v| v.as_f64()).unwrap();
    assert_eq!(get("colour_accuracy"), 1.0);
    // The shipped classifier is right on 91.4% of Fashion-MNIST's test images, and on sandals
    // more often; 40 real sandals below 80% would mean the brightness is not the item.
    assert!(get("class_accuracy") >= 0.8, "{}", get("class_accuracy"));
    assert_eq!(get("both_accuracy"), get("class_accuracy"));
    assert_eq!(r.get("n").and_then(|v| v.as_u64()), Some(40));
    assert_eq!(
        r.get("held_out_pair").and_then(|v| v.as_bool()),
        Some(false)
    );
    let e = format!(
        "{:#}",
        judge_colour_images(&dir, Some("sandal"), classifier).unwrap_err()
    );
    assert!(e.contains("a colour and a class"), "{e}");
    // Pictures of another size are named.
    diffuse_data::images::write_png(&dir.join("images/9999.png"), &[0u8; 28 * 28 * 3], 28, 28, 3)
        .unwrap();
    let e = format!(
        "{:#}",
        judge_colour_images(&dir, None, classifier).unwrap_err()
    );
    assert!(e.contains("9999.png") && e.contains("28x28"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
