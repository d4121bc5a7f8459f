//! Image data sets: grayscale images of one size with a class each, read from IDX files
//! (MNIST, Fashion-MNIST; gzipped or not), scikit-learn's 8x8 digits (compiled in), or a folder
//! of PNG/JPEG files with one sub-folder per class. Pixels are 8-bit; models see them as
//! v / 127.5 - 1 in [-1, 1], row by row.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::{DataError, Result};

/// Where the Debian package `dataset-fashion-mnist` puts its files.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Where `--data mnist` reads MNIST: `$DIFFUSE_MNIST`, else where `scripts/mnist.sh` installs
/// it, `$XDG_DATA_HOME/diffuse/mnist` (default `~/.local/share/diffuse/mnist`).
pub fn mnist_dir() -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    if let Some(dir) = std::env::var_os("DIFFUSE_MNIST") {
        return Some(PathBuf::from(dir));
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(data.join("diffuse/mnist"))
}

/// Fashion-MNIST's classes, in label order.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle-boot",
];

/// scikit-learn's digits (the UCI optical digits test set: 1797 images, 8x8, values 0..16, and
/// the digit), as shipped in scikit-learn 1.9.1 (`sklearn/datasets/data/digits.csv.gz`).
const DIGITS_CSV_GZ: &[u8] = include_bytes!("../assets/digits.csv.gz");

/// Images of one size, each with a class.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSet {
    /// Rows of pixels.
    pub height: usize,
    /// Pixels per row.
    pub width: usize,
    /// 1 (gray) or 3 (RGB, interleaved as in a PNG).
    pub channels: usize,
    /// `len() x height x width x channels` pixels, row-major.
    pub pixels: Vec<u8>,
    /// Each image's class, an index into `classes`.
    pub labels: Vec<usize>,
    /// Class names.
    pub classes: Vec<String>,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Values per image (the data dimension): height x width x channels.
    pub fn dim(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// Image `i` in model units, v / 127.5 - 1.
    pub fn unit_row(&self, i: usize) -> impl Iterator<Item = f64> + '_ {
        let d = self.dim();
        self.pixels[i * d..(i + 1) * d]
            .iter()
            .map(|v| f64::from(*v) / 127.5 - 1.0)
    }

    fn check(self, what: &str) -> Result<Self> {
        if self.is_empty() {
            return Err(DataError::Spec(format!("{what}: no images")));
        }
        if let Some(l) = self.labels.iter().find(|l| **l >= self.classes.len()) {
            return Err(DataError::Spec(format!(
                "{what}: label {l} but only {} classes",
                self.classes.len()
            )));
        }
        Ok(self)
    }
}

/// Model units back to 8-bit pixels (clamped to [-1, 1] first).
pub fn to_pixels(values: &[f64]) -> Vec<u8> {
    values
        .iter()
        .map(|v| ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8)
        .collect()
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn bad(path: &Path, message: impl Into<String>) -> DataError {
    DataError::Content {
        path: path.display().to_string(),
        line: 0,
        message: message.into(),
    }
}

/// The bytes of a file, gunzipped when it starts with gzip's magic number.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(io(path))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = vec![];
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| bad(path, format!("not a valid gzip file ({e})")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// An IDX file of unsigned bytes: its dimensions and its data.
pub fn read_idx(path: &Path) -> Result<(Vec<usize>, Vec<u8>)> {
    let bytes = read_maybe_gz(path)?;
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad(path, "not an IDX file (bad magic number)"));
    }
    if bytes[2] != 0x08 {
        return Err(bad(
            path,
            format!("IDX data type 0x{:02x} is not unsigned bytes", bytes[2]),
        ));
    }
    let rank = usize::from(bytes[3]);
    let header = 4 + 4 * rank;
    if rank == 0 || bytes.len() < header {
        return Err(bad(path, "truncated IDX header"));
    }
    let dims: Vec<usize> = (0..rank)
        .map(|k| {
            let b = &bytes[4 + 4 * k..8 + 4 * k];
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
        })
        .collect();
    let size = dims.iter().product::<usize>();
    if bytes.len() - header != size {
        return Err(bad(
            path,
            format!(
                "IDX dimensions {dims:?} need {size} bytes of data, the file has {} (truncated?)",
                bytes.len() - header
            ),
        ));
    }
    Ok((dims, bytes[header..].to_vec()))
}

