//! llama.cpp in-process (through the `llama-cpp-2` crate): the fast backend for GGUF
//! files. One context with one sequence is kept between requests; a new prompt keeps
//! the KV cache of its longest common prefix with what the context holds, so typing at
//! the end of a stable prompt only prefills the new tokens.

use crate::cpu_share::CpuShare;
use crate::llama_abort::AbortHook;
use crate::llama_draft::{logits_at, Drafting};
use crate::{
    decode_loop, finish, Backend, ChatFormat, ChatMessage, Completion, GenOptions, ModelInfo,
    Spelling,
};
use anyhow::{bail, Context, Result};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaLoraAdapter, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use patois_types::{FimStyle, Tokens};
use std::collections::HashSet;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

/// llama.cpp's global state, initialised once per process.
fn backend() -> Result<&'static LlamaBackend> {
    static BACKEND: OnceLock<std::result::Result<LlamaBackend, String>> = OnceLock::new();
    let b = BACKEND.get_or_init(|| {
        let mut b = LlamaBackend::init().map_err(|e| e.to_string())?;
        if std::env::var_os("PATOIS_LLAMA_LOG").is_none() {
            b.void_logs();
        }
        Ok(b)
    });
    b.as_ref().map_err(|e| anyhow::anyhow!("starting llama.cpp: {e}"))
}

/// How the context is set up.
#[derive(Debug, Clone)]
pub struct LlamaOptions {
    /// Tokens the context holds (prompt and completion).
    pub context: u32,
    /// CPU threads; 0: all available cores.
    pub threads: usize,
    /// Prompt tokens evaluated per batch: cancellation is checked between batches.
    pub batch: usize,
    /// Layers offloaded to a GPU (builds with the `cuda` feature).
    pub gpu_layers: u32,
    /// A LoRA adapter in llama.cpp's GGUF layout (`patois adapter export --gguf`).
    pub lora: Option<std::path::PathBuf>,
    /// How strongly `lora` is applied: 1 as trained, 0.5 halves every update.
    pub lora_strength: f32,
    /// Tokens drafted from the text so far per decode, at most (see `llama_draft`); 0: none.
    pub draft: usize,
}

impl Default for LlamaOptions {
    /// 4,096 tokens of context, all cores, batches of 256 (`PATOIS_LLAMA_BATCH` overrides:
    /// 256 prefills about 5% faster than 128 here, and cancellation waits for one batch),
    /// no drafts (`PATOIS_LLAMA_DRAFT` sets how many tokens).
    fn default() -> Self {
        let batch =
            std::env::var("PATOIS_LLAMA_BATCH").ok().and_then(|b| b.parse().ok()).unwrap_or(256);
        LlamaOptions {
            context: 4096,
            threads: 0,
            batch,
            gpu_layers: 999,
            lora: None,
            lora_strength: 1.0,
            draft: crate::llama_draft::max_draft(),
        }
    }
}

self_cell::self_cell!(
    /// The model and the one context that borrows it.
    struct Session {
        owner: Arc<LlamaModel>,
        #[not_covariant]
        dependent: LlamaContext,
    }
);

/// Prompts the cache keeps side by side, each in its own llama.cpp sequence: full prompts
/// in the first, prompts cut to the latency budget in the second (see [`GenOptions::cut`]),
/// so that neither evicts the other and each goes on where it stopped.
const SLOTS: usize = 2;

/// The slot (llama.cpp sequence) of a run: see [`SLOTS`].
fn slot_of(cut: bool) -> usize {
    usize::from(cut)
}

/// What the context's sequences hold.
struct State {
    session: Session,
    /// Per sequence: the tokens whose keys and values are in the cache, in order.
    slots: Vec<Vec<LlamaToken>>,
    /// The cancellation check llama.cpp calls during a decode: declared after the
    /// context, so it outlives it.
    abort: Box<AbortHook>,
    /// The threads the context runs with now.
    threads: usize,
}

impl State {
    /// Runs with the threads `share` chooses now (unchanged without one).
    fn fit_threads(&mut self, share: Option<&CpuShare>) {
        let Some(threads) = share.map(CpuShare::threads) else { return };
        if threads != self.threads {
            self.session.with_dependent_mut(|_, ctx| AbortHook::set_threads(ctx, threads));
            self.threads = threads;
        }
    }

    /// Empties the cache (after an error, or to measure cold).
    fn forget(&mut self) {
        self.session.with_dependent_mut(|_, ctx| ctx.clear_kv_cache());
        self.slots.iter_mut().for_each(Vec::clear);
    }
}

