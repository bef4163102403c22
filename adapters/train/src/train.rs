//! The training loop: from scratch for the built-in model, LoRA on a base model.
//! On CPU by default; a time budget, progress with loss and tokens/s, a
//! checkpoint when stopped (Ctrl-C) that the next run resumes from.

use crate::data;
use anyhow::{Context, Result};
use candle_core::{Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use patois_adapter::Provenance;
use patois_generate::write::{random_weights, train_tokenizer, Normal};
use patois_generate::{Arch, Config, KvCache, Model};
use patois_index::Index;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tokenizers::Tokenizer;

mod lora;
pub use lora::train_lora;

#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Wall-clock budget for the optimisation steps.
    pub minutes: f64,
    /// Stop after this many steps (whichever comes first).
    pub steps: Option<usize>,
    pub seq_len: usize,
    pub lr: f64,
    pub lora_rank: usize,
    pub lora_alpha: f64,
    /// HF projection names LoRA attaches to.
    pub lora_targets: Vec<String>,
    /// Built-in model: BPE vocabulary size and shape.
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub layers: usize,
    pub held_out_share: f64,
    pub volatile_share: f64,
    /// Held-out windows evaluated before and after.
    pub eval_windows: usize,
    pub seed: u64,
    /// Also train on dependency sources found locally, up to this many bytes (0: off).
    pub dependency_bytes: usize,
    /// LoRA: adapt only the top this many layers (0: all). The frozen layers below run
    /// once per example, their output kept and reused at every later step.
    pub top_layers: usize,
    /// LoRA: the training loss's softmax runs over the tokens the training data holds,
    /// not the whole vocabulary (the held-out loss always uses the whole vocabulary).
    pub data_vocabulary: bool,
    /// LoRA: write a checkpoint (which the next run resumes from) this often.
    pub checkpoint_seconds: Option<f64>,
    /// LoRA: an adapter to compare with, its held-out loss measured on the same windows.
    pub rival: Option<PathBuf>,
    /// LoRA: next-line examples per file built as serving builds prompts (0: the older
    /// chunk-local fill-in-the-middle examples instead).
    pub prompts_per_file: usize,
    /// The serving settings those prompts follow: context budget and prompt size.
    pub prompt_budget: usize,
    pub prompt_window: usize,
    /// LoRA: the strength recorded in `patois.json`, which serving applies unless the
    /// settings say otherwise. 0.5: at full strength the adapter moved completions too far
    /// from the base model's (`patois bench hybrid --strengths`, README).
    pub serving_strength: f32,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            minutes: 3.0,
            steps: None,
            seq_len: 256,
            lr: 3e-3,
            lora_rank: 8,
            lora_alpha: 16.0,
            lora_targets: [
                "q_proj",
                "k_proj",
                "v_proj",
                "o_proj",
                "gate_proj",
                "up_proj",
                "down_proj",
            ]
            .map(String::from)
            .to_vec(),
            vocab_size: 2048,
            hidden_size: 192,
            layers: 4,
            held_out_share: 0.1,
            volatile_share: 0.1,
            eval_windows: 24,
            seed: 1,
            dependency_bytes: 0,
            top_layers: 4,
            data_vocabulary: true,
            checkpoint_seconds: None,
            rival: None,
            prompts_per_file: 8,
            prompt_budget: 384,
            prompt_window: 976,
            serving_strength: 0.5,
        }
    }
}

/// Progress callbacks.
pub trait TrainProgress {
    fn start(&self, _total_steps: Option<usize>, _seconds: f64) {}
    fn step(&self, _step: usize, _loss: f32, _tokens_per_s: f64) {}
}
pub struct Silent;
impl TrainProgress for Silent {}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainReport {
    pub out_dir: PathBuf,
    pub kind: String,
    pub steps: usize,
    /// Step the run resumed from (0 for a fresh run).
    pub resumed_from: usize,
    pub tokens: usize,
    pub tokens_per_s: f64,
    pub seconds: f64,
    pub base_loss: f32,
    pub adapted_loss: f32,
    pub train_files: usize,
    pub held_out_files: usize,
    pub split_reasons: Vec<String>,
    /// Stopped early by the stop flag: a checkpoint was written.
    pub interrupted: bool,
    /// The held-out loss of [`TrainOptions::rival`], when there was one.
    #[serde(default)]
    pub rival_loss: Option<f32>,
    /// LoRA: the held-out loss with the adapter at [`TrainOptions::serving_strength`].
    #[serde(default)]
    pub serving_loss: Option<f32>,
}

