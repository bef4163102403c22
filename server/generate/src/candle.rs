//! Our own decoder on candle ([`Generator`]): Llama/Qwen2/StarCoder2 layouts from GGUF or
//! safetensors ([`model`]); what training uses, and what runs a model when llama.cpp
//! cannot (an adapter without a GGUF export, `backend = "candle"`).

pub(crate) mod causal_softmax;
pub(crate) mod frozen;
pub mod model;

use crate::hf_tokens::{hf_encode, hf_offsets};
use crate::{common_prefix, decode_loop, find_gguf, finish, tokenizer_from_gguf_file, Spelling};
use crate::{Backend, Completion, Error, GenOptions, ModelFormat, ModelInfo, RunBy};
use anyhow::{bail, Context, Result};
use candle_core::Device;
use model::{Arch, KvCache, Model};
use patois_types::{FimStyle, Tokens};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;
use tokenizers::Tokenizer;
/// A model with its tokenizer run by our candle decoder.
pub struct Generator {
    pub model: Model,
    pub tokenizer: Tokenizer,
    pub info: ModelInfo,
    stop_ids: HashSet<u32>,
    cache: Mutex<KvCache>,
}

impl Tokens for Generator {
    fn offsets(&self, text: &str) -> Vec<(usize, usize)> {
        hf_offsets(&self.tokenizer, text)
    }
}

/// Finds the model files at `path`: a `.gguf` file (its tokenizer from its metadata,
/// or `tokenizer.json` beside it), or a folder holding one, or a folder with
/// `config.json` + `*.safetensors` + `tokenizer.json`.
fn locate(path: &Path) -> Result<(PathBuf, Option<PathBuf>, bool)> {
    if !path.exists() {
        bail!(
            "no model at {}; install one with `patois model install`, or pass --model with a \
             .gguf file or a folder holding config.json + *.safetensors + tokenizer.json",
            path.display()
        );
    }
    let (dir, gguf) = if path.is_file() {
        if path.extension().is_none_or(|e| e != "gguf") {
            bail!(
                "{} is not a .gguf file; point --model at a GGUF file or at a model folder",
                path.display()
            );
        }
        (path.parent().unwrap_or(Path::new(".")).to_path_buf(), Some(path.to_path_buf()))
    } else {
        (path.to_path_buf(), find_gguf(path)?)
    };
    let tok = dir.join("tokenizer.json");
    match gguf {
        Some(g) => Ok((g, Some(tok).filter(|t| t.exists()), true)),
        None if !tok.exists() => bail!(
            "{} is missing; a safetensors model needs its Hugging Face tokenizer.json",
            tok.display()
        ),
        None if dir.join("config.json").exists() => Ok((dir, Some(tok), false)),
        None => bail!("{} has neither a .gguf file nor config.json + *.safetensors", dir.display()),
    }
}

impl Generator {
    /// Loads the model at `path` on `device`.
    pub fn load(path: &Path, device: &Device) -> Result<Generator> {
        let (weights, tok_path, is_gguf) = locate(path)?;
        let tokenizer = match &tok_path {
            Some(t) => Tokenizer::from_file(t)
                .map_err(|e| anyhow::anyhow!("{}: not a tokenizer.json: {e}", t.display()))?,
            None => tokenizer_from_gguf_file(&weights).map_err(|e| {
                anyhow::anyhow!("{e}; and there is no tokenizer.json beside {}", weights.display())
            })?,
        };
        let model = if is_gguf {
            Model::from_gguf(&weights, device)?
        } else {
            Model::from_safetensors(&weights, device)?
        };
        let format = if is_gguf { ModelFormat::Gguf } else { ModelFormat::Safetensors };
        Self::new(model, tokenizer, weights, format)
    }

