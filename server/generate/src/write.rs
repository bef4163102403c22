//! Making models with our own code: random weights in HF layout, written as
//! safetensors + config.json or as GGUF (f32, q8_0, q4_0), and a byte-level BPE
//! tokenizer trained on a repository's code. Tests build tiny models this way;
//! the built-in model and the 0.5B-shape benchmark model are made the same way.

use crate::model::{gguf_name, Arch, Config};
use anyhow::{Context, Result};
use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use std::collections::BTreeMap;
use std::path::Path;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

/// Special tokens of the built-in tokenizer (Qwen2.5-Coder names, so the Qwen FIM template applies).
pub const SPECIAL_TOKENS: &[&str] = &[
    "<|endoftext|>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|file_sep|>",
];

/// HF tensor names and shapes of a model.
pub fn tensor_shapes(c: &Config) -> Vec<(String, Vec<usize>)> {
    let (h, i, hd) = (c.hidden_size, c.intermediate_size, c.head_dim());
    let kv = c.num_key_value_heads * hd;
    let mut v = vec![("model.embed_tokens.weight".to_string(), vec![c.vocab_size, h])];
    let bias_all = c.arch == Arch::Starcoder2;
    let norm = |v: &mut Vec<(String, Vec<usize>)>, p: &str| {
        v.push((format!("{p}.weight"), vec![h]));
        if bias_all {
            v.push((format!("{p}.bias"), vec![h]));
        }
    };
    for l in 0..c.num_hidden_layers {
        let p = format!("model.layers.{l}");
        norm(&mut v, &format!("{p}.input_layernorm"));
        norm(&mut v, &format!("{p}.post_attention_layernorm"));
        for (n, out) in [("q_proj", h), ("k_proj", kv), ("v_proj", kv), ("o_proj", h)] {
            v.push((format!("{p}.self_attn.{n}.weight"), vec![out, h]));
            if bias_all || (c.arch == Arch::Qwen2 && n != "o_proj") {
                v.push((format!("{p}.self_attn.{n}.bias"), vec![out]));
            }
        }
        if c.arch == Arch::Starcoder2 {
            v.push((format!("{p}.mlp.c_fc.weight"), vec![i, h]));
            v.push((format!("{p}.mlp.c_fc.bias"), vec![i]));
            v.push((format!("{p}.mlp.c_proj.weight"), vec![h, i]));
            v.push((format!("{p}.mlp.c_proj.bias"), vec![h]));
        } else {
            v.push((format!("{p}.mlp.gate_proj.weight"), vec![i, h]));
            v.push((format!("{p}.mlp.up_proj.weight"), vec![i, h]));
            v.push((format!("{p}.mlp.down_proj.weight"), vec![h, i]));
        }
    }
    norm(&mut v, "model.norm");
    if !c.tie_word_embeddings {
        v.push(("lm_head.weight".into(), vec![c.vocab_size, h]));
    }
    v
}

/// A seeded normal generator (splitmix64 + Box-Muller): candle's CPU backend cannot be seeded.
pub struct Normal(u64);