/// Cuts token streams into training windows of `len + 1` tokens.
fn windows(tok: &Tokenizer, texts: &[String], len: usize) -> Result<Vec<Vec<u32>>> {
    let mut out = Vec::new();
    for t in texts {
        let ids = tok
            .encode(t.as_str(), false)
            .map_err(|e| anyhow::anyhow!("tokenizing: {e}"))?
            .get_ids()
            .to_vec();
        let mut i = 0;
        while i + 8 < ids.len() {
            out.push(ids[i..(i + len + 1).min(ids.len())].to_vec());
            i += len;
        }
    }
    Ok(out)
}

fn loss_of(model: &Model, w: &[u32]) -> Result<Tensor> {
    let logits = model.forward_all(&w[..w.len() - 1], &mut KvCache::default())?;
    let target = Tensor::new(&w[1..], &model.device)?;
    Ok(candle_nn::loss::cross_entropy(&logits, &target)?)
}

/// Mean loss over up to `n` evenly spread windows.
pub fn eval_loss(model: &Model, ws: &[Vec<u32>], n: usize) -> Result<f32> {
    if ws.is_empty() {
        return Ok(f32::NAN);
    }
    let picked = spread(ws, n);
    let mut sum = 0.0;
    for w in &picked {
        sum += loss_of(model, w)?.detach().to_scalar::<f32>()?;
    }
    Ok(sum / picked.len() as f32)
}

struct Loop<'a> {
    opts: &'a TrainOptions,
    stop: &'a AtomicBool,
    progress: &'a dyn TrainProgress,
}

impl Loop<'_> {
    /// Optimises `vars` on `examples` examples from `start` until the budget ends;
    /// `loss(i)` is example `i`'s loss and token count.
    /// Returns (steps done in total, tokens, seconds, interrupted).
    fn run(
        &self,
        vars: Vec<Var>,
        examples: usize,
        loss: &mut dyn FnMut(usize) -> Result<(Tensor, usize)>,
        checkpoint: &mut dyn FnMut(usize) -> Result<()>,
        start: usize,
    ) -> Result<(usize, usize, f64, bool)> {
        if examples == 0 {
            return Err(crate::Error::NoData.into());
        }
        let mut opt = AdamW::new(
            vars,
            ParamsAdamW { lr: self.opts.lr, weight_decay: 0.0, ..Default::default() },
        )?;
        let mut clock = ActiveClock::default();
        let budget = self.opts.minutes * 60.0;
        self.progress.start(self.opts.steps, budget);
        let mut order: Vec<usize> = (0..examples).collect();
        let mut rng = Normal::new(self.opts.seed);
        let shuffle = rng.samples(order.len(), 1.0);
        order.sort_by(|a, b| shuffle[*a].total_cmp(&shuffle[*b]));
        let (mut step, mut tokens) = (start, 0usize);
        let warmup = 20usize;
        let mut saved = Instant::now();
        loop {
            if self.opts.checkpoint_seconds.is_some_and(|s| saved.elapsed().as_secs_f64() >= s) {
                checkpoint(step)?;
                saved = Instant::now();
            }
            if self.opts.steps.is_some_and(|s| step >= s) || clock.seconds >= budget {
                return Ok((step, tokens, clock.seconds, false));
            }
            if self.stop.load(Ordering::SeqCst) {
                return Ok((step, tokens, clock.seconds, true));
            }
            let lr = self.opts.lr * ((step + 1) as f64 / warmup as f64).min(1.0);
            opt.set_learning_rate(lr);
            let t = Instant::now();
            let (l, n) = loss(order[step % order.len()])?;
            opt.backward_step(&l)?;
            clock.add(t.elapsed().as_secs_f64());
            tokens += n;
            step += 1;
            self.progress.step(step, l.to_scalar::<f32>()?, tokens as f64 / clock.seconds);
        }
    }
}

