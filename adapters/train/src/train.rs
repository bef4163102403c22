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
    crate::allocator::keep_freed_memory();
    crate::allocator::keep_freed_memory();
    let dev = Device::Cpu;
    let g = Generator::load(base, &dev)?;
    let mut model = g.model;
    model.dequantize()?; // gradients do not flow through quantized matmuls
    let tokenizer = g.tokenizer;
    let split = data::split(index, opts.held_out_share, opts.volatile_share)?;
    let fim = Some(g.info.fim).filter(|f| *f != patois_prompt::FimStyle::PrefixOnly);
    let separator = tokenizer.token_to_id("<|endoftext|>");
    let tokens = patois_generate::HfTokens(&tokenizer);
    let context = model.config.max_position_embeddings;
    let serving = match fim {
        Some(style) if opts.prompts_per_file > 0 => Some(data::Serving {
            style,
            tokens: &tokens,
            budget: opts.prompt_budget,
            // As the engine does: the model's context bounds the prompt (room for the line).
            window: opts.prompt_window.min(context.saturating_sub(64)),
            per_file: opts.prompts_per_file,
        }),
        _ => None,
    };
    // Plain code, packed; each serving prompt a window of its own (its line is at its end
    // and needs the whole prompt in view).
    let train_w = match &serving {
        None => packed_windows(
            &tokenizer,
            &training_texts(index, &split, fim, opts)?,
            opts.seq_len,
            separator,
        )?,
        Some(serving) => {
            let code = training_texts(index, &split, None, opts)?;
            let mut w = packed_windows(&tokenizer, &code, opts.seq_len, separator)?;
            for p in data::serving_examples(index, &split.train, serving)? {
                let ids =
                    tokenizer.encode(p.as_str(), false).map_err(|e| anyhow::anyhow!("{e}"))?;
                if ids.len() <= context {
                    w.push(ids.get_ids().to_vec());
                }
            }
            w
        }
    };
    // Held out: the held-out files' own code only. Their serving prompts would carry
    // context retrieved from training files, which the adapter has seen.
    let held_texts = data::examples(index, &split.held_out, None, false)?;
    let held_w = packed_windows(&tokenizer, &held_texts, opts.seq_len, separator)?;
    let layers = model.num_layers();
    let top = if opts.top_layers == 0 { layers } else { opts.top_layers.min(layers) };
    let until = layers - top;
    let held_picked = spread(&held_w, opts.eval_windows);
    let held: Vec<(Tensor, &[u32])> = held_picked
        .iter()
        .map(|w| Ok((frozen_output(&model, until, w)?, &w[1..])))
        .collect::<Result<_>>()?;
    let base_loss = held_out_loss(&model, &held, until)?;
    let rival_loss = match opts.rival.as_ref().filter(|r| r.join("adapter_config.json").exists()) {
        Some(rival) => {
            let (_, loras) = patois_adapter::load_peft(rival, &dev)?;
            model.set_lora(&loras)?;
            // The rival may adapt any layer: run the whole model.
            let whole: Vec<(Tensor, &[u32])> = held_picked
                .iter()
                .map(|w| Ok((frozen_output(&model, 0, w)?, &w[1..])))
                .collect::<Result<_>>()?;
            let loss = held_out_loss(&model, &whole, 0)?;
            model.clear_lora();
            Some(loss)
        }
        None => None,
    };
    let ckpt = out.join("checkpoint");
    let resumed = if ckpt.join("adapter_model.safetensors").exists() {
        Some(patois_adapter::load_peft(&ckpt, &dev)?.1)
    } else {
        None
    };
    let start =
        if resumed.is_some() { Provenance::load(&ckpt).map(|p| p.steps).unwrap_or(0) } else { 0 };
    let mut rng = Normal::new(opts.seed);
    let mut pairs: BTreeMap<String, (Var, Var)> = BTreeMap::new();
    for layer in until..layers {
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
    model.differentiable = true;
    model.frozen_base = true;
    let vocabulary = opts.data_vocabulary.then(|| DataVocabulary::of(&train_w));
    let rows = match &vocabulary {
        Some(v) => Some(model.head_rows(&v.ids)?),
        None => None,
    };
    // The frozen layers' output per training window, computed when first needed and
    // kept up to 2 GiB.
    let mut cache_room = 1usize << 31;
    let mut lower_out: Vec<Option<Tensor>> = vec![None; train_w.len()];
    let vars: Vec<Var> = pairs.values().flat_map(|(a, b)| [a.clone(), b.clone()]).collect();
    let mut loss = |i: usize| -> Result<(Tensor, usize)> {
        let w = &train_w[i];
        let x = match &lower_out[i] {
            Some(x) => x.clone(),
            None => {
                let x = frozen_output(&model, until, w)?;
                let bytes = x.elem_count() * x.dtype().size_in_bytes();
                if bytes <= cache_room {
                    cache_room -= bytes;
                    lower_out[i] = Some(x.clone());
                }
                x
            }
        };
        let x = model.layers_forward(x, until..layers, &mut KvCache::default())?;
        let logits = model.logits(&x, rows.as_ref())?;
        let targets = match &vocabulary {
            Some(v) => v.positions(&w[1..]),
            None => w[1..].to_vec(),
        };
        let targets = Tensor::new(targets.as_slice(), &dev)?;
        Ok((candle_nn::loss::cross_entropy(&logits, &targets)?, w.len() - 1))
    };
    let mut config = AdapterConfig::new(
        opts.lora_rank,
        opts.lora_alpha,
        &opts.lora_targets,
        Some(base.display().to_string()),
    );
    config.layers_to_transform = (top < layers).then(|| (until..layers).collect());
    let save = |dir: &Path| -> Result<()> {
        let tensors: BTreeMap<String, (Tensor, Tensor)> = pairs
            .iter()
            .map(|(k, (a, b))| (k.clone(), (a.as_tensor().clone(), b.as_tensor().clone())))
            .collect();
        Ok(save_peft(dir, &config, &tensors)?)
    };
    let mut checkpoint = |steps: usize| -> Result<()> {
        save(&ckpt)?;
        let p = Provenance { kind: "lora".into(), steps, complete: false, ..Default::default() };
        Ok(p.save(&ckpt)?)
    };
    let l = Loop { opts, stop, progress };
    let (steps, tokens, seconds, interrupted) =
        l.run(vars, train_w.len(), &mut loss, &mut checkpoint, start)?;
    let adapted_loss = held_out_loss(&model, &held, until)?;
    model.scale_lora(opts.serving_strength as f64);
    let serving_loss = held_out_loss(&model, &held, until)?;
    let dir = if interrupted { ckpt.clone() } else { out.to_path_buf() };
    save(&dir)?;
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
        strength: Some(opts.serving_strength),
        ..Default::default()
    };
    let mut report = finish(index, split, run, p, dir, &ckpt)?;
    report.rival_loss = rival_loss;
    report.serving_loss = Some(serving_loss);
    Ok(report)
}