impl Normal {
    pub fn new(seed: u64) -> Normal {
        Normal(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    /// `n` samples of N(0, std).
    pub fn samples(&mut self, n: usize, std: f32) -> Vec<f32> {
        let mut v = Vec::with_capacity(n + 1);
        while v.len() < n {
            let (u1, u2) = (self.uniform(), self.uniform());
            let r = (-2.0 * u1.ln()).sqrt();
            let t = std::f64::consts::TAU * u2;
            v.push((r * t.cos()) as f32 * std);
            v.push((r * t.sin()) as f32 * std);
        }
        v.truncate(n);
        v
    }
    pub fn tensor(&mut self, shape: &[usize], std: f32) -> Result<Tensor> {
        let n = shape.iter().product();
        Ok(Tensor::from_vec(self.samples(n, std), shape, &Device::Cpu)?)
    }
}

/// Random weights: N(0, 0.02) matrices, norms near one, small biases. `seed` makes them repeatable.
pub fn random_weights(c: &Config, seed: u64) -> Result<BTreeMap<String, Tensor>> {
    let mut rng = Normal::new(seed);
    let mut out = BTreeMap::new();
    for (name, shape) in tensor_shapes(c) {
        let t = if name.ends_with("norm.weight") || name.ends_with("layernorm.weight") {
            (rng.tensor(&shape, 0.02)? + 1.0)?
        } else if name.ends_with(".bias") {
            rng.tensor(&shape, 0.01)?
        } else {
            rng.tensor(&shape, 0.02)?
        };
        out.insert(name, t);
    }
    Ok(out)
}

/// Weights of a model that says `token` whatever it reads: every layer is zero, so the
/// residual stream is the input embedding, and every embedding shares one direction in
/// which `token`'s is ten times longer, so `token` has the largest logit after any input
/// (tied embeddings). Deterministic ghost text for tests whose point is not the model.
pub fn constant_weights(c: &Config, token: u32, seed: u64) -> Result<BTreeMap<String, Tensor>> {
    let mut rng = Normal::new(seed);
    let mut out = BTreeMap::new();
    for (name, shape) in tensor_shapes(c) {
        let t = if name.ends_with("norm.weight") || name.ends_with("layernorm.weight") {
            Tensor::ones(shape.as_slice(), DType::F32, &Device::Cpu)?
        } else if name == "model.embed_tokens.weight" || name == "lm_head.weight" {
            let (vocab, hidden) = (shape[0], shape[1]);
            let mut rows = rng.tensor(&shape, 0.01)?.to_vec2::<f32>()?;
            for (i, row) in rows.iter_mut().enumerate() {
                row[0] = if i == token as usize { 10.0 } else { 1.0 };
            }
            Tensor::from_vec(rows.concat(), (vocab, hidden), &Device::Cpu)?
        } else {
            Tensor::zeros(shape.as_slice(), DType::F32, &Device::Cpu)?
        };
        out.insert(name, t);
    }
    Ok(out)
}

/// A tokenizer trained on `texts` and `shape` with its vocabulary (rounded up to a
/// multiple of 64, as real models pad it).
fn tokenizer_and_config<I, S>(texts: I, shape: &Config) -> Result<(Tokenizer, Config)>
where
    I: Iterator<Item = S> + Send,
    S: AsRef<str> + Send,
{
    let tok = train_tokenizer(texts, shape.vocab_size.min(4096))?;
    let config = Config { vocab_size: tok.get_vocab_size(true).div_ceil(64) * 64, ..shape.clone() };
    Ok((tok, config))
}

/// The id and text of `word`'s first token.
fn first_token(tok: &Tokenizer, word: &str) -> Result<(u32, String)> {
    let enc = tok.encode(word, false).map_err(|e| anyhow::anyhow!("tokenizing {word:?}: {e}"))?;
    let id = *enc.get_ids().first().context("an empty word")?;
    let text = tok.decode(&[id], false).map_err(|e| anyhow::anyhow!("decoding: {e}"))?;
    Ok((id, text))
}

/// A model folder (safetensors, config, tokenizer trained on `texts`) whose completions
/// repeat one token: the first token of `word`. Returns that token's text.
pub fn make_constant_model_dir<I, S>(
    dir: &Path,
    texts: I,
    shape: &Config,
    word: &str,
) -> Result<String>
where
    I: Iterator<Item = S> + Send,
    S: AsRef<str> + Send,
{
    let (tok, config) = tokenizer_and_config(texts, shape)?;
    let (id, text) = first_token(&tok, word)?;
    write_safetensors(dir, &config, &constant_weights(&config, id, 1)?)?;
    tok.save(dir.join("tokenizer.json"), false)
        .map_err(|e| anyhow::anyhow!("writing the tokenizer: {e}"))?;
    Ok(text)
}

/// The same model as [`make_constant_model_dir`] as one GGUF file that carries its
/// tokenizer (what llama.cpp and the servers built on it load). Returns the word's token.
pub fn make_constant_gguf<I, S>(path: &Path, texts: I, shape: &Config, word: &str) -> Result<String>
where
    I: Iterator<Item = S> + Send,
    S: AsRef<str> + Send,
{
    let (tok, config) = tokenizer_and_config(texts, shape)?;
    let (id, text) = first_token(&tok, word)?;
    let meta = tokenizer_metadata(&tok, "gpt-2", config.vocab_size)?;
    write_gguf_with(path, &config, &constant_weights(&config, id, 1)?, GgmlDType::F32, meta)?;
    Ok(text)
}

/// Writes `model.safetensors` and `config.json` into `dir`.
pub fn write_safetensors(dir: &Path, c: &Config, weights: &BTreeMap<String, Tensor>) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let map: std::collections::HashMap<String, Tensor> =
        weights.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    candle_core::safetensors::save(&map, dir.join("model.safetensors"))?;
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&c.to_hf_json())?)?;
    Ok(())
}