/// A context for `model`: `n_ctx` tokens per sequence, batches of `batch` tokens,
/// `threads` threads.
fn new_session(
    backend: &LlamaBackend,
    model: &Arc<LlamaModel>,
    n_ctx: u32,
    batch: usize,
    threads: i32,
) -> std::result::Result<Session, llama_cpp_2::LlamaContextLoadError> {
    Session::try_new(model.clone(), |m| {
        // Each sequence has the context's length (llama.cpp splits n_ctx between them).
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx * SLOTS as u32))
            .with_n_seq_max(SLOTS as u32)
            .with_n_batch(batch as u32)
            .with_n_ubatch(batch as u32)
            .with_n_threads(threads)
            .with_n_threads_batch(threads);
        m.new_context(backend, params)
    })
}

/// A GGUF model run by llama.cpp.
pub struct LlamaGenerator {
    model: Arc<LlamaModel>,
    info: ModelInfo,
    stop_ids: HashSet<u32>,
    /// Every token's bytes, by id (for healing).
    pieces: Vec<Vec<u8>>,
    state: Mutex<State>,
    batch: usize,
    /// Tokens drafted per decode at most.
    draft: usize,
    /// With `threads` 0: the threads follow the cores other processes leave free.
    share: Option<CpuShare>,
    /// The LoRA adapter the context applies: declared after the context, so dropped after it.
    _adapter: Option<LlamaLoraAdapter>,
}

impl LlamaOptions {
    /// The threads llama.cpp runs with: `threads`, or every core when it is 0.
    pub fn thread_count(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            n => n,
        }
    }
}

impl LlamaGenerator {
    /// Loads the GGUF file at `path`.
    pub fn load(path: &Path, opts: &LlamaOptions) -> Result<LlamaGenerator> {
        if !path.is_file() {
            bail!(
                "no model file at {}; install one with `patois model install` or pass --model \
                 with a .gguf file",
                path.display()
            );
        }
        let backend = backend()?;
        let params = LlamaModelParams::default().with_n_gpu_layers(opts.gpu_layers);
        let mut model = LlamaModel::load_from_file(backend, path, &params).map_err(|e| {
            anyhow::anyhow!(
                "{}: llama.cpp could not load it ({e}); is it a complete GGUF file? \
                 `patois model install` fetches a checked copy",
                path.display()
            )
        })?;
        let mut adapter = match &opts.lora {
            Some(lora) => Some(model.lora_adapter_init(lora).map_err(|e| {
                anyhow::anyhow!(
                    "{}: llama.cpp could not load this LoRA adapter for {} ({e}); was it \
                     exported from an adapter trained on this model?",
                    lora.display(),
                    path.display()
                )
            })?),
            None => None,
        };
        let model = Arc::new(model);
        let train_ctx = model.n_ctx_train().max(1);
        let n_ctx = opts.context.min(train_ctx);
        let batch = opts.batch.clamp(1, n_ctx as usize);
        let t = opts.thread_count() as i32;
        let mut session = new_session(backend, &model, n_ctx, batch, t).map_err(|e| {
            anyhow::anyhow!("{}: creating a llama.cpp context: {e}", path.display())
        })?;
        if let Some(adapter) = adapter.as_mut() {
            session
                .with_dependent_mut(|_, ctx| ctx.lora_adapter_set(adapter, opts.lora_strength))
                .map_err(|e| {
                    anyhow::anyhow!("{}: applying the LoRA adapter: {e}", path.display())
                })?;
        }
        let abort = AbortHook::new();
        session.with_dependent(|_, ctx| abort.attach(ctx));
        let vocab = model.vocab();
        // The id of a special token: its text is one token.
        let special = |t: &str| match vocab.tokenize(t.as_bytes(), false, true)[..] {
            [id] => Some(id.0 as u32),
            _ => None,
        };
        let fim = FimStyle::detect(|t| special(t).is_some());
        let mut stop_ids: HashSet<u32> =
            fim.stop_tokens().iter().filter_map(|t| special(t)).collect();
        stop_ids.extend(vocab.tokens().filter(|t| vocab.is_eog(*t)).map(|t| t.0 as u32));
        let arch = model.meta_val_str("general.architecture").unwrap_or_else(|_| "unknown".into());
        let info = ModelInfo {
            path: path.to_path_buf(),
            format: crate::ModelFormat::Gguf,
            arch,
            parameters: model.n_params() as usize,
            context: n_ctx as usize,
            fim,
            backend: crate::RunBy::LlamaCpp,
        };
        let pieces = vocab.tokens().map(|t| vocab.token_to_piece(t, false, None)).collect();
        Ok(LlamaGenerator {
            model,
            _adapter: adapter,
            info,
            stop_ids,
            pieces,
            state: Mutex::new(State {
                session,
                slots: vec![Vec::new(); SLOTS],
                abort,
                threads: t as usize,
            }),
            batch,
            draft: opts.draft.min(batch - 1),
            share: (opts.threads == 0).then(|| CpuShare::new(t as usize)),
        })
    }

