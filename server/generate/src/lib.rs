//! Generation behind one [`Backend`] trait: llama.cpp in-process ([`LlamaGenerator`],
//! the default for GGUF files) and our own candle decoder ([`Generator`]: GGUF or
//! safetensors + config.json; also what training uses). Both reuse the KV cache of the
//! previous prompt's common prefix, decode with the same stop rules and stop when
//! cancelled. A GGUF file carries its own tokenizer ([`tokenizer_from_gguf_file`]).

mod causal_softmax;
mod cpu_share;
mod frozen;
pub mod gguf_tokenizer;
pub mod llama;
mod llama_abort;
pub mod model;
pub mod openai;
pub mod stop;
pub mod write;

pub use gguf_tokenizer::{tokenizer_from_gguf_file, GgufTokenizerError};
pub use llama::LlamaGenerator;

pub use model::{Arch, Config, KvCache, Lin, Lora, Model};
pub use stop::{decide_mode, Mode, StopReason};

mod error;
pub use error::Error;

use anyhow::{bail, Context, Result};
use candle_core::Device;
use candle_transformers::generation::LogitsProcessor;
use patois_types::{FimStyle, Tokens};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;
use tokenizers::Tokenizer;

/// What was loaded, for status and JSON output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelInfo {
    pub path: PathBuf,
    pub format: String,
    pub arch: String,
    pub parameters: usize,
    /// Tokens one request may hold (prompt and completion).
    pub context: usize,
    pub fim: FimStyle,
    /// What runs it: `llama.cpp` or `candle`.
    #[serde(default)]
    pub backend: String,
}

/// How to generate.
#[derive(Debug, Clone)]
pub struct GenOptions {
    pub max_tokens: usize,
    pub mode: Mode,
    /// Indentation (columns) of the cursor line, for block ends.
    pub indent: usize,
    /// `None`: greedy.
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub seed: u64,
    pub max_lines: usize,
    /// Decoding stops here with what it has ([`StopReason::TimeLimit`]): the hard cap on
    /// decode time that keeps a completion within the latency budget.
    pub deadline: Option<Instant>,
    /// Kept up to date with the text written so far (for deciding whether a generation is
    /// still of use while the user types).
    pub written: Option<std::sync::Arc<Mutex<String>>>,
    /// The prompt was cut to fit the latency budget: a backend with a prompt cache keeps
    /// it apart from full prompts, so that the next cut prompt and the full prompt being
    /// prefilled in the background both continue where they stopped.
    pub cut: bool,
    /// Nobody waits for this run (a warm-up, a completion computed ahead): the prompt is
    /// prefilled in small batches, so that the keystroke that stops it loses little of
    /// what it computed.
    pub background: bool,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            max_tokens: 64,
            mode: Mode::SingleLine,
            indent: 0,
            temperature: None,
            top_p: None,
            seed: 0,
            max_lines: 16,
            deadline: None,
            written: None,
            cut: false,
            background: false,
        }
    }
}

/// A finished generation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Completion {
    pub text: String,
    pub stop: StopReason,
    /// Tokens generated.
    pub tokens: usize,
    pub prompt_tokens: usize,
    /// Prompt tokens whose keys and values came from the previous request.
    pub cache_hit_tokens: usize,
    pub prefill_ms: f64,
    pub decode_ms: f64,
    /// Time to the first generated token: prefill plus one sampling step.
    pub first_token_ms: f64,
}

