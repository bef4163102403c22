//! Generation behind one [`Backend`] trait: llama.cpp in-process ([`LlamaGenerator`],
//! the default for GGUF files), our own candle decoder ([`Generator`] in [`candle`]: GGUF
//! or safetensors + config.json; also what training uses) and an OpenAI-compatible
//! server ([`openai`]). Which one runs a model is decided once, by [`runner`]. All reuse the
//! KV cache of the previous prompt's common prefix, decode with the same stop rules and
//! stop when cancelled. A GGUF file carries its own tokenizer ([`tokenizer_from_gguf_file`]).

pub mod candle;
pub mod chat;
mod cpu_share;
mod error;
pub mod gguf_tokenizer;
mod heal;
mod hf_tokens;
pub mod llama;
mod llama_abort;
mod llama_draft;
pub mod openai;
pub mod stop;
pub mod write;

pub use candle::model::{self, Arch, Config, KvCache, Lin, Lora, Model};
pub use candle::{device, load_tokenizer, Generator};
pub use chat::{ChatFormat, ChatMessage, Role};
pub use error::Error;
pub use gguf_tokenizer::{tokenizer_from_gguf_file, GgufTokenizerError};
pub use hf_tokens::HfTokens;
pub use llama::{LlamaGenerator, LlamaOptions};
pub use stop::{decide_mode, Mode, StopReason};

use anyhow::{Context, Result};
use candle_transformers::generation::LogitsProcessor;
use patois_types::{FimStyle, Tokens};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// What was loaded, for status and JSON output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelInfo {
    pub path: PathBuf,
    pub format: ModelFormat,
    pub arch: String,
    pub parameters: usize,
    /// Tokens one request may hold (prompt and completion).
    pub context: usize,
    pub fim: FimStyle,
    pub backend: RunBy,
}

/// The form a model was loaded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelFormat {
    Gguf,
    Safetensors,
    /// Behind an inference server.
    Remote,
}

/// What runs a loaded model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunBy {
    #[serde(rename = "llama.cpp")]
    LlamaCpp,
    #[serde(rename = "candle")]
    Candle,
    /// An OpenAI-compatible server (the status's `promptsGoTo` names it).
    #[serde(rename = "openai")]
    Openai,
}

impl RunBy {
    /// Whether it runs in this process (its speed is measured here).
    pub fn is_local(self) -> bool {
        self != RunBy::Openai
    }
}

impl std::fmt::Display for ModelFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ModelFormat::Gguf => "gguf",
            ModelFormat::Safetensors => "safetensors",
            ModelFormat::Remote => "remote",
        })
    }
}

impl std::fmt::Display for RunBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RunBy::LlamaCpp => "llama.cpp",
            RunBy::Candle => "candle",
            RunBy::Openai => "an OpenAI-compatible server",
        })
    }
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
    /// Prompt tokens per batch when nobody waits for this run (a warm-up, a completion
    /// computed ahead): few, so that the request which stops it loses little of what it
    /// computed (a stopped batch is lost). `None`: the backend's own batch.
    pub batch: Option<usize>,
    /// A prompt that ends inside a word is healed (llama.cpp backend; see `heal`).
    pub heal: bool,
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
            batch: None,
            heal: true,
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
    /// `messages` as a prompt in this model's chat format: the template its file carries
    /// where the backend reads one, else the format its vocabulary shows.
    fn chat_prompt(&self, messages: &[ChatMessage]) -> String {
        ChatFormat::detect(|t| self.encode(t).is_ok_and(|ids| ids.len() == 1)).render(messages)
    }
    /// The model's answer to `messages`: here their [`Backend::chat_prompt`] completed; a
    /// server answers on its chat endpoint, in the format it knows for the model it serves.
    fn chat(
        &self,
        messages: &[ChatMessage],
        opts: &GenOptions,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Completion, Error> {
        self.complete(&self.chat_prompt(messages), "", opts, cancelled)
    }
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

/// What a backend's vocabulary tells the decode loop about the tokens it writes.
pub(crate) struct Spelling<'a> {
    /// Tokens that end the answer.
    pub stop_ids: &'a HashSet<u32>,
    /// The text of token ids.
    pub detokenize: &'a dyn Fn(&[u32]) -> Result<String>,
    /// The text taken off the prompt that the first tokens must spell (see `heal`).
    pub heal: Option<heal::Heal<'a>>,
}