    /// The tokens of a prompt that fits the context.
    fn prompt_ids(&self, prompt: &str) -> Result<Vec<LlamaToken>, crate::Error> {
        let ids = self.tokenize(prompt);
        if ids.is_empty() {
            return Err(crate::Error::Generation("empty prompt".into()));
        }
        let n_ctx = self.info.context;
        if ids.len() >= n_ctx {
            let why = format!("the prompt has {} tokens but the context holds {n_ctx}", ids.len());
            return Err(crate::Error::Generation(why));
        }
        Ok(ids)
    }

    /// `ids` without their last token when it is part of a word (see `heal`), and that
    /// token's text.
    fn healed(&self, mut ids: Vec<LlamaToken>, heal: bool) -> (Vec<LlamaToken>, Option<String>) {
        let Some(&last) = ids.last().filter(|_| heal && ids.len() > 1) else { return (ids, None) };
        let piece = self.pieces.get(last.0 as usize).and_then(|p| std::str::from_utf8(p).ok());
        let Some(text) = piece.filter(|p| crate::heal::healable(p)) else { return (ids, None) };
        let text = text.to_string();
        ids.pop();
        (ids, Some(text))
    }

    fn tokenize(&self, text: &str) -> Vec<LlamaToken> {
        self.model.vocab().tokenize(text.as_bytes(), false, true)
    }