/// A model ready to complete prompts: what the engine, explain and the benchmarks use,
/// whatever runs the model. One request runs at a time; the KV cache of the last
/// prompt is kept for the next.
pub trait Backend: Tokens + Send + Sync {
    fn info(&self) -> &ModelInfo;
    /// Completes `prompt`. `suffix` is the document after the cursor (to drop repeats);
    /// `cancelled` is polled between tokens and between prefill batches.
    fn complete(
        &self,
        prompt: &str,
        suffix: &str,
        opts: &GenOptions,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Completion, Error>;
    /// Forgets the cached prompt (for cold measurements).
    fn clear_cache(&self);
    /// How many of `prompt`'s tokens the cache does not hold yet (what a prefill of it
    /// would compute), for a run with [`GenOptions::cut`] as `cut`.
    fn uncached_tokens(&self, prompt: &str, _cut: bool) -> usize {
        self.count(prompt)
    }
    /// Token ids of `text` (special tokens in the text are parsed).
    fn encode(&self, text: &str) -> Result<Vec<u32>, Error>;
}

/// The generated tokens and why generation stopped.
struct Decoded {
    text: String,
    stop: StopReason,
    tokens: usize,
    first_token_ms: f64,
}

impl Decoded {
    /// Nothing decoded: cancelled before the first token.
    fn cancelled() -> Decoded {
        Decoded { text: String::new(), stop: StopReason::Cancelled, tokens: 0, first_token_ms: 0.0 }
    }
}

/// The decode loop both backends share: sample from `logits`, stop at a stop token,
/// a stop rule or cancellation, else feed the token back with `forward`.
fn decode_loop(
    mut logits: candle_core::Tensor,
    max_tokens: usize,
    opts: &GenOptions,
    stop_ids: &HashSet<u32>,
    detokenize: &dyn Fn(&[u32]) -> Result<String>,
    forward: &mut dyn FnMut(u32) -> Result<candle_core::Tensor>,
    cancelled: &dyn Fn() -> bool,
) -> Result<Decoded> {
    let t0 = Instant::now();
    let mut sampler = LogitsProcessor::new(opts.seed, opts.temperature, opts.top_p);
    let mut first_token_ms = 0.0;
    let mut out: Vec<u32> = Vec::new();
    let mut stop = StopReason::MaxTokens;
    let mut text = String::new();
    let delay = token_delay();
    while out.len() < max_tokens {
        if cancelled() {
            stop = StopReason::Cancelled;
            break;
        }
        let next = sampler.sample(&logits)?;
        if out.is_empty() {
            first_token_ms = t0.elapsed().as_secs_f64() * 1e3;
        }
        if stop_ids.contains(&next) {
            stop = StopReason::EndOfText;
            break;
        }
        out.push(next);
        text = detokenize(&out)?;
        if let Some(written) = &opts.written {
            written.lock().unwrap_or_else(|p| p.into_inner()).clone_from(&text);
        }
        if let Some((keep, why)) = stop::check(opts.mode, &text, opts.indent, opts.max_lines) {
            text.truncate(keep);
            stop = why;
            break;
        }
        if opts.deadline.is_some_and(|d| Instant::now() >= d) {
            stop = StopReason::TimeLimit;
            break;
        }
        if out.len() < max_tokens {
            logits = match forward(next) {
                Ok(logits) => logits,
                // A backend aborted by the cancellation check fails its step.
                Err(_) if cancelled() => {
                    stop = StopReason::Cancelled;
                    break;
                }
                Err(e) => return Err(e),
            };
            if let Some(delay) = delay {
                sleep_unless(delay, cancelled);
            }
        }
    }
    Ok(Decoded { text, stop, tokens: out.len(), first_token_ms })
}

/// `PATOIS_TEST_TOKEN_DELAY_MS`: a pause after every decoded token, which makes any model
/// as slow as a slow machine's (the tests of cancellation and of reading while generating).
fn token_delay() -> Option<std::time::Duration> {
    static DELAY: std::sync::OnceLock<Option<std::time::Duration>> = std::sync::OnceLock::new();
    *DELAY.get_or_init(|| {
        let ms = std::env::var("PATOIS_TEST_TOKEN_DELAY_MS").ok()?.parse().ok()?;
        Some(std::time::Duration::from_millis(ms))
    })
}

/// Sleeps for `total` in short steps, returning early once `cancelled`.
fn sleep_unless(total: std::time::Duration, cancelled: &dyn Fn() -> bool) {
    let step = std::time::Duration::from_millis(5);
    let end = Instant::now() + total;
    while !cancelled() {
        let now = Instant::now();
        if now >= end {
            return;
        }
        std::thread::sleep(step.min(end - now));
    }
}

/// Applies the suffix rule and assembles the result of a finished decode.
fn finish(
    d: Decoded,
    suffix: &str,
    prompt_tokens: usize,
    cached: usize,
    prefill_ms: f64,
    decode_ms: f64,
) -> Completion {
    let (text, repeated) = if d.stop == StopReason::Cancelled {
        (d.text, false)
    } else {
        stop::trim_against_suffix(&d.text, suffix)
    };
    Completion {
        text,
        stop: if repeated { StopReason::RepeatsSuffix } else { d.stop },
        tokens: d.tokens,
        prompt_tokens,
        cache_hit_tokens: cached,
        prefill_ms,
        decode_ms,
        first_token_ms: prefill_ms + d.first_token_ms,
    }
}

/// The length of the longest common prefix of two token sequences.
pub(crate) fn common_prefix<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Which backend runs a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// llama.cpp for `.gguf` files, candle for safetensors folders.
    #[default]
    Auto,
    Llama,
    Candle,
    /// An OpenAI-compatible server (`endpoint` in the settings); the local model file
    /// supplies the tokenizer.
    Openai,
}