/// The first of `names` (with or without `.gz`) that exists in `dir`.
fn find(dir: &Path, names: &[String]) -> Result<PathBuf> {
    for n in names {
        for candidate in [dir.join(n), dir.join(format!("{n}.gz"))] {
            if candidate.exists() {
                return Ok(candidate);
            }
        }
    }
    Err(DataError::Spec(format!(
        "{}: no {} (or .gz) there",
        dir.display(),
        names.join(" or ")
    )))
}

/// The `split` ("train" or "t10k") of an MNIST-style folder of IDX files, with class names
/// `classes` (or the label numbers when None).
pub fn read_idx_dir(dir: &Path, split: &str, classes: Option<&[&str]>) -> Result<ImageSet> {
    let images = find(
        dir,
        &[
            format!("{split}-images-idx3-ubyte"),
            format!("{split}-images.idx3-ubyte"),
        ],
    )?;
    let labels = find(
        dir,
        &[
            format!("{split}-labels-idx1-ubyte"),
            format!("{split}-labels.idx1-ubyte"),
        ],
    )?;
    let (dims, pixels) = read_idx(&images)?;
    let [n, height, width] = dims[..] else {
        return Err(bad(
            &images,
            format!("images need 3 dimensions, not {dims:?}"),
        ));
    };
    let labels_path = labels;
    let (ldims, l) = read_idx(&labels_path)?;
    if ldims != [n] {
        return Err(bad(
            &labels_path,
            format!("{ldims:?} labels for {n} images in {}", images.display()),
        ));
    }
    let labels: Vec<usize> = l.into_iter().map(usize::from).collect();
    let classes: Vec<String> = match classes {
        Some(c) => c.iter().map(|s| s.to_string()).collect(),
        None => {
            // Unnamed classes are numbered 0..K-1: a label beyond them (a 200 among ten
            // classes) would make classes that have no image.
            let k = labels.iter().copied().max().map_or(0, |m| m + 1);
            let mut seen = vec![false; k];
            for &l in &labels {
                seen[l] = true;
            }
            if let Some(empty) = seen.iter().position(|s| !s) {
                return Err(bad(
                    &labels_path,
                    format!(
                        "the labels run up to {} but no image has label {empty}: an IDX label \
                         file numbers its classes 0..K-1",
                        k - 1
                    ),
                ));
            }
            (0..k).map(|k| k.to_string()).collect()
        }
    };
    ImageSet {
        height,
        width,
        channels: 1,
        pixels,
        labels,
        classes,
    }
    .check(&dir.display().to_string())
}

/// scikit-learn's 8x8 digits, pixels scaled from 0..16 to 0..255.
pub fn digits() -> Result<ImageSet> {
    let what = Path::new("digits.csv.gz (compiled in)");
    let mut text = String::new();
    flate2::read::GzDecoder::new(DIGITS_CSV_GZ)
        .read_to_string(&mut text)
        .map_err(|e| bad(what, e.to_string()))?;
    let (mut pixels, mut labels) = (vec![], vec![]);
    for (i, line) in text.lines().enumerate() {
        let v: Vec<u8> = line
            .split(',')
            .map(|s| s.trim().parse::<u8>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| bad(what, format!("line {}: {e}", i + 1)))?;
        if v.len() != 65 {
            return Err(bad(what, format!("line {}: {} values", i + 1, v.len())));
        }
        pixels.extend(v[..64].iter().map(|p| (u16::from(*p) * 255 / 16) as u8));
        labels.push(usize::from(v[64]));
    }
    ImageSet {
        height: 8,
        width: 8,
        channels: 1,
        pixels,
        labels,
        classes: (0..10).map(|k| k.to_string()).collect(),
    }
    .check("digits")
}

/// A folder with one sub-folder of PNG/JPEG images per class (sorted by name), converted to
/// grayscale. Every image must have the size of the first; an empty class folder, an unreadable
/// image or one of another size is an error naming the file.
pub fn read_image_folder(dir: &Path) -> Result<ImageSet> {
    let mut class_dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    class_dirs.sort();
    if class_dirs.is_empty() {
        return Err(DataError::Spec(format!(
            "{}: no class folders (expected one sub-folder of images per class)",
            dir.display()
        )));
    }
    let (mut pixels, mut labels, mut classes) = (vec![], vec![], vec![]);
    let mut size: Option<(u32, u32, PathBuf)> = None;
    for (k, class_dir) in class_dirs.iter().enumerate() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(class_dir)
            .map_err(io(class_dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg")
                })
            })
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(DataError::Spec(format!(
                "{}: an empty class folder (no .png, .jpg or .jpeg files)",
                class_dir.display()
            )));
        }
        for f in files {
            let img = image::open(&f)
                .map_err(|e| bad(&f, format!("not a readable image ({e})")))?
                .to_luma8();
            let (w, h) = img.dimensions();
            match &size {
                None => size = Some((w, h, f.clone())),
                Some((w0, h0, first)) if (*w0, *h0) != (w, h) => {
                    return Err(bad(
                        &f,
                        format!(
                            "{w}x{h} pixels, but {} is {w0}x{h0}: all images must have one size",
                            first.display()
                        ),
                    ));
                }
                _ => {}
            }
            pixels.extend_from_slice(img.as_raw());
            labels.push(k);
        }
        classes.push(
            class_dir
                .file_name()
                .map_or_else(|| k.to_string(), |n| n.to_string_lossy().into_owned()),
        );
    }
    let (w, h, _) = size.expect("at least one image was read");
    ImageSet {
        height: h as usize,
        width: w as usize,
        channels: 1,
        pixels,
        labels,
        classes,
    }
    .check(&dir.display().to_string())
}