/// Writes a LoRA adapter as llama.cpp loads one (the layout `convert_lora_to_gguf.py`
/// writes): per adapted matrix `<gguf name>.lora_a` (r × in) and `.lora_b` (out × r),
/// `general.type = adapter`, `adapter.type = lora`, `adapter.lora.alpha`. `loras` maps a
/// Hugging Face layer name (`model.layers.0.self_attn.q_proj`) to its (A, B). llama.cpp
/// scales by alpha / r, as PEFT does.
pub fn write_gguf_lora(
    path: &Path,
    base: &Config,
    loras: &BTreeMap<String, (Tensor, Tensor)>,
    alpha: f32,
) -> Result<()> {
    let mut qs: Vec<(String, QTensor)> = Vec::new();
    for (layer, (a, b)) in loras {
        let name = gguf_name(&format!("{layer}.weight"));
        // B's rows are the matrix's output rows, which llama.cpp's llama layout permutes.
        let b = llama_cpp_rows(base, layer, b.to_dtype(DType::F32)?)?;
        for (suffix, t) in [("lora_a", a.to_dtype(DType::F32)?), ("lora_b", b)] {
            let q = QTensor::quantize(&t.contiguous()?, GgmlDType::F32)?;
            qs.push((format!("{name}.{suffix}"), q));
        }
    }
    use gguf_file::Value as V;
    let meta: Vec<(String, V)> = vec![
        ("general.architecture".into(), V::String(base.arch.name().into())),
        ("general.type".into(), V::String("adapter".into())),
        ("adapter.type".into(), V::String("lora".into())),
        ("adapter.lora.alpha".into(), V::F32(alpha)),
    ];
    let meta_refs: Vec<(&str, &V)> = meta.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = qs.iter().map(|(k, t)| (k.as_str(), t)).collect();
    let mut f =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    gguf_file::write(&mut f, &meta_refs, &tensor_refs)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The rows of `layer`'s matrix (or its LoRA B) as llama.cpp stores them: llama Q/K rows
/// permuted for interleaved rotary embeddings, everything else as it is.
fn llama_cpp_rows(c: &Config, layer: &str, t: Tensor) -> Result<Tensor> {
    let layer = layer.strip_suffix(".weight").unwrap_or(layer);
    match c.arch {
        Arch::Llama if layer.ends_with("q_proj") => {
            permute_for_interleaved(&t, c.num_attention_heads)
        }
        Arch::Llama if layer.ends_with("k_proj") => {
            permute_for_interleaved(&t, c.num_key_value_heads)
        }
        _ => Ok(t),
    }
}

/// llama.cpp stores llama Q/K rows permuted for interleaved rotary embeddings.
fn permute_for_interleaved(w: &Tensor, heads: usize) -> Result<Tensor> {
    let (out, inp) = w.dims2()?;
    let hd = out / heads;
    Ok(w.reshape((heads, 2, hd / 2, inp))?.transpose(1, 2)?.reshape((out, inp))?.contiguous()?)
}

/// Writes a GGUF file. Matrices get `dtype` (F32, Q8_0, Q4_0, ...); vectors stay f32.
pub fn write_gguf(
    path: &Path,
    c: &Config,
    weights: &BTreeMap<String, Tensor>,
    dtype: GgmlDType,
) -> Result<()> {
    write_gguf_with(path, c, weights, dtype, Vec::new())
}

/// `tokenizer.ggml.*` metadata for a byte-level BPE tokenizer, the way llama.cpp's
/// converter writes it: tokens by id, merges, token types (added tokens are control
/// tokens), and `pre` naming the pre-tokenizer (`gpt-2`, `qwen2`, `smollm`...). The token
/// list is padded with unused tokens to `vocab_size`, the model's embedding rows.
pub fn tokenizer_metadata(
    tok: &Tokenizer,
    pre: &str,
    vocab_size: usize,
) -> Result<Vec<(String, gguf_file::Value)>> {
    use gguf_file::Value as V;
    let json: serde_json::Value = serde_json::from_str(
        &tok.to_string(false).map_err(|e| anyhow::anyhow!("serializing the tokenizer: {e}"))?,
    )?;
    let model = &json["model"];
    let vocab = model["vocab"].as_object().context("the tokenizer has no BPE vocabulary")?;
    let added = tok.get_added_tokens_decoder();
    let size = tok.get_vocab_size(true).max(vocab_size);
    let mut tokens = vec![String::new(); size];
    let mut types = vec![1i32; size];
    for (t, id) in vocab {
        let id = id.as_u64().context("vocabulary ids are numbers")? as usize;
        if id < size {
            tokens[id] = t.clone();
        }
    }
    for (id, t) in &added {
        let id = *id as usize;
        if id < size {
            tokens[id] = t.content.clone();
            types[id] = 3;
        }
    }
    for (i, t) in tokens.iter_mut().enumerate() {
        if t.is_empty() {
            *t = format!("[PAD{i}]");
            types[i] = 5;
        }
    }
    let merges: Vec<V> = model["merges"]
        .as_array()
        .context("the tokenizer has no merges")?
        .iter()
        .filter_map(|m| match m {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Array(p) => Some(format!("{} {}", p[0].as_str()?, p[1].as_str()?)),
            _ => None,
        })
        .map(V::String)
        .collect();
    let eos = tok.token_to_id("<|endoftext|>").unwrap_or(0);
    Ok(vec![
        ("tokenizer.ggml.model".into(), V::String("gpt2".into())),
        ("tokenizer.ggml.pre".into(), V::String(pre.into())),
        ("tokenizer.ggml.tokens".into(), V::Array(tokens.into_iter().map(V::String).collect())),
        ("tokenizer.ggml.token_type".into(), V::Array(types.into_iter().map(V::I32).collect())),
        ("tokenizer.ggml.merges".into(), V::Array(merges)),
        ("tokenizer.ggml.eos_token_id".into(), V::U32(eos)),
        ("tokenizer.ggml.bos_token_id".into(), V::U32(eos)),
        ("tokenizer.ggml.add_bos_token".into(), V::Bool(false)),
    ])
}

/// [`write_gguf`] with more metadata (a tokenizer from [`tokenizer_metadata`]).
pub fn write_gguf_with(
    path: &Path,
    c: &Config,
    weights: &BTreeMap<String, Tensor>,
    dtype: GgmlDType,
    extra: Vec<(String, gguf_file::Value)>,
) -> Result<()> {
    let mut qs: Vec<(String, QTensor)> = Vec::new();
    for (name, t) in weights {
        let t = llama_cpp_rows(c, name, t.to_dtype(DType::F32)?)?;
        let dt = if t.rank() == 1 { GgmlDType::F32 } else { dtype };
        qs.push((
            gguf_name(name),
            QTensor::quantize(&t, dt).with_context(|| format!("quantizing {name} to {dt:?}"))?,
        ));
    }
    let mut meta = c.gguf_metadata();
    meta.extend(extra);
    let meta_refs: Vec<(&str, &gguf_file::Value)> =
        meta.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = qs.iter().map(|(k, v)| (k.as_str(), v)).collect();
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p)?;
    }
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    gguf_file::write(&mut f, &meta_refs, &tensor_refs)?;
    Ok(())
}

