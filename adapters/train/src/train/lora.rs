//! LoRA on a base model: the adapted top layers learn from the repository's code (and
//! the prompts the server builds from it), the frozen lower layers' output computed once
//! per window.

use super::{finish, spread, training_texts, Loop, Run, TrainOptions, TrainProgress, TrainReport};
use crate::data;
use anyhow::Result;
use candle_core::{DType, Device, Tensor, Var};
use patois_adapter::{save_peft, AdapterConfig, Provenance};
use patois_generate::write::Normal;
use patois_generate::{Generator, KvCache, Lora, Model};
use patois_index::Index;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use tokenizers::Tokenizer;

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

/// The adapter's matrices per adapted projection: from the checkpoint being resumed,
/// else A random and B zero (the adapter starts as the identity).
type Pairs = BTreeMap<String, (Var, Var)>;

fn train_lora_steps(
    index: &Index,
    base: &Path,
    out: &Path,
    opts: &TrainOptions,
    stop: &AtomicBool,
    progress: &dyn TrainProgress,
) -> Result<TrainReport> {
    crate::allocator::keep_freed_memory();
    let dev = Device::Cpu;
    let g = Generator::load(base, &dev)?;
    let mut model = g.model;
    model.dequantize()?; // gradients do not flow through quantized matmuls
    let tokenizer = g.tokenizer;
    let split = data::split(index, opts.held_out_share, opts.volatile_share)?;
    let fim = Some(g.info.fim).filter(|f| *f != patois_prompt::FimStyle::PrefixOnly);
    let separator = tokenizer.token_to_id("<|endoftext|>");
    let train_w = training_windows(index, &split, &model, &tokenizer, fim, opts)?;
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
    let rival_loss = rival_loss(&mut model, &held_picked, opts, &dev)?;
    let ckpt = out.join("checkpoint");
    let resumed = if ckpt.join("adapter_model.safetensors").exists() {
        Some(patois_adapter::load_peft(&ckpt, &dev)?.1)
    } else {
        None
    };
    let start =
        if resumed.is_some() { Provenance::load(&ckpt).map(|p| p.steps).unwrap_or(0) } else { 0 };
    let pairs = lora_pairs(&model, until..layers, resumed.as_ref(), opts, &dev)?;
    model.set_lora(&as_loras(&pairs, opts.lora_alpha / opts.lora_rank as f64))?;
    model.differentiable = true;
    model.frozen_base = true;
    let mut config = AdapterConfig::new(
        opts.lora_rank,
        opts.lora_alpha,
        &opts.lora_targets,
        Some(base.display().to_string()),
    );
    config.layers_to_transform = (top < layers).then(|| (until..layers).collect());
    let save = |dir: &Path| save_pairs(dir, &config, &pairs);
    let mut checkpoint = |steps: usize| -> Result<()> {
        save(&ckpt)?;
        let p = Provenance { kind: "lora".into(), steps, complete: false, ..Default::default() };
        Ok(p.save(&ckpt)?)
    };
    let vars: Vec<Var> = pairs.values().flat_map(|(a, b)| [a.clone(), b.clone()]).collect();
    let l = Loop { opts, stop, progress };
    let (steps, tokens, seconds, interrupted) = {
        let mut loss = window_loss(&model, &train_w, until, opts.data_vocabulary)?;
        l.run(vars, train_w.len(), &mut loss, &mut checkpoint, start)?
    };
    let adapted_loss = held_out_loss(&model, &held, until)?;
    model.scale_lora(opts.serving_strength as f64);
    let serving_loss = held_out_loss(&model, &held, until)?;
    let dir = if interrupted { ckpt.clone() } else { out.to_path_buf() };
    save(&dir)?;
    let run =
        Run { steps, tokens, seconds, interrupted, resumed_from: start, base_loss, adapted_loss };
    let p = provenance(base, &g.info.path, opts.serving_strength);
    let mut report = finish(index, split, run, p, dir, &ckpt)?;
    report.rival_loss = rival_loss;
    report.serving_loss = Some(serving_loss);
    Ok(report)
}

/// Where an adapter trained on `base` (its weights in `weights_file`) comes from.
fn provenance(base: &Path, weights_file: &Path, strength: f32) -> Provenance {
    let base_hash = if weights_file.is_file() {
        std::fs::read(weights_file).ok().map(|b| patois_vcs::blob_id(&b))
    } else {
        None
    };
    Provenance {
        kind: "lora".into(),
        base_model: Some(base.display().to_string()),
        base_hash,
        strength: Some(strength),
        ..Default::default()
    }
}

/// The training windows: plain code, packed; with a FIM model also the prompts the
/// server builds, each a window of its own (its line is at its end and needs the whole
/// prompt in view).
fn training_windows(
    index: &Index,
    split: &data::Split,
    model: &Model,
    tokenizer: &Tokenizer,
    fim: Option<patois_prompt::FimStyle>,
    opts: &TrainOptions,
) -> Result<Vec<Vec<u32>>> {
    let separator = tokenizer.token_to_id("<|endoftext|>");
    let tokens = patois_generate::HfTokens(tokenizer);
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
    let Some(serving) = serving else {
        let texts = training_texts(index, split, fim, opts)?;
        return packed_windows(tokenizer, &texts, opts.seq_len, separator);
    };
    let code = training_texts(index, split, None, opts)?;
    let mut w = packed_windows(tokenizer, &code, opts.seq_len, separator)?;
    for p in data::serving_examples(index, &split.train, &serving)? {
        let ids = tokenizer.encode(p.as_str(), false).map_err(|e| anyhow::anyhow!("{e}"))?;
        if ids.len() <= context {
            w.push(ids.get_ids().to_vec());
        }
    }
    Ok(w)
}

