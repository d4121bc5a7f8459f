//! The weights of one component of a diffusers folder (`unet/`, `vae/`, `text_encoder/`):
//! safetensors files memory-mapped, one file, a variant (`*.fp16.safetensors`) or shards listed in
//! a `*.safetensors.index.json`. A tensor is converted to f32 only when a module asks for it, by
//! name and with the shape its config implies, so a 3.4 GB UNet is never held twice.
//!
//! [`Weights::fresh`] is the other source: every tensor a module asks for is made on the spot
//! with PyTorch's default initialisation, as a trainable parameter, so that the same constructor
//! builds a network to train here. [`Weights::names`] remembers which parameter carries which
//! diffusers name, and [`save_named`] writes a trained network back under those names.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::tensor::{Device, Tensor, TensorData};
use diffuse_core::{NoiseSource, Stream};
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use crate::{NnError, Result};

/// Where a tensor is in its file: dtype, shape, byte range within the data section.
type Entry = (Dtype, Vec<usize>, (usize, usize));

/// One mapped file and its parsed header.
struct Mapped {
    path: PathBuf,
    map: Mmap,
    /// Bytes before the data section (8 + header length).
    start: usize,
    /// Name -> (dtype, shape, byte range within the data section).
    tensors: BTreeMap<String, Entry>,
}

/// The tensors of one component, by name.
pub struct Weights {
    dir: PathBuf,
    files: Vec<Mapped>,
    /// Name -> index into `files`.
    index: BTreeMap<String, usize>,
    device: Device,
    used: RefCell<BTreeSet<String>>,
    /// Set for [`Weights::fresh`]: tensors are made, not read.
    fresh: Option<Fresh>,
    /// Every parameter handed out: its id, its diffusers name, and whether the module keeps it
    /// transposed (a linear layer's `[in, out]`).
    names: RefCell<Vec<(ParamId, String, bool)>>,
}

/// The state of [`Weights::fresh`].
struct Fresh {
    noise: NoiseSource,
    /// Tensors made so far (each draws from its own stream of the seed).
    made: Cell<u64>,
    /// A layer's fan-in, by the layer's name, for its bias.
    fan_in: RefCell<BTreeMap<String, usize>>,
}

/// Which diffusers name each trainable parameter of a network carries (from [`Weights::names`]).
#[derive(Debug, Clone, Default)]
pub struct ParamNames(Vec<(ParamId, String, bool)>);

impl ParamNames {
    /// Number of named parameters.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no parameter is named.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn fail(path: &Path, message: impl Into<String>) -> NnError {
    NnError::Checkpoint {
        path: path.display().to_string(),
        message: message.into(),
    }
}