/// Trains a byte-level BPE tokenizer on `texts` with the built-in special tokens.
pub fn train_tokenizer<I, S>(texts: I, vocab_size: usize) -> Result<Tokenizer>
where
    I: Iterator<Item = S> + Send,
    S: AsRef<str> + Send,
{
    let specials: Vec<AddedToken> =
        SPECIAL_TOKENS.iter().map(|t| AddedToken::from(*t, true)).collect();
    let trainer = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(specials)
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    let mut trainer = TrainerWrapper::BpeTrainer(trainer);
    let mut tok = Tokenizer::new(BPE::default());
    tok.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tok.with_decoder(Some(ByteLevel::new(false, true, true)));
    tok.train(&mut trainer, texts).map_err(|e| anyhow::anyhow!("training the tokenizer: {e}"))?;
    Ok(tok)
}

/// A complete model folder (config.json, model.safetensors, tokenizer.json) with
/// random weights: the tokenizer trained on `texts`, the given shape otherwise.
pub fn make_model_dir<I, S>(dir: &Path, texts: I, shape: &Config, seed: u64) -> Result<Config>
where
    I: Iterator<Item = S> + Send,
    S: AsRef<str> + Send,
{
    let (tok, config) = tokenizer_and_config(texts, shape)?;
    write_safetensors(dir, &config, &random_weights(&config, seed)?)?;
    tok.save(dir.join("tokenizer.json"), false)
        .map_err(|e| anyhow::anyhow!("writing the tokenizer: {e}"))?;
    Ok(config)
}

/// A tiny shape for tests: two layers, 64 wide.
pub fn tiny_config(vocab: usize) -> Config {
    Config {
        arch: Arch::Qwen2,
        vocab_size: vocab,
        hidden_size: 64,
        intermediate_size: 128,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        rope_theta: 10_000.0,
        norm_eps: 1e-6,
        max_position_embeddings: 1024,
        tie_word_embeddings: true,
    }
}