    /// Wraps an already loaded model; checks that the tokenizer fits it.
    pub fn new(
        model: Model,
        tokenizer: Tokenizer,
        path: PathBuf,
        format: ModelFormat,
    ) -> Result<Generator> {
        let vocab = tokenizer.get_vocab_size(true);
        if vocab > model.config.vocab_size {
            bail!(
                "the tokenizer at {} has {vocab} tokens but the model only {}: they do not belong together",
                path.display(),
                model.config.vocab_size
            );
        }
        let fim = FimStyle::detect(|t| tokenizer.token_to_id(t).is_some());
        let stop_ids = fim.stop_tokens().iter().filter_map(|t| tokenizer.token_to_id(t)).collect();
        let c = &model.config;
        let parameters = c.vocab_size * c.hidden_size * if c.tie_word_embeddings { 1 } else { 2 }
            + c.num_hidden_layers
                * (2 * c.hidden_size * c.hidden_size
                    + 2 * c.hidden_size * c.num_key_value_heads * c.head_dim()
                    + if c.arch == Arch::Starcoder2 { 2 } else { 3 }
                        * c.hidden_size
                        * c.intermediate_size);
        let info = ModelInfo {
            path,
            format,
            arch: c.arch.name().into(),
            parameters,
            context: c.max_position_embeddings,
            fim,
            backend: RunBy::Candle,
        };
        Ok(Generator { model, tokenizer, info, stop_ids, cache: Mutex::new(KvCache::default()) })
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer.decode(ids, true).map_err(|e| anyhow::anyhow!("detokenizing: {e}"))
    }
}

impl Backend for Generator {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>, Error> {
        hf_encode(&self.tokenizer, text)
    }

    fn clear_cache(&self) {
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = KvCache::default();
    }

    fn uncached_tokens(&self, prompt: &str, _cut: bool) -> usize {
        let Ok(ids) = hf_encode(&self.tokenizer, prompt) else { return self.count(prompt) };
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        ids.len() - common_prefix(&cache.tokens, &ids)
    }

    fn complete(
        &self,
        prompt: &str,
        suffix: &str,
        opts: &GenOptions,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Completion, Error> {
        let ids = self.encode(prompt)?;
        if ids.is_empty() {
            return Err(Error::Generation("empty prompt".into()));
        }
        let room = self.model.config.max_position_embeddings.saturating_sub(ids.len());
        let max_tokens = opts.max_tokens.min(room);
        // A panic in an earlier request leaves a cache we cannot trust: start afresh.
        let mut cache = self.cache.lock().unwrap_or_else(|p| {
            let mut c = p.into_inner();
            *c = KvCache::default();
            c
        });
        let t0 = Instant::now();
        // Keep the longest common prefix with the last request; at least one token must run.
        let common = common_prefix(&cache.tokens, &ids).min(ids.len() - 1);
        cache.truncate(common)?;
        let logits = match self.model.forward(&ids[common..], &mut cache) {
            Ok(l) => l,
            Err(e) => {
                *cache = KvCache::default();
                return Err(e.into());
            }
        };
        let prefill_ms = t0.elapsed().as_secs_f64() * 1e3;
        let t1 = Instant::now();
        let decoded = decode_loop(
            logits,
            max_tokens,
            opts,
            Spelling { stop_ids: &self.stop_ids, detokenize: &|ids| self.decode(ids), heal: None },
            &mut |next| self.model.forward(&[next], &mut cache),
            cancelled,
        )?;
        let decode_ms = t1.elapsed().as_secs_f64() * 1e3;
        Ok(finish(decoded, suffix, ids.len(), common, prefill_ms, decode_ms))
    }
}

/// The device: CUDA when built with the `cuda` feature and a GPU is present, else CPU.
pub fn device() -> Device {
    #[cfg(feature = "cuda")]
    if let Ok(d) = Device::new_cuda(0) {
        return d;
    }
    Device::Cpu
}

/// Loads the tokenizer of a model folder (for budgets counted in tokens).
pub fn load_tokenizer(dir: &Path) -> Result<Tokenizer> {
    let p = dir.join("tokenizer.json");
    Tokenizer::from_file(&p)
        .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
        .context("loading the tokenizer")
}