impl Weights {
    /// The weights named `stem` in `dir` (`diffusion_pytorch_model` or `model`): the plain file,
    /// else its shards, else a single variant (`fp16`, `bf16`, ...) of either.
    pub fn open(dir: &Path, stem: &str, device: &Device) -> Result<Self> {
        let files = Self::find(dir, stem)?;
        let mut mapped = Vec::with_capacity(files.len());
        let mut index = BTreeMap::new();
        for path in files {
            let file = File::open(&path).map_err(|e| fail(&path, e.to_string()))?;
            // SAFETY: the map is read-only and lives as long as `Weights`; a file changed
            // under a running process would give wrong numbers, as with any reader.
            let map = unsafe { Mmap::map(&file) }.map_err(|e| fail(&path, e.to_string()))?;
            let (n, meta) = SafeTensors::read_metadata(&map).map_err(|e| {
                fail(
                    &path,
                    format!("not a complete safetensors file ({e}); was the download cut short?"),
                )
            })?;
            let tensors = meta
                .tensors()
                .into_iter()
                .map(|(k, info)| (k, (info.dtype, info.shape.clone(), info.data_offsets)))
                .collect::<BTreeMap<_, _>>();
            for name in tensors.keys() {
                index.insert(name.clone(), mapped.len());
            }
            mapped.push(Mapped {
                path,
                map,
                start: 8 + n,
                tensors,
            });
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            files: mapped,
            index,
            device: device.clone(),
            used: RefCell::new(BTreeSet::new()),
            fresh: None,
            names: RefCell::new(vec![]),
        })
    }

    /// Weights made on demand with PyTorch's default initialisation, drawn from `seed` in the
    /// order a constructor asks for them: a weight of rank 2 or more (linear `[out, in]`,
    /// convolution `[out, in, k, k]`) uniform on +-1/sqrt(fan_in) (`kaiming_uniform_` with a =
    /// sqrt 5), its bias the same; a norm's weight (rank 1) ones and its bias zeros. Parameters
    /// are trainable.
    pub fn fresh(seed: u64, device: &Device) -> Self {
        Self {
            dir: PathBuf::from("<new weights>"),
            files: vec![],
            index: BTreeMap::new(),
            device: device.clone(),
            used: RefCell::new(BTreeSet::new()),
            fresh: Some(Fresh {
                noise: NoiseSource::new(seed),
                made: Cell::new(0),
                fan_in: RefCell::new(BTreeMap::new()),
            }),
            names: RefCell::new(vec![]),
        }
    }

    /// The diffusers names of the parameters handed out so far.
    pub fn names(&self) -> ParamNames {
        ParamNames(self.names.borrow().clone())
    }

    /// A new tensor for `name` (see [`Weights::fresh`]).
    fn make<const D: usize>(&self, f: &Fresh, name: &str, shape: [usize; D]) -> Result<Tensor<D>> {
        let n: usize = shape.iter().product();
        let (layer, kind) = name.rsplit_once('.').unwrap_or(("", name));
        let bound = if D >= 2 {
            let fan_in = n / shape[0];
            f.fan_in.borrow_mut().insert(layer.to_string(), fan_in);
            Some(1.0 / (fan_in as f64).sqrt())
        } else {
            match (kind, f.fan_in.borrow().get(layer)) {
                ("bias", Some(fan_in)) => Some(1.0 / (*fan_in as f64).sqrt()),
                _ => None,
            }
        };
        let values: Vec<f32> = match (bound, kind) {
            (Some(b), _) => {
                let k = f.made.get();
                f.made.set(k + 1);
                f.noise
                    .uniforms(Stream::Other, k, 0..n as u64)
                    .iter()
                    .map(|u| ((2.0 * u - 1.0) * b) as f32)
                    .collect()
            }
            (None, "weight") => vec![1.0; n],
            (None, "bias") => vec![0.0; n],
            (None, _) => {
                return Err(fail(
                    &self.dir,
                    format!("no default initialisation for {name} of shape {shape:?}"),
                ));
            }
        };
        Ok(Tensor::from_data(
            TensorData::new(values, shape),
            &self.device,
        ))
    }

    /// The files holding `stem`'s weights, in the order diffusers looks for them.
    fn find(dir: &Path, stem: &str) -> Result<Vec<PathBuf>> {
        if !dir.is_dir() {
            return Err(fail(
                dir,
                "missing (the pipeline folder has no such component)",
            ));
        }
        let single = dir.join(format!("{stem}.safetensors"));
        if single.is_file() {
            return Ok(vec![single]);
        }
        let index = dir.join(format!("{stem}.safetensors.index.json"));
        if index.is_file() {
            return Self::shards(&index);
        }
        // Variants: `{stem}.{v}.safetensors` or `{stem}.safetensors.index.{v}.json`.
        let mut variants = BTreeSet::new();
        let names: Vec<String> = std::fs::read_dir(dir)
            .map_err(|e| fail(dir, e.to_string()))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        for name in &names {
            if let Some(v) = name
                .strip_prefix(&format!("{stem}."))
                .and_then(|r| r.strip_suffix(".safetensors"))
                .filter(|v| !v.contains('.') && !v.contains('-'))
            {
                variants.insert(v.to_string());
            }
            if let Some(v) = name
                .strip_prefix(&format!("{stem}.safetensors.index."))
                .and_then(|r| r.strip_suffix(".json"))
            {
                variants.insert(v.to_string());
            }
        }
        let Some(variant) = variants.iter().next() else {
            let hint = if names
                .iter()
                .any(|n| n.ends_with(".bin") || n.ends_with(".ckpt"))
            {
                " (PyTorch pickle files are not read: convert them to safetensors)"
            } else {
                ""
            };
            return Err(fail(
                dir,
                format!("no {stem}.safetensors (nor shards or a variant of it){hint}"),
            ));
        };
        if variants.len() > 1 {
            return Err(fail(
                dir,
                format!(
                    "several variants of {stem} ({}) and no plain {stem}.safetensors: keep one",
                    variants.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        let file = dir.join(format!("{stem}.{variant}.safetensors"));
        if file.is_file() {
            return Ok(vec![file]);
        }
        Self::shards(&dir.join(format!("{stem}.safetensors.index.{variant}.json")))
    }

    /// The shard files an index lists, each once, in order.
    fn shards(index: &Path) -> Result<Vec<PathBuf>> {
        #[derive(serde::Deserialize)]
        struct Index {
            weight_map: BTreeMap<String, String>,
        }
        let text = std::fs::read_to_string(index).map_err(|e| fail(index, e.to_string()))?;
        let parsed: Index = serde_json::from_str(&text).map_err(|e| fail(index, e.to_string()))?;
        let dir = index.parent().unwrap_or(Path::new("."));
        let files: BTreeSet<&String> = parsed.weight_map.values().collect();
        let mut out = Vec::new();
        for f in files {
            if f.contains('/') || f.contains("..") {
                return Err(fail(index, format!("shard name {f:?} leaves the folder")));
            }
            let p = dir.join(f);
            if !p.is_file() {
                return Err(fail(index, format!("lists {f}, which is missing")));
            }
            out.push(p);
        }
        Ok(out)
    }

    /// The folder these weights come from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The device tensors are made on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Whether a tensor of this name exists.
    pub fn has(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// The stored shape of a tensor, if it exists.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        let f = &self.files[*self.index.get(name)?];
        f.tensors.get(name).map(|(_, s, _)| s.as_slice())
    }

    /// The tensor `name` as f32, checked against the shape the config implies.
    pub fn tensor<const D: usize>(&self, name: &str, shape: [usize; D]) -> Result<Tensor<D>> {
        if let Some(f) = &self.fresh {
            return self.make(f, name, shape);
        }
        let Some(&i) = self.index.get(name) else {
            return Err(fail(
                &self.dir,
                format!("has no tensor {name} (the config asks for one of shape {shape:?})"),
            ));
        };
        let f = &self.files[i];
        let (dtype, stored, (a, b)) = &f.tensors[name];
        if stored.as_slice() != shape.as_slice() {
            return Err(fail(
                &f.path,
                format!(
                    "tensor {name} has shape {stored:?} where the config needs {shape:?} \
                     (weights of another model than the config describes?)"
                ),
            ));
        }
        let bytes = &f.map[f.start + a..f.start + b];
        let values: Vec<f32> = match dtype {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => {
                return Err(fail(
                    &f.path,
                    format!("tensor {name} is {other:?}; only F32, F16 and BF16 are read"),
                ));
            }
        };
        if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
            return Err(fail(
                &f.path,
                format!("tensor {name} holds a non-finite value at flat index {bad}"),
            ));
        }
        self.used.borrow_mut().insert(name.to_string());
        Ok(Tensor::from_data(
            TensorData::new(values, shape),
            &self.device,
        ))
    }

    /// A parameter made from [`Weights::tensor`]: constant (no gradient) when read from files,
    /// trainable when fresh.
    pub fn param<const D: usize>(&self, name: &str, shape: [usize; D]) -> Result<Param<Tensor<D>>> {
        Ok(self.param_of(name, self.tensor(name, shape)?, false))
    }

    /// `value` (the tensor `name`, transposed when `transposed`) as a parameter, its name
    /// remembered for [`save_named`].
    pub fn param_of<const D: usize>(
        &self,
        name: &str,
        value: Tensor<D>,
        transposed: bool,
    ) -> Param<Tensor<D>> {
        let p = Param::from_tensor(value).set_require_grad(self.fresh.is_some());
        self.names
            .borrow_mut()
            .push((p.id, name.to_string(), transposed));
        p
    }

    /// Tensors stored but never asked for (other than bookkeeping such as `position_ids`).
    pub fn unused(&self) -> Vec<String> {
        let used = self.used.borrow();
        self.index
            .keys()
            .filter(|k| !used.contains(*k) && !k.ends_with("position_ids"))
            .cloned()
            .collect()
    }

    /// Fails naming the first stored tensor nothing read: weights of a richer model than the
    /// config describes would otherwise be dropped without a word.
    pub fn all_used(&self) -> Result<()> {
        let unused = self.unused();
        match unused.first() {
            None => Ok(()),
            Some(first) => Err(fail(
                &self.dir,
                format!(
                    "{} stored tensor(s) the config has no place for, first {first}",
                    unused.len()
                ),
            )),
        }
    }
}

/// Collects every float parameter's value by id.
struct Collect(BTreeMap<ParamId, TensorData>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.insert(param.id, param.val().into_data());
    }
}

/// The parameters of `module` under their diffusers names (`names` from the [`Weights`] that
/// built it), as the bytes of one safetensors file, sorted by name: what
/// `diffusion_pytorch_model.safetensors` holds. Fails naming a parameter `names` does not know.
pub fn named_bytes<M: Module>(module: &M, names: &ParamNames) -> Result<Vec<u8>> {
    let here = Path::new("<safetensors>");
    let mut values = Collect(BTreeMap::new());
    module.visit(&mut values);
    let mut named: BTreeMap<String, (Vec<usize>, Vec<u8>)> = BTreeMap::new();
    for (id, name, transposed) in &names.0 {
        let Some(data) = values.0.remove(id) else {
            return Err(fail(
                here,
                format!("{name} is not a parameter of this network"),
            ));
        };
        let shape = data.shape().to_vec();
        let v: Vec<f32> = data
            .try_to_vec::<f32>()
            .map_err(|e| fail(here, format!("{name}: {e:?}")))?;
        let (shape, v) = if *transposed {
            let [r, c] = shape[..] else {
                return Err(fail(
                    here,
                    format!("{name}: only a matrix is stored transposed"),
                ));
            };
            let mut t = vec![0f32; v.len()];
            for i in 0..r {
                for j in 0..c {
                    t[j * r + i] = v[i * c + j];
                }
            }
            (vec![c, r], t)
        } else {
            (shape, v)
        };
        let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        named.insert(name.clone(), (shape, bytes));
    }
    if !values.0.is_empty() {
        return Err(fail(
            here,
            format!(
                "{} parameter(s) of the network have no name",
                values.0.len()
            ),
        ));
    }
    let views = named
        .iter()
        .map(|(k, (shape, bytes))| {
            safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|v| (k.clone(), v))
                .map_err(|e| fail(here, format!("{k}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, None).map_err(|e| fail(here, e.to_string()))
}
