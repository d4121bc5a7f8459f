//! The colour data set built from the real Fashion-MNIST (installed by scripts/system-packages.sh):
//! the pixel measure reads every image's own colour, brightness gives back every item, and the
//! held-out pairs are absent from training and present in the test split.

use diffuse_data::colour::{self, HELD_OUT, PAIRS};
use diffuse_data::{Dataset, Source};

fn images(spec: &str) -> diffuse_data::images::ImageSet {
    match Dataset::parse(spec).expect(spec).source {
        Source::Images(im) => im,
        _ => unreachable!("an image set"),
    }
}

#[test]
fn every_colour_fashion_image_reads_as_its_colour_and_its_item() {
    let gray = images("fashion-mnist-test");
    for (spec, train) in [("colour-fashion", true), ("colour-fashion-test", false)] {
        let set = images(spec);
        assert_eq!((set.height, set.width, set.channels), (32, 32, 3));
        assert_eq!(set.classes.len(), PAIRS);
        let d = set.dim();
        let mut wrong = 0;
        let mut counts = vec![0usize; PAIRS];
        for i in 0..set.len() {
            let (c, k) = colour::pair(set.labels[i]);
            counts[set.labels[i]] += 1;
            let r = colour::read_colour(&set.pixels[i * d..(i + 1) * d]);
            if r.colour != Some(c) {
                wrong += 1;
            }
            assert!(!(train && colour::is_held_out(c, k)));
            if !train {
                assert_eq!(
                    colour::brightness(&set.pixels[i * d..(i + 1) * d]),
                    &gray.pixels[i * 784..(i + 1) * 784]
                );
            }
        }
        assert_eq!(wrong, 0, "{spec}: {wrong} of {} misread", set.len());
        if !train {
            for (c, k) in HELD_OUT {
                let (ci, ki) = colour::parse_label(&format!("{c} {k}")).unwrap();
                // 1,000 test images per class over 7 colours: ~143 each.
                assert!(counts[colour::label(ci, ki)] > 100, "{c} {k}");
            }
        }
    }
}