/// The held-out loss of the adapter `opts.rival` names (the one training may replace),
/// when it exists.
fn rival_loss(
    model: &mut Model,
    held_picked: &[&Vec<u32>],
    opts: &TrainOptions,
    dev: &Device,
) -> Result<Option<f32>> {
    let Some(rival) = opts.rival.as_ref().filter(|r| r.join("adapter_config.json").exists()) else {
        return Ok(None);
    };
    let (_, loras) = patois_adapter::load_peft(rival, dev)?;
    model.set_lora(&loras)?;
    // The rival may adapt any layer: run the whole model.
    let whole: Vec<(Tensor, &[u32])> = held_picked
        .iter()
        .map(|w| Ok((frozen_output(model, 0, w)?, &w[1..])))
        .collect::<Result<_>>()?;
    let loss = held_out_loss(model, &whole, 0)?;
    model.clear_lora();
    Ok(Some(loss))
}

/// The adapter's matrices for the targeted projections of `layers` (see [`Pairs`]).
fn lora_pairs(
    model: &Model,
    layers: std::ops::Range<usize>,
    resumed: Option<&HashMap<String, Lora>>,
    opts: &TrainOptions,
    dev: &Device,
) -> Result<Pairs> {
    let mut rng = Normal::new(opts.seed);
    let mut pairs = Pairs::new();
    for layer in layers {
        for (name, (inp, outp)) in model.projection_shapes() {
            if !opts.lora_targets.iter().any(|t| name.ends_with(t.as_str())) {
                continue;
            }
            let key = format!("model.layers.{layer}.{name}");
            let (a, b) = match resumed.and_then(|r| r.get(&key)) {
                Some(l) => (l.a.clone(), l.b.clone()),
                None => (
                    rng.tensor(&[opts.lora_rank, inp], (1.0 / inp as f32).sqrt())?,
                    Tensor::zeros((outp, opts.lora_rank), DType::F32, dev)?,
                ),
            };
            pairs.insert(key, (Var::from_tensor(&a)?, Var::from_tensor(&b)?));
        }
    }
    Ok(pairs)
}

/// The adapter's matrices as the model applies them (sharing their storage: training
/// updates what the model computes with).
fn as_loras(pairs: &Pairs, scale: f64) -> HashMap<String, Lora> {
    pairs
        .iter()
        .map(|(k, (a, b))| {
            (k.clone(), Lora { a: a.as_tensor().clone(), b: b.as_tensor().clone(), scale })
        })
        .collect()
}

/// Saves the adapter's matrices in the PEFT layout.
fn save_pairs(dir: &Path, config: &AdapterConfig, pairs: &Pairs) -> Result<()> {
    let tensors: BTreeMap<String, (Tensor, Tensor)> = pairs
        .iter()
        .map(|(k, (a, b))| (k.clone(), (a.as_tensor().clone(), b.as_tensor().clone())))
        .collect();
    Ok(save_peft(dir, config, &tensors)?)
}

/// The training loss of window `i` and its token count. The frozen layers' output per
/// window is computed when first needed and kept, up to 2 GiB; with `data_vocabulary`
/// the softmax runs over the tokens the windows predict only.
fn window_loss<'a>(
    model: &'a Model,
    train_w: &'a [Vec<u32>],
    until: usize,
    data_vocabulary: bool,
) -> Result<impl FnMut(usize) -> Result<(Tensor, usize)> + 'a> {
    let vocabulary = data_vocabulary.then(|| DataVocabulary::of(train_w));
    let rows = match &vocabulary {
        Some(v) => Some(model.head_rows(&v.ids)?),
        None => None,
    };
    let mut cache_room = 1usize << 31;
    let mut lower_out: Vec<Option<Tensor>> = vec![None; train_w.len()];
    Ok(move |i: usize| -> Result<(Tensor, usize)> {
        let w = &train_w[i];
        let x = match &lower_out[i] {
            Some(x) => x.clone(),
            None => {
                let x = frozen_output(model, until, w)?;
                let bytes = x.elem_count() * x.dtype().size_in_bytes();
                if bytes <= cache_room {
                    cache_room -= bytes;
                    lower_out[i] = Some(x.clone());
                }
                x
            }
        };
        let layers = model.num_layers();
        let x = model.layers_forward(x, until..layers, &mut KvCache::default())?;
        let logits = model.logits(&x, rows.as_ref())?;
        let targets = match &vocabulary {
            Some(v) => v.positions(&w[1..]),
            None => w[1..].to_vec(),
        };
        let targets = Tensor::new(targets.as_slice(), &model.device)?;
        Ok((candle_nn::loss::cross_entropy(&logits, &targets)?, w.len() - 1))
    })
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