/// 8-bit pixels as the bytes of a PNG file: `channels` 1 (gray) or 3 (RGB, interleaved). The
/// same bytes [`write_png`] writes, for front ends that serve images rather than write them.
pub fn encode_png(pixels: &[u8], width: usize, height: usize, channels: usize) -> Result<Vec<u8>> {
    let here = Path::new("<png>");
    let color = match channels {
        1 => image::ColorType::L8,
        3 => image::ColorType::Rgb8,
        c => return Err(bad(here, format!("cannot write {c}-channel images"))),
    };
    if pixels.len() != width * height * channels {
        return Err(bad(
            here,
            format!(
                "{} pixel values for a {width}x{height}x{channels} image",
                pixels.len()
            ),
        ));
    }
    let mut out = std::io::Cursor::new(vec![]);
    image::write_buffer_with_format(
        &mut out,
        pixels,
        width as u32,
        height as u32,
        color,
        image::ImageFormat::Png,
    )
    .map_err(|e| bad(here, format!("cannot encode the image ({e})")))?;
    Ok(out.into_inner())
}

/// Writes 8-bit pixels as a PNG ([`encode_png`]), through a temporary file: `channels` 1 (gray)
/// or 3 (RGB, interleaved).
pub fn write_png(
    path: &Path,
    pixels: &[u8],
    width: usize,
    height: usize,
    channels: usize,
) -> Result<()> {
    let bytes = encode_png(pixels, width, height, channels).map_err(|e| match e {
        DataError::Content { message, .. } => bad(path, message),
        e => e,
    })?;
    let tmp = path.with_extension("png.tmp");
    std::fs::write(&tmp, bytes).map_err(io(path))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// An image file (PNG or JPEG) as 8-bit RGB: `(width, height, pixels)`, interleaved.
pub fn read_rgb(path: &Path) -> Result<(usize, usize, Vec<u8>)> {
    let img = image::open(path)
        .map_err(|e| bad(path, format!("not a readable image ({e})")))?
        .to_rgb8();
    let (w, h) = img.dimensions();
    Ok((w as usize, h as usize, img.into_raw()))
}

/// Writes 8-bit frames (each `width x height`, `channels` 1 or 3) as a looping GIF,
/// atomically; frame k shows for `delays[k]` hundredths of a second (the last delay repeats for
/// missing entries). Colour frames are quantised to a 256-colour palette each.
pub fn write_gif(
    path: &Path,
    frames: &[Vec<u8>],
    width: usize,
    height: usize,
    channels: usize,
    delays: &[u16],
) -> Result<()> {
    let (w, h) = (
        u16::try_from(width).map_err(|_| bad(path, "a GIF is at most 65535 pixels wide"))?,
        u16::try_from(height).map_err(|_| bad(path, "a GIF is at most 65535 pixels high"))?,
    );
    if !matches!(channels, 1 | 3) {
        return Err(bad(path, format!("cannot write {channels}-channel frames")));
    }
    if frames.is_empty() || frames.iter().any(|f| f.len() != width * height * channels) {
        return Err(bad(path, "every frame must have width x height pixels"));
    }
    // Gray frames: a palette of the 256 grays, pixel values are palette indices.
    let palette: Vec<u8> = (0..=255u8).flat_map(|v| [v, v, v]).collect();
    let tmp = path.with_extension("gif.tmp");
    let file = std::fs::File::create(&tmp).map_err(io(path))?;
    let gif_err = |e: gif::EncodingError| bad(path, format!("cannot write the animation ({e})"));
    let global: &[u8] = if channels == 1 { &palette } else { &[] };
    let mut enc =
        gif::Encoder::new(std::io::BufWriter::new(file), w, h, global).map_err(gif_err)?;
    enc.set_repeat(gif::Repeat::Infinite).map_err(gif_err)?;
    for (k, f) in frames.iter().enumerate() {
        let mut frame = if channels == 1 {
            gif::Frame::from_indexed_pixels(w, h, f.clone(), None)
        } else {
            gif::Frame::from_rgb_speed(w, h, f, 10)
        };
        frame.delay = delays.get(k).or(delays.last()).copied().unwrap_or(10);
        enc.write_frame(&frame).map_err(gif_err)?;
    }
    drop(enc);
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Tiles images (each `height x width` with `channels` interleaved) into a grid of `columns`
/// columns with a 1-pixel gap, scaled up by an integer factor so that each tile is at least 56
/// pixels wide.
pub fn grid(
    images: &[Vec<u8>],
    width: usize,
    height: usize,
    channels: usize,
    columns: usize,
) -> (Vec<u8>, usize, usize) {
    let columns = columns.clamp(1, images.len().max(1));
    let rows = images.len().div_ceil(columns);
    let scale = 56usize.div_ceil(width.max(1)).max(1);
    let (tw, th) = (width * scale + 1, height * scale + 1);
    let (gw, gh) = (columns * tw + 1, rows * th + 1);
    let c = channels;
    let mut out = vec![128u8; gw * gh * c];
    for (k, img) in images.iter().enumerate() {
        let (x0, y0) = ((k % columns) * tw + 1, (k / columns) * th + 1);
        for y in 0..height * scale {
            for x in 0..width * scale {
                let from = ((y / scale) * width + x / scale) * c;
                let to = ((y0 + y) * gw + x0 + x) * c;
                out[to..to + c].copy_from_slice(&img[from..from + c]);
            }
        }
    }
    (out, gw, gh)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GIF of two frames decodes back to the same gray levels.
    #[test]
    fn gifs_round_trip() {
        let dir = std::env::temp_dir().join(format!("diffuse-gif-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.gif");
        let frames = vec![
            (0..12u8).map(|v| v * 20).collect::<Vec<u8>>(),
            vec![255; 12],
        ];
        write_gif(&path, &frames, 4, 3, 1, &[5, 50]).unwrap();
        let mut opts = gif::DecodeOptions::new();
        opts.set_color_output(gif::ColorOutput::RGBA);
        let mut dec = opts.read_info(std::fs::File::open(&path).unwrap()).unwrap();
        let mut back = vec![];
        while let Some(f) = dec.read_next_frame().unwrap() {
            back.push((
                f.buffer.chunks(4).map(|p| p[0]).collect::<Vec<u8>>(),
                f.delay,
            ));
        }
        assert_eq!(back, vec![(frames[0].clone(), 5), (frames[1].clone(), 50)]);
        assert!(write_gif(&path, &[vec![0; 5]], 4, 3, 1, &[1]).is_err());
    }

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            v.extend(d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("diffuse-images-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn idx_files_are_read_plain_or_gzipped_and_checked() {
        let dir = tmp("idx");
        let pixels: Vec<u8> = (0..2 * 3 * 4).map(|v| v as u8).collect();
        std::fs::write(
            dir.join("train-images-idx3-ubyte"),
            idx(&[2, 3, 4], &pixels),
        )
        .unwrap();
        let mut gz = flate2::write::GzEncoder::new(vec![], flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &idx(&[2], &[1, 0])).unwrap();
        std::fs::write(dir.join("train-labels-idx1-ubyte.gz"), gz.finish().unwrap()).unwrap();
        let set = read_idx_dir(&dir, "train", None).unwrap();
        assert_eq!((set.len(), set.height, set.width), (2, 3, 4));
        assert_eq!(set.pixels, pixels);
        assert_eq!(set.labels, vec![1, 0]);
        assert_eq!(set.classes, vec!["0", "1"]);
        assert_eq!(set.unit_row(1).next(), Some(12.0 / 127.5 - 1.0));
        // Truncated data, a wrong magic number, labels that do not match: errors naming the file.
        std::fs::write(
            dir.join("train-images-idx3-ubyte"),
            idx(&[2, 3, 4], &pixels[..20]),
        )
        .unwrap();
        let e = read_idx_dir(&dir, "train", None).unwrap_err().to_string();
        assert!(
            e.contains("train-images-idx3-ubyte") && e.contains("truncated"),
            "{e}"
        );
        std::fs::write(dir.join("train-images-idx3-ubyte"), b"PK\x03\x04 not idx").unwrap();
        let e = read_idx_dir(&dir, "train", None).unwrap_err().to_string();
        assert!(e.contains("bad magic number"), "{e}");
        std::fs::write(
            dir.join("train-images-idx3-ubyte"),
            idx(&[3, 1, 1], &[0, 0, 0]),
        )
        .unwrap();
        let e = read_idx_dir(&dir, "train", None).unwrap_err().to_string();
        assert!(e.contains("labels for 3 images"), "{e}");
        // A label 200 among labels 0 and 1 would make 198 classes without an image.
        std::fs::write(
            dir.join("train-images-idx3-ubyte"),
            idx(&[3, 1, 1], &[0, 0, 0]),
        )
        .unwrap();
        std::fs::remove_file(dir.join("train-labels-idx1-ubyte.gz")).unwrap();
        std::fs::write(dir.join("train-labels-idx1-ubyte"), idx(&[3], &[0, 1, 200])).unwrap();
        let e = read_idx_dir(&dir, "train", None).unwrap_err().to_string();
        assert!(
            e.contains("train-labels-idx1-ubyte") && e.contains("no image has label 2"),
            "{e}"
        );
        let e = read_idx_dir(&dir, "t10k", None).unwrap_err().to_string();
        assert!(e.contains("no t10k-images"), "{e}");
    }

    #[test]
    fn the_digits_are_1797_8x8_images_of_ten_classes() {
        let d = digits().unwrap();
        assert_eq!(
            (d.len(), d.height, d.width, d.classes.len()),
            (1797, 8, 8, 10)
        );
        // The first is a 0; counts per class are 174 to 183 (scikit-learn's description).
        assert_eq!(d.labels[0], 0);
        for k in 0..10 {
            let c = d.labels.iter().filter(|l| **l == k).count();
            assert!((174..=183).contains(&c), "class {k}: {c}");
        }
        assert!(d.pixels.contains(&255) && d.pixels.contains(&0));
    }

    #[test]
    fn image_folders_are_read_and_bad_ones_refused() {
        let dir = tmp("folder");
        for (class, shade) in [("cat", 10u8), ("dog", 200)] {
            std::fs::create_dir_all(dir.join(class)).unwrap();
            for i in 0..2 {
                let px = vec![shade + i; 6 * 5];
                write_png(&dir.join(class).join(format!("{i}.png")), &px, 6, 5, 1).unwrap();
            }
        }
        let set = read_image_folder(&dir).unwrap();
        assert_eq!((set.len(), set.width, set.height), (4, 6, 5));
        assert_eq!(set.classes, vec!["cat", "dog"]);
        assert_eq!(set.labels, vec![0, 0, 1, 1]);
        assert_eq!(set.pixels[30], 11);
        // A wrong-size image, a corrupt file, an empty class folder.
        write_png(&dir.join("dog").join("big.png"), &[0; 49], 7, 7, 1).unwrap();
        let e = read_image_folder(&dir).unwrap_err().to_string();
        assert!(e.contains("big.png") && e.contains("7x7"), "{e}");
        std::fs::remove_file(dir.join("dog").join("big.png")).unwrap();
        std::fs::write(dir.join("cat").join("broken.png"), b"\x89PNG not really").unwrap();
        let e = read_image_folder(&dir).unwrap_err().to_string();
        assert!(
            e.contains("broken.png") && e.contains("not a readable image"),
            "{e}"
        );
        std::fs::remove_file(dir.join("cat").join("broken.png")).unwrap();
        std::fs::create_dir_all(dir.join("empty")).unwrap();
        let e = read_image_folder(&dir).unwrap_err().to_string();
        assert!(
            e.contains("empty") && e.contains("empty class folder"),
            "{e}"
        );
    }

    #[test]
    fn pixels_round_trip_through_model_units_and_grids_tile() {
        let px: Vec<u8> = (0..=255).collect();
        let unit: Vec<f64> = px.iter().map(|v| f64::from(*v) / 127.5 - 1.0).collect();
        assert_eq!(to_pixels(&unit), px);
        assert_eq!(to_pixels(&[-3.0, 3.0, 0.0]), vec![0, 255, 128]);
        let (g, w, h) = grid(&[vec![0; 4], vec![255; 4], vec![9; 4]], 2, 2, 1, 2);
        // 28x scale for 2-pixel images: tiles of 56 + 1 gap.
        assert_eq!((w, h), (2 * 57 + 1, 2 * 57 + 1));
        assert_eq!(g[w + 1], 0);
        assert_eq!(g[w + 58], 255);
        assert_eq!(g[58 * w + 1], 9);
        assert_eq!(g[58 * w + 58], 128); // the empty fourth tile
    }
}