/// Training time without the time the process was stopped (idle training is paused
/// with SIGSTOP): a step that took over four times the usual counts as a usual one.
#[derive(Default)]
struct ActiveClock {
    seconds: f64,
    usual: Option<f64>,
}

impl ActiveClock {
    fn add(&mut self, wall: f64) {
        let counted = match self.usual {
            Some(u) => wall.min(4.0 * u),
            None => wall,
        };
        self.usual = Some(self.usual.map_or(counted, |u| 0.8 * u + 0.2 * counted));
        self.seconds += counted;
    }
}

fn head(index: &Index) -> Option<String> {
    index.with_manifest(|m| m.head.clone())
}

/// Training examples of the split's training files, plus dependency sources when asked.
fn training_texts(
    index: &Index,
    split: &data::Split,
    fim: Option<patois_prompt::FimStyle>,
    opts: &TrainOptions,
) -> Result<Vec<String>> {
    let mut texts = data::examples(index, &split.train, fim, true)?;
    if let (true, Some(src)) = (opts.dependency_bytes > 0, data::cargo_registry_src()) {
        texts.extend(data::dependency_texts(index.root(), &src, opts.dependency_bytes));
    }
    Ok(texts)
}

/// What one training run did.
struct Run {
    steps: usize,
    tokens: usize,
    seconds: f64,
    interrupted: bool,
    resumed_from: usize,
    base_loss: f32,
    adapted_loss: f32,
}

/// Writes `patois.json` into `dir` (completing `p` with the run and the data),
/// drops the checkpoint after a finished run, and reports.
fn finish(
    index: &Index,
    split: data::Split,
    run: Run,
    p: Provenance,
    dir: PathBuf,
    ckpt: &Path,
) -> Result<TrainReport> {
    let kind = p.kind.clone();
    Provenance {
        commit: head(index),
        data_files: split.train.clone(),
        held_out_files: split.held_out.keys().cloned().collect(),
        steps: run.steps,
        tokens: run.tokens,
        seconds: run.seconds,
        base_loss: run.base_loss,
        adapted_loss: run.adapted_loss,
        complete: !run.interrupted,
        ..p
    }
    .save(&dir)?;
    if !run.interrupted && ckpt.exists() {
        std::fs::remove_dir_all(ckpt)?;
    }
    Ok(TrainReport {
        out_dir: dir,
        kind,
        steps: run.steps,
        resumed_from: run.resumed_from,
        tokens: run.tokens,
        tokens_per_s: run.tokens as f64 / run.seconds.max(1e-9),
        seconds: run.seconds,
        base_loss: run.base_loss,
        adapted_loss: run.adapted_loss,
        train_files: split.train.len(),
        held_out_files: split.held_out.len(),
        split_reasons: split.reasons,
        interrupted: run.interrupted,
        rival_loss: None,
        serving_loss: None,
    })
}

fn save_tensors(path: &Path, vars: &BTreeMap<String, Var>) -> Result<()> {
    let map: HashMap<String, Tensor> =
        vars.iter().map(|(k, v)| (k.clone(), v.as_tensor().detach())).collect();
    candle_core::safetensors::save(&map, path)?;
    Ok(())
}

/// Trains the built-in model from scratch into `out` (`.patois/model/`): a BPE
/// tokenizer from the training files, a small Qwen2-layout model, and
/// `patois.json`. An interrupted run leaves `checkpoint/`, which the next resumes.
pub fn train_builtin(
    index: &Index,
    out: &Path,
    opts: &TrainOptions,
    stop: &AtomicBool,
    progress: &dyn TrainProgress,
) -> std::result::Result<TrainReport, crate::Error> {
    train_builtin_steps(index, out, opts, stop, progress).map_err(crate::Error::from_chain)
}

