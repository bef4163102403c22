//! The training loop: from scratch for the built-in model, LoRA on a base model.
//! On CPU by default; a time budget, progress with loss and tokens/s, a
//! checkpoint when stopped (Ctrl-C) that the next run resumes from.

use crate::data;
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use patois_adapter::{save_peft, AdapterConfig, Provenance};
use patois_generate::write::{random_weights, train_tokenizer, Normal};
use patois_generate::{Arch, Config, Generator, KvCache, Lora, Model};
use patois_index::Index;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tokenizers::Tokenizer;

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
    let step = (ws.len() / n.max(1)).max(1);
    let picked: Vec<&Vec<u32>> = ws.iter().step_by(step).take(n).collect();
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
    /// Optimises `vars` on `train` windows from `start` until the budget ends.
    /// Returns (steps done in total, tokens, seconds, interrupted).
    fn run(
        &self,
        model: &Model,
        vars: Vec<Var>,
        train: &[Vec<u32>],
        start: usize,
    ) -> Result<(usize, usize, f64, bool)> {
        if train.is_empty() {
            return Err(crate::Error::NoData.into());
        }
        let mut opt = AdamW::new(
            vars,
            ParamsAdamW { lr: self.opts.lr, weight_decay: 0.0, ..Default::default() },
        )?;
        let t0 = Instant::now();
        let budget = self.opts.minutes * 60.0;
        self.progress.start(self.opts.steps, budget);
        let mut order: Vec<usize> = (0..train.len()).collect();
        let mut rng = Normal::new(self.opts.seed);
        let shuffle = rng.samples(order.len(), 1.0);
        order.sort_by(|a, b| shuffle[*a].total_cmp(&shuffle[*b]));
        let (mut step, mut tokens) = (start, 0usize);
        let warmup = 20usize;
        loop {
            if self.opts.steps.is_some_and(|s| step >= s) || t0.elapsed().as_secs_f64() >= budget {
                return Ok((step, tokens, t0.elapsed().as_secs_f64(), false));
            }
            if self.stop.load(Ordering::SeqCst) {
                return Ok((step, tokens, t0.elapsed().as_secs_f64(), true));
            }
            let w = &train[order[step % order.len()]];
            let lr = self.opts.lr * ((step + 1) as f64 / warmup as f64).min(1.0);
            opt.set_learning_rate(lr);
            let loss = loss_of(model, w)?;
            opt.backward_step(&loss)?;
            tokens += w.len() - 1;
            step += 1;
            self.progress.step(
                step,
                loss.to_scalar::<f32>()?,
                tokens as f64 / t0.elapsed().as_secs_f64(),
            );
        }
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
    let (steps, tokens, seconds, interrupted) =
        l.run(&model, vars.values().cloned().collect(), &train_w, start)?;
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

/// Trains a LoRA adapter on top of the model at `base` into `out`
/// (`.patois/adapters/<name>/`) in the PEFT layout.
pub fn train_lora(
    index: &Index,
    base: &Path,
    out: &Path,
    opts: &TrainOptions,
    stop: &AtomicBool,
    progress: &dyn TrainProgress,
) -> std::result::Result<TrainReport, crate::Error> {
    train_lora_steps(index, base, out, opts, stop, progress).map_err(crate::Error::from_chain)
}

fn train_lora_steps(
    index: &Index,
    base: &Path,
    out: &Path,
    opts: &TrainOptions,
    stop: &AtomicBool,
    progress: &dyn TrainProgress,
) -> Result<TrainReport> {
    let dev = Device::Cpu;
    let g = Generator::load(base, &dev)?;
    let mut model = g.model;
    model.dequantize()?; // gradients do not flow through quantized matmuls
    model.differentiable = true;
    let tokenizer = g.tokenizer;
    let split = data::split(index, opts.held_out_share, opts.volatile_share)?;
    let fim = Some(g.info.fim).filter(|f| *f != patois_prompt::FimStyle::PrefixOnly);
    let train_w = windows(&tokenizer, &training_texts(index, &split, fim, opts)?, opts.seq_len)?;
    let held_w =
        windows(&tokenizer, &data::examples(index, &split.held_out, fim, false)?, opts.seq_len)?;
    let base_loss = eval_loss(&model, &held_w, opts.eval_windows)?;
    let ckpt = out.join("checkpoint");
    let resumed = if ckpt.join("adapter_model.safetensors").exists() {
        Some(patois_adapter::load_peft(&ckpt, &dev)?.1)
    } else {
        None
    };
    let start =
        if resumed.is_some() { Provenance::load(&ckpt).map(|p| p.steps).unwrap_or(0) } else { 0 };
    let c = model.config.clone();
    let mut rng = Normal::new(opts.seed);
    let mut pairs: BTreeMap<String, (Var, Var)> = BTreeMap::new();
    for layer in 0..c.num_hidden_layers {
        for (name, (inp, outp)) in model.projection_shapes() {
            if !opts.lora_targets.iter().any(|t| name.ends_with(t.as_str())) {
                continue;
            }
            let key = format!("model.layers.{layer}.{name}");
            let (a, b) = match resumed.as_ref().and_then(|r| r.get(&key)) {
                Some(l) => (l.a.clone(), l.b.clone()),
                None => (
                    rng.tensor(&[opts.lora_rank, inp], (1.0 / inp as f32).sqrt())?,
                    Tensor::zeros((outp, opts.lora_rank), DType::F32, &dev)?,
                ),
            };
            pairs.insert(key, (Var::from_tensor(&a)?, Var::from_tensor(&b)?));
        }
    }
    let scale = opts.lora_alpha / opts.lora_rank as f64;
    let loras: HashMap<String, Lora> = pairs
        .iter()
        .map(|(k, (a, b))| {
            (k.clone(), Lora { a: a.as_tensor().clone(), b: b.as_tensor().clone(), scale })
        })
        .collect();
    model.set_lora(&loras)?;
    let vars: Vec<Var> = pairs.values().flat_map(|(a, b)| [a.clone(), b.clone()]).collect();
    let l = Loop { opts, stop, progress };
    let (steps, tokens, seconds, interrupted) = l.run(&model, vars, &train_w, start)?;
    let adapted_loss = eval_loss(&model, &held_w, opts.eval_windows)?;
    let dir = if interrupted { ckpt.clone() } else { out.to_path_buf() };
    let tensors: BTreeMap<String, (Tensor, Tensor)> = pairs
        .iter()
        .map(|(k, (a, b))| (k.clone(), (a.as_tensor().clone(), b.as_tensor().clone())))
        .collect();
    save_peft(
        &dir,
        &AdapterConfig::new(
            opts.lora_rank,
            opts.lora_alpha,
            &opts.lora_targets,
            Some(base.display().to_string()),
        ),
        &tensors,
    )?;
    let weights_file = g.info.path.clone();
    let base_hash = if weights_file.is_file() {
        std::fs::read(&weights_file).ok().map(|b| patois_vcs::blob_id(&b))
    } else {
        None
    };
    let run =
        Run { steps, tokens, seconds, interrupted, resumed_from: start, base_loss, adapted_loss };
    let p = Provenance {
        kind: "lora".into(),
        base_model: Some(base.display().to_string()),
        base_hash,
        ..Default::default()
    };
    finish(index, split, run, p, dir, &ckpt)
}