/// The residual stream entering the adapted layers for window `w` (its inputs): the
/// embeddings through the frozen layers `0..until`.
fn frozen_output(model: &Model, until: usize, w: &[u32]) -> Result<Tensor> {
    let x = model.embed(&w[..w.len() - 1], 0)?;
    if until == 0 {
        return Ok(x);
    }
    model.inference_forward(x, 0..until)
}

/// Mean held-out loss over the whole vocabulary, from the frozen layers' outputs.
fn held_out_loss(model: &Model, held: &[(Tensor, &[u32])], from: usize) -> Result<f32> {
    if held.is_empty() {
        return Ok(f32::NAN);
    }
    let mut sum = 0.0;
    for (x, targets) in held {
        let x = model.inference_forward(x.clone(), from..model.num_layers())?;
        let logits = model.logits(&x, None)?;
        let t = Tensor::new(*targets, &model.device)?;
        sum += candle_nn::loss::cross_entropy(&logits, &t)?.to_scalar::<f32>()?;
    }
    Ok(sum / held.len() as f32)
}

/// Up to `n` evenly spread items of `all`.
fn spread<T>(all: &[T], n: usize) -> Vec<&T> {
    let step = (all.len() / n.max(1)).max(1);
    all.iter().step_by(step).take(n).collect()
}

/// The token ids that training windows predict: the training loss's softmax runs over
/// these, a tenth or less of a code model's vocabulary, which makes the output layer
/// (the largest matrix of a small model) that much cheaper.
struct DataVocabulary {
    ids: Vec<u32>,
    position: HashMap<u32, u32>,
}

impl DataVocabulary {
    fn of(windows: &[Vec<u32>]) -> DataVocabulary {
        let mut ids: Vec<u32> = windows.iter().flat_map(|w| w[1..].iter().copied()).collect();
        ids.sort_unstable();
        ids.dedup();
        let position = ids.iter().enumerate().map(|(i, id)| (*id, i as u32)).collect();
        DataVocabulary { ids, position }
    }

    fn positions(&self, targets: &[u32]) -> Vec<u32> {
        targets.iter().map(|t| self.position[t]).collect()
    }
}

/// The examples' tokens, each followed by `separator`, cut into windows of `len + 1`.
fn packed_windows(
    tok: &Tokenizer,
    texts: &[String],
    len: usize,
    separator: Option<u32>,
) -> Result<Vec<Vec<u32>>> {
    let mut stream = Vec::new();
    for t in texts {
        let ids = tok.encode(t.as_str(), false).map_err(|e| anyhow::anyhow!("tokenizing: {e}"))?;
        stream.extend_from_slice(ids.get_ids());
        stream.extend(separator);
    }
    Ok(stream.chunks(len + 1).filter(|w| w.len() > 8).map(<[u32]>::to_vec).collect())
}