fn train_builtin_steps(
    index: &Index,
    out: &Path,
    opts: &TrainOptions,
    stop: &AtomicBool,
    progress: &dyn TrainProgress,
) -> Result<TrainReport> {
    crate::allocator::keep_freed_memory();
    crate::allocator::keep_freed_memory();
    let dev = Device::Cpu;
    let split = data::split(index, opts.held_out_share, opts.volatile_share)?;
    let fim = Some(patois_prompt::FimStyle::Qwen);
    let train_texts = training_texts(index, &split, fim, opts)?;
    let held_texts = data::examples(index, &split.held_out, fim, false)?;
    let ckpt = out.join("checkpoint");
    let resume = ckpt.join("model.safetensors").exists() && ckpt.join("tokenizer.json").exists();
    let (config, tokenizer, weights, start) = if resume {
        let config = Config::from_hf_json(&ckpt.join("config.json"))?;
        let tok = Tokenizer::from_file(ckpt.join("tokenizer.json"))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let w = candle_core::safetensors::load(ckpt.join("model.safetensors"), &dev)?;
        let start = Provenance::load(&ckpt).map(|p| p.steps).unwrap_or(0);
        (config, tok, w.into_iter().collect::<BTreeMap<_, _>>(), start)
    } else {
        let tok = train_tokenizer(train_texts.iter().map(String::as_str), opts.vocab_size)?;
        let vocab = tok.get_vocab_size(true).div_ceil(64) * 64;
        let heads = (opts.hidden_size / 64).max(2);
        let config = Config {
            arch: Arch::Qwen2,
            vocab_size: vocab,
            hidden_size: opts.hidden_size,
            intermediate_size: opts.hidden_size * 8 / 3 / 32 * 32,
            num_hidden_layers: opts.layers,
            num_attention_heads: heads,
            num_key_value_heads: (heads / 2).max(1),
            rope_theta: 10_000.0,
            norm_eps: 1e-6,
            // Positions past twice the training window were never seen; keep prompts within it.
            max_position_embeddings: (opts.seq_len * 2).max(256),
            tie_word_embeddings: true,
        };
        let w = random_weights(&config, opts.seed)?;
        (config, tok, w, 0)
    };
    let vars: BTreeMap<String, Var> = weights
        .iter()
        .map(|(k, t)| Ok((k.clone(), Var::from_tensor(t)?)))
        .collect::<Result<_>>()?;
    let tensors: HashMap<String, Tensor> =
        vars.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
    let mut model = Model::from_tensors(config.clone(), &tensors, &dev)?;
    model.differentiable = true;
    let train_w = windows(&tokenizer, &train_texts, opts.seq_len)?;
    let held_w = windows(&tokenizer, &held_texts, opts.seq_len)?;
    let base_loss = eval_loss(&model, &held_w, opts.eval_windows)?;
    let l = Loop { opts, stop, progress };
    let mut loss = |i: usize| Ok((loss_of(&model, &train_w[i])?, train_w[i].len() - 1));
    let (steps, tokens, seconds, interrupted) =
        l.run(vars.values().cloned().collect(), train_w.len(), &mut loss, &mut |_| Ok(()), start)?;
    let adapted_loss = eval_loss(&model, &held_w, opts.eval_windows)?;
    let dir = if interrupted { ckpt.clone() } else { out.to_path_buf() };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    save_tensors(&dir.join("model.safetensors"), &vars)?;
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&config.to_hf_json())?)?;
    tokenizer.save(dir.join("tokenizer.json"), false).map_err(|e| anyhow::anyhow!("{e}"))?;
    let run =
        Run { steps, tokens, seconds, interrupted, resumed_from: start, base_loss, adapted_loss };
    finish(
        index,
        split,
        run,
        Provenance { kind: "builtin".into(), ..Default::default() },
        dir,
        &ckpt,
    )
}

/// Up to `n` evenly spread items of `all`.
fn spread<T>(all: &[T], n: usize) -> Vec<&T> {
    let step = (all.len() / n.max(1)).max(1);
    all.iter().step_by(step).take(n).collect()
}
