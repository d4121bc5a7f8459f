//! CLIP's tokenizer as Stable Diffusion pipelines use it: byte-level BPE with `</w>` ending each
//! word, text lower-cased with runs of white space made one space, `<|startoftext|>` and
//! `<|endoftext|>` around the tokens, then padded to `model_max_length` (77) with the folder's pad
//! token (`<|endoftext|>` in SD 1.x, `!` in SD 2.x). Longer prompts are cut to the first 75
//! tokens, keeping the closing `<|endoftext|>`, as diffusers cuts them, and the cut is reported.
//!
//! A `tokenizer/` folder comes in two shapes: `vocab.json` + `merges.txt` (+ `tokenizer_config.json`)
//! as real SD folders ship it, or a `tokenizer.json` as transformers 5 saves it. Both are read.

use std::path::Path;

use serde_json::Value;
use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::{Lowercase, NFC, Replace, Sequence as Normalizers};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence as PreTokenizers;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

use crate::{Result, TextError};

/// CLIP's word pattern (OpenAI's `SimpleTokenizer`): special tokens, English contractions, runs
/// of letters, single digits, runs of other non-space characters.
const PATTERN: &str =
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";

/// A prompt as the text encoder reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipTokens {
    /// Exactly `model_max_length` ids: BOS, the prompt's tokens, EOS, padding.
    pub ids: Vec<u32>,
    /// How many ids the prompt had with BOS and EOS, when that was more than fit (it was cut).
    pub truncated_from: Option<usize>,
}

/// The tokenizer of a Stable Diffusion folder.
pub struct ClipTokenizer {
    tokenizer: Tokenizer,
    bos: u32,
    eos: u32,
    pad: u32,
    max_len: usize,
}

fn bad(path: &Path, message: impl std::fmt::Display) -> TextError {
    TextError::Weights(format!("{}: {message}", path.display()))
}

/// A special token in a tokenizer config: a string, or an object with its `content`.
fn token_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content")?.as_str().map(str::to_string),
        _ => None,
    }
}

impl ClipTokenizer {
    /// The tokenizer in a `tokenizer/` folder.
    pub fn load(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(TextError::Missing(format!(
                "{}: missing (the pipeline folder has no tokenizer)",
                dir.display()
            )));
        }
        let read_json = |name: &str| -> Result<Option<Value>> {
            let p = dir.join(name);
            if !p.is_file() {
                return Ok(None);
            }
            let text = std::fs::read_to_string(&p).map_err(|e| bad(&p, e))?;
            serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| bad(&p, e))
        };
        let config = read_json("tokenizer_config.json")?.unwrap_or(Value::Null);
        let special = read_json("special_tokens_map.json")?.unwrap_or(Value::Null);
        let special_token =
            |key: &str| token_text(config.get(key)).or_else(|| token_text(special.get(key)));

        let fast = dir.join("tokenizer.json");
        let mut tokenizer = if fast.is_file() {
            Tokenizer::from_file(&fast).map_err(|e| bad(&fast, e))?
        } else {
            Self::from_vocab(dir)?
        };
        tokenizer.with_padding(None);
        tokenizer.with_truncation(None).map_err(|e| bad(dir, e))?;

        // transformers splits the special tokens out of the text before BPE: with SD 2.x's pad
        // token "!", a prompt's "!" becomes the pad id, not "!</w>". Do the same.
        let specials: Vec<AddedToken> = ["bos_token", "eos_token", "pad_token", "unk_token"]
            .iter()
            .filter_map(|k| special_token(k))
            .map(|t| AddedToken::from(t, true))
            .collect();
        tokenizer.add_special_tokens(&specials);
        let id = |token: &str, role: &str| {
            tokenizer.token_to_id(token).ok_or_else(|| {
                bad(
                    dir,
                    format!("the {role} token {token:?} is not in the vocabulary"),
                )
            })
        };
        let bos = id(
            &special_token("bos_token").unwrap_or("<|startoftext|>".into()),
            "bos",
        )?;
        let eos_text = special_token("eos_token").unwrap_or("<|endoftext|>".into());
        let eos = id(&eos_text, "eos")?;
        let pad = id(&special_token("pad_token").unwrap_or(eos_text), "pad")?;
        let max_len = config
            .get("model_max_length")
            .and_then(Value::as_f64)
            // transformers writes a huge number when no length is set; CLIP's is 77.
            .filter(|m| *m >= 2.0 && *m <= 1e6)
            .map(|m| m as usize)
            .unwrap_or(77);
        Ok(Self {
            tokenizer,
            bos,
            eos,
            pad,
            max_len,
        })
    }

    /// CLIP's pipeline built from `vocab.json` and `merges.txt`.
    fn from_vocab(dir: &Path) -> Result<Tokenizer> {
        let vocab = dir.join("vocab.json");
        let merges = dir.join("merges.txt");
        for p in [&vocab, &merges] {
            if !p.is_file() {
                return Err(TextError::Missing(format!(
                    "{}: missing (a tokenizer folder needs tokenizer.json, or vocab.json and merges.txt)",
                    p.display()
                )));
            }
        }
        let model = BPE::from_file(&vocab.to_string_lossy(), &merges.to_string_lossy())
            .end_of_word_suffix("</w>".into())
            .unk_token("<|endoftext|>".into())
            .build()
            .map_err(|e| bad(dir, e))?;
        let whitespace = Replace::new(
            tokenizers::normalizers::replace::ReplacePattern::Regex(r"\s+".into()),
            " ",
        )
        .map_err(|e| bad(dir, e))?;
        let normalizer = Normalizers::new(vec![NFC.into(), whitespace.into(), Lowercase.into()]);
        let split = Split::new(
            SplitPattern::Regex(PATTERN.into()),
            SplitDelimiterBehavior::Removed,
            true,
        )
        .map_err(|e| bad(dir, e))?;
        let pre = PreTokenizers::new(vec![split.into(), ByteLevel::new(false, true, true).into()]);
        let mut tokenizer = Tokenizer::new(model);
        tokenizer.with_normalizer(Some(normalizer));
        tokenizer.with_pre_tokenizer(Some(pre));
        Ok(tokenizer)
    }

    /// The number of ids the encoder reads (77).
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The pad token's id.
    pub fn pad_id(&self) -> u32 {
        self.pad
    }

    /// The tokens of a text alone: no BOS, EOS or padding, not cut.
    pub fn pieces(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| TextError::Input(format!("cannot tokenise {text:?}: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The vocabulary entry of an id (`"puppy</w>"`), for messages.
    pub fn token(&self, id: u32) -> Option<String> {
        self.tokenizer.id_to_token(id)
    }

    /// The ids of a prompt: BOS, its tokens (cut to fit), EOS, padding to `max_len`.
    pub fn encode(&self, text: &str) -> Result<ClipTokens> {
        let body = self.pieces(text)?;
        let room = self.max_len - 2;
        let truncated_from = (body.len() > room).then_some(body.len() + 2);
        let mut ids = Vec::with_capacity(self.max_len);
        ids.push(self.bos);
        ids.extend_from_slice(&body[..body.len().min(room)]);
        ids.push(self.eos);
        ids.resize(self.max_len, self.pad);
        Ok(ClipTokens {
            ids,
            truncated_from,
        })
    }
}