/// The `.gguf` file at `path`: the file itself, or the one a folder holds.
fn gguf_at(path: &Path) -> Option<PathBuf> {
    if path.is_dir() {
        find_gguf(path).ok().flatten()
    } else {
        Some(path.to_path_buf()).filter(|p| p.extension().is_some_and(|e| e == "gguf"))
    }
}

/// Whether the model at `path` runs in llama.cpp under `kind` (a GGUF model, unless
/// candle is asked for); else candle runs it.
pub fn runs_on_llama(path: &Path, kind: BackendKind) -> bool {
    matches!(kind, BackendKind::Auto | BackendKind::Llama) && gguf_at(path).is_some()
}

/// Loads the model at `path` with the backend `kind` asks for.
pub fn load_backend(path: &Path, kind: BackendKind) -> Result<std::sync::Arc<dyn Backend>, Error> {
    load_backend_with_lora(path, kind, None)
}

/// [`load_backend`], with a GGUF LoRA adapter applied when llama.cpp runs the model:
/// `lora` is the adapter file and its strength (1: as trained).
pub fn load_backend_with_lora(
    path: &Path,
    kind: BackendKind,
    lora: Option<(&Path, f32)>,
) -> Result<std::sync::Arc<dyn Backend>, Error> {
    load_backend_or_explain(path, kind, lora).map_err(|e| {
        let message = format!("{e:#}");
        let path = path.to_path_buf();
        if path.exists() {
            Error::Load { path, message }
        } else {
            Error::Missing { path, message }
        }
    })
}

fn load_backend_or_explain(
    path: &Path,
    kind: BackendKind,
    lora: Option<(&Path, f32)>,
) -> Result<std::sync::Arc<dyn Backend>> {
    match gguf_at(path).filter(|_| kind != BackendKind::Candle && kind != BackendKind::Openai) {
        Some(file) => {
            let opts = LlamaOptions {
                lora: lora.map(|(file, _)| file.to_path_buf()),
                lora_strength: lora.map_or(1.0, |(_, strength)| strength),
                ..Default::default()
            };
            Ok(std::sync::Arc::new(LlamaGenerator::load(&file, &opts)?))
        }
        None if kind == BackendKind::Llama && path.exists() => bail!(
            "{}: the llama.cpp backend runs .gguf files only; point the model at one, or set \
             backend = \"candle\"",
            path.display()
        ),
        None => Ok(std::sync::Arc::new(Generator::load(path, &device())?)),
    }
}

pub use llama::LlamaOptions;

fn find_gguf(dir: &Path) -> Result<Option<PathBuf>> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    Ok(entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "gguf")))
}

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

/// A Hugging Face tokenizer as the prompt builder counts and cuts tokens.
pub struct HfTokens<'a>(pub &'a Tokenizer);

impl Tokens for HfTokens<'_> {
    fn offsets(&self, text: &str) -> Vec<(usize, usize)> {
        hf_offsets(self.0, text)
    }
}

/// Byte ranges of `text`'s tokens under a Hugging Face tokenizer (characters if it fails).
fn hf_offsets(tok: &Tokenizer, text: &str) -> Vec<(usize, usize)> {
    match tok.encode(text, false) {
        Ok(e) => e.get_offsets().to_vec(),
        Err(_) => patois_types::Chars.offsets(text),
    }
}

/// Token ids of `text` under a Hugging Face tokenizer.
fn hf_encode(tok: &Tokenizer, text: &str) -> Result<Vec<u32>, Error> {
    let enc = tok.encode(text, false);
    Ok(enc.map_err(|e| Error::Generation(format!("tokenizing: {e}")))?.get_ids().to_vec())
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
        Self::new(model, tokenizer, weights, if is_gguf { "gguf" } else { "safetensors" })
    }

    /// Wraps an already loaded model; checks that the tokenizer fits it.
    pub fn new(
        model: Model,
        tokenizer: Tokenizer,
        path: PathBuf,
        format: &str,
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
            format: format.into(),
            arch: c.arch.name().into(),
            parameters,
            context: c.max_position_embeddings,
            fim,
            backend: "candle".into(),
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
            &self.stop_ids,
            &|ids| self.decode(ids),
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