/// The decode loop both backends share: sample from `logits`, stop at a stop token,
/// a stop rule or cancellation, else feed the token back with `forward`. With
/// `spelling.heal`, the first tokens must spell the text taken off the prompt, which the
/// answer leaves out.
pub(crate) fn decode_loop(
    mut logits: candle_core::Tensor,
    max_tokens: usize,
    opts: &GenOptions,
    spelling: Spelling,
    forward: &mut dyn FnMut(u32) -> Result<candle_core::Tensor>,
    cancelled: &dyn Fn() -> bool,
) -> Result<Decoded> {
    let Spelling { stop_ids, detokenize, mut heal } = spelling;
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
        let next = match heal.as_ref().filter(|h| !h.done()) {
            Some(h) => match h.restrict(&logits)? {
                Some(allowed) => sampler.sample(&allowed)?,
                None => {
                    stop = StopReason::EndOfText;
                    break;
                }
            },
            None => sampler.sample(&logits)?,
        };
        if out.is_empty() {
            first_token_ms = t0.elapsed().as_secs_f64() * 1e3;
        }
        if stop_ids.contains(&next) {
            stop = StopReason::EndOfText;
            break;
        }
        out.push(next);
        if let Some(h) = heal.as_mut() {
            h.wrote(next);
        }
        let all = detokenize(&out)?;
        let healed = heal.as_ref().map_or(0, |h| h.len);
        text = all.get(healed..).unwrap_or_default().to_string();
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
pub(crate) fn finish(
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

/// What runs a model, as [`runner`] decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runner {
    /// llama.cpp, on this `.gguf` file.
    Llama(PathBuf),
    /// Our candle decoder (also the local model behind [`BackendKind::Openai`], which
    /// supplies the tokenizer).
    Candle,
}

/// Which backend runs the model at `path` when `kind` is asked for; the one place this is
/// decided. llama.cpp runs GGUF files (a file, or the one a folder holds) unless candle
/// is asked for; asking for llama.cpp on anything else is an error that says what to do.
pub fn runner(path: &Path, kind: BackendKind) -> Result<Runner, Error> {
    let gguf = if path.is_dir() {
        find_gguf(path).ok().flatten()
    } else {
        Some(path.to_path_buf()).filter(|p| p.extension().is_some_and(|e| e == "gguf"))
    };
    match (kind, gguf) {
        (BackendKind::Auto | BackendKind::Llama, Some(file)) => Ok(Runner::Llama(file)),
        (BackendKind::Llama, None) if path.exists() => Err(Error::Load {
            path: path.to_path_buf(),
            message: format!(
                "{}: the llama.cpp backend runs .gguf files only; point the model at one, or \
                 set backend = \"candle\"",
                path.display()
            ),
        }),
        _ => Ok(Runner::Candle),
    }
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
    let loaded: Result<std::sync::Arc<dyn Backend>> = match runner(path, kind)? {
        Runner::Llama(file) => {
            let opts = LlamaOptions {
                lora: lora.map(|(file, _)| file.to_path_buf()),
                lora_strength: lora.map_or(1.0, |(_, strength)| strength),
                ..Default::default()
            };
            LlamaGenerator::load(&file, &opts).map(|g| std::sync::Arc::new(g) as _)
        }
        Runner::Candle => Generator::load(path, &device()).map(|g| std::sync::Arc::new(g) as _),
    };
    loaded.map_err(|e| {
        let message = format!("{e:#}");
        let path = path.to_path_buf();
        if path.exists() {
            Error::Load { path, message }
        } else {
            Error::Missing { path, message }
        }
    })
}

fn find_gguf(dir: &Path) -> Result<Option<PathBuf>> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    Ok(entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "gguf")))
}
