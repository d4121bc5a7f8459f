//! What a Stable Diffusion run reads and writes besides the pipeline folder: given latents and
//! tensors in safetensors files, images as 8-bit RGB.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

/// The 4-D tensor named `name` of a safetensors file (f32, f16 or bf16), as f32 on `device`.
pub fn read_tensor4(path: &Path, name: &str, device: &Device) -> Result<Tensor<4>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let file = SafeTensors::deserialize(&bytes)
        .map_err(|e| anyhow!("{}: not a safetensors file ({e})", path.display()))?;
    let view = file.tensor(name).map_err(|_| {
        let names: Vec<String> = file.names().into_iter().map(str::to_string).collect();
        anyhow!(
            "{}: no tensor named {name:?} (it holds {})",
            path.display(),
            if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            }
        )
    })?;
    let shape = view.shape().to_vec();
    let dims: [usize; 4] = shape.clone().try_into().map_err(|_| {
        anyhow!(
            "{}: tensor {name:?} has shape {shape:?}; it must be 4-D [n, channels, height, width]",
            path.display()
        )
    })?;
    let data = view.data();
    let values: Vec<f32> = match view.dtype() {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        other => bail!(
            "{}: tensor {name:?} is {other:?}; f32, f16 or bf16 are read",
            path.display()
        ),
    };
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        bail!(
            "{}: tensor {name:?} holds a non-finite value (element {i})",
            path.display()
        );
    }
    Ok(Tensor::from_data(TensorData::new(values, dims), device))
}

/// Writes f32 tensors to a safetensors file, through a temporary file in the same folder.
pub fn write_tensors<const D: usize>(path: &Path, tensors: &[(&str, &Tensor<D>)]) -> Result<()> {
    let mut owned = vec![];
    for (name, t) in tensors {
        let values: Vec<f32> = (*t)
            .clone()
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| anyhow!("{name}: {e:?}"))?;
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        owned.push((name.to_string(), t.dims().to_vec(), bytes));
    }
    let views: Vec<(String, TensorView<'_>)> = owned
        .iter()
        .map(|(n, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes).map(|v| (n.clone(), v))
        })
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let tmp = path.with_extension("safetensors.tmp");
    safetensors::serialize_to_file(views, None, &tmp)
        .map_err(|e| anyhow!("{}: cannot write ({e})", path.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("{}: cannot write", path.display()))
}

/// An image file as a `[1, 3, H, W]` tensor in [-1, 1], the VAE's input.
pub fn read_image(path: &Path, device: &Device) -> Result<Tensor<4>> {
    let (w, h, rgb) = diffuse_data::images::read_rgb(path)?;
    let mut planar = vec![0f32; 3 * w * h];
    for (i, px) in rgb.chunks_exact(3).enumerate() {
        for c in 0..3 {
            planar[c * w * h + i] = f32::from(px[c]) / 127.5 - 1.0;
        }
    }
    Ok(Tensor::from_data(
        TensorData::new(planar, [1, 3, h, w]),
        device,
    ))
}

/// Images `[n, 3, H, W]` in [0, 1] as 8-bit interleaved RGB, rounded (not truncated), as
/// diffusers' `numpy_to_pil` does.
pub fn to_rgb8(images: &Tensor<4>) -> Result<Vec<Vec<u8>>> {
    let [n, c, h, w] = images.dims();
    if c != 3 {
        bail!("images must have 3 channels, not {c}");
    }
    let values: Vec<f32> = images
        .clone()
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| anyhow!("images: {e:?}"))?;
    Ok(values
        .chunks_exact(3 * h * w)
        .take(n)
        .map(|img| {
            let mut out = vec![0u8; 3 * h * w];
            for i in 0..h * w {
                for ch in 0..3 {
                    out[3 * i + ch] = (img[ch * h * w + i].clamp(0.0, 1.0) * 255.0).round() as u8;
                }
            }
            out
        })
        .collect())
}