    /// Text of generated token ids (control tokens left out: their pieces are empty).
    fn detokenize(&self, ids: &[u32]) -> String {
        let piece = |id: &u32| self.pieces.get(*id as usize).map_or(&[][..], Vec::as_slice);
        let bytes: Vec<u8> = ids.iter().flat_map(piece).copied().collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Evaluates `tokens` in sequence `seq` at positions from `start`; logits for the last one only.
/// Returns false when `cancelled` stopped it (before a batch, or inside one through the
/// abort hook); `done` then says how many tokens were evaluated.
fn evaluate(
    ctx: &mut LlamaContext,
    seq: i32,
    tokens: &[LlamaToken],
    start: usize,
    batch_size: usize,
    cancelled: &dyn Fn() -> bool,
    done: &mut usize,
) -> Result<bool> {
    let mut batch = LlamaBatch::new(batch_size, 1);
    for (n, chunk) in tokens.chunks(batch_size).enumerate() {
        if cancelled() {
            return Ok(false);
        }
        batch.clear();
        let first = n * batch_size;
        let last_chunk = first + chunk.len() == tokens.len();
        for (i, t) in chunk.iter().enumerate() {
            let is_last = last_chunk && i + 1 == chunk.len();
            batch.add(*t, (start + first + i) as i32, &[seq], is_last)?;
        }
        if let Err(e) = ctx.decode(&mut batch) {
            // Aborted by the hook: llama.cpp removed the batch's positions from its cache.
            if cancelled() {
                return Ok(false);
            }
            return Err(e).context("llama.cpp decode");
        }
        *done += chunk.len();
    }
    Ok(true)
}

impl Tokens for LlamaGenerator {
    /// Byte ranges from the lengths of llama.cpp's token pieces, widened to character
    /// boundaries so that a range never splits a character.
    fn offsets(&self, text: &str) -> Vec<(usize, usize)> {
        let vocab = self.model.vocab();
        let ids = vocab.tokenize(text.as_bytes(), false, true);
        let mut out = Vec::with_capacity(ids.len());
        let mut at = 0usize;
        for id in ids {
            let len = vocab.token_to_piece(id, true, None).len();
            let start = at;
            at = (at + len).min(text.len());
            out.push((text.floor_char_boundary(start), text.ceil_char_boundary(at)));
        }
        out
    }

    fn count(&self, text: &str) -> usize {
        self.model.vocab().tokenize(text.as_bytes(), false, true).len()
    }
}

impl Backend for LlamaGenerator {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>, crate::Error> {
        Ok(self.tokenize(text).into_iter().map(|t| t.0 as u32).collect())
    }

    /// The template in the GGUF's `tokenizer.chat_template`, as llama.cpp applies it (it
    /// recognizes the common families' templates), else the vocabulary's format.
    fn chat_prompt(&self, messages: &[ChatMessage]) -> String {
        let own = || -> Option<String> {
            let template = self.model.chat_template(None).ok()?;
            let chat = messages
                .iter()
                .map(|m| LlamaChatMessage::new(m.role.as_str().into(), m.content.clone()))
                .collect::<Result<Vec<_>, _>>()
                .ok()?;
            self.model.apply_chat_template(&template, &chat, true).ok()
        };
        own()
            .unwrap_or_else(|| ChatFormat::detect(|t| self.tokenize(t).len() == 1).render(messages))
    }

    fn clear_cache(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.forget();
    }

    fn uncached_tokens(&self, prompt: &str, cut: bool) -> usize {
        let (ids, _) = self.healed(self.tokenize(prompt), true);
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        ids.len() - crate::common_prefix(&state.slots[slot_of(cut)], &ids)
    }

    fn complete(
        &self,
        prompt: &str,
        suffix: &str,
        opts: &GenOptions,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Completion, crate::Error> {
        let (ids, heal) = self.healed(self.prompt_ids(prompt)?, opts.heal);
        let n_ctx = self.info.context;
        // Spelling the healed text again takes a token more (a run that writes nothing,
        // as a warm-up, still writes nothing).
        let spell = usize::from(heal.is_some() && opts.max_tokens > 0);
        let max_tokens = (opts.max_tokens + spell).min(n_ctx - ids.len());
        let heal = heal.map(|text| crate::heal::Heal::new(&text, &self.pieces));
        let mut guard = self.state.lock().unwrap_or_else(|p| {
            // A panic during an earlier request: its cache may be half written.
            let mut s = p.into_inner();
            s.forget();
            s
        });
        let state = &mut *guard;
        let t0 = Instant::now();
        // Keep the longest common prefix; at least one token runs to give logits.
        let slot = slot_of(opts.cut);
        let common = crate::common_prefix(&state.slots[slot], &ids).min(ids.len() - 1);
        state.fit_threads(self.share.as_ref());
        let seq = slot as i32;
        let batch = opts.batch.map_or(self.batch, |b| b.clamp(1, self.batch));
        let tokens = &mut state.slots[slot];
        let abort = &state.abort;
        let session = &mut state.session;
        // A background batch is small: it finishes rather than losing its work to an abort
        // (the run that stopped it waits for that batch at most); the check between batches
        // still stops it.
        let never = || false;
        let inside: &dyn Fn() -> bool = if opts.batch.is_some() { &never } else { cancelled };
        // Any error leaves a cache we cannot trust: it is forgotten below.
        let result = abort.run(inside, || {
            session.with_dependent_mut(|_, ctx| -> Result<Completion> {
                if ctx.kv_cache_seq_rm(seq, Some(common as u32), None).is_err() {
                    bail!("llama.cpp could not trim its cache");
                }
                tokens.truncate(common);
                let mut done = 0;
                let finished =
                    evaluate(ctx, seq, &ids[common..], common, batch, cancelled, &mut done);
                tokens.extend_from_slice(&ids[common..common + done]);
                let prefill_ms = t0.elapsed().as_secs_f64() * 1e3;
                if !finished? {
                    let d = crate::Decoded::cancelled();
                    return Ok(finish(d, suffix, ids.len(), common, prefill_ms, 0.0));
                }
                let first = logits_at(ctx, -1)?;
                let t1 = Instant::now();
                let mut drafting = Drafting::new(seq, tokens, self.draft);
                let mut forward = |next: u32| drafting.forward(ctx, next);
                let decoded = decode_loop(
                    first,
                    max_tokens,
                    opts,
                    Spelling {
                        stop_ids: &self.stop_ids,
                        detokenize: &|ids| Ok(self.detokenize(ids)),
                        heal,
                    },
                    &mut forward,
                    cancelled,
                )?;
                let decode_ms = t1.elapsed().as_secs_f64() * 1e3;
                Ok(finish(decoded, suffix, ids.len(), common, prefill_ms, decode_ms))
            })
        });
        if result.is_err() {
            state.forget();
        }
        Ok(result?)
    }
}
