//! A decoder-only transformer in candle covering the Llama, Qwen2 and StarCoder2
//! layouts, with a KV cache we own so a prompt's common prefix can be kept and
//! the rest recomputed. Weights load from safetensors (HF names) or GGUF
//! (llama.cpp names, quantized matmuls).

use anyhow::{bail, Context, Result};
use candle_core::quantized::{gguf_file, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::causal_softmax::CausalSoftmax;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Llama,
    Qwen2,
    Starcoder2,
}

impl Arch {
    pub fn parse(s: &str) -> Option<Arch> {
        match s.to_ascii_lowercase().as_str() {
            "llama" | "llamaforcausallm" | "mistral" | "mistralforcausallm" => Some(Arch::Llama),
            "qwen2" | "qwen2forcausallm" => Some(Arch::Qwen2),
            "starcoder2" | "starcoder2forcausallm" => Some(Arch::Starcoder2),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Starcoder2 => "starcoder2",
        }
    }
    /// StarCoder2 uses LayerNorm, a GELU MLP and biases everywhere.
    fn layer_norm(self) -> bool {
        self == Arch::Starcoder2
    }
}

/// The shape of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub arch: Arch,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub rope_theta: f64,
    pub norm_eps: f64,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
}

impl Config {
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Reads an HF `config.json`.
    pub fn from_hf_json(path: &Path) -> Result<Config> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        let arch_name =
            v["model_type"].as_str().or_else(|| v["architectures"][0].as_str()).unwrap_or("");
        let Some(arch) = Arch::parse(arch_name) else {
            bail!("{}: architecture `{arch_name}` is not supported; patois runs llama, qwen2 and starcoder2 models", path.display())
        };
        let n = |k: &str| -> Result<usize> {
            v[k].as_u64()
                .map(|x| x as usize)
                .with_context(|| format!("{} has no `{k}`", path.display()))
        };
        let heads = n("num_attention_heads")?;
        Ok(Config {
            arch,
            vocab_size: n("vocab_size")?,
            hidden_size: n("hidden_size")?,
            intermediate_size: n("intermediate_size")?,
            num_hidden_layers: n("num_hidden_layers")?,
            num_attention_heads: heads,
            num_key_value_heads: n("num_key_value_heads").unwrap_or(heads),
            rope_theta: v["rope_theta"].as_f64().unwrap_or(10_000.0),
            norm_eps: v["rms_norm_eps"]
                .as_f64()
                .or(v["norm_epsilon"].as_f64())
                .or(v["layer_norm_epsilon"].as_f64())
                .unwrap_or(1e-6),
            max_position_embeddings: n("max_position_embeddings").unwrap_or(4096),
            tie_word_embeddings: v["tie_word_embeddings"].as_bool().unwrap_or(false),
        })
    }

    /// The HF `config.json` for this shape.
    pub fn to_hf_json(&self) -> serde_json::Value {
        let arch = match self.arch {
            Arch::Llama => "LlamaForCausalLM",
            Arch::Qwen2 => "Qwen2ForCausalLM",
            Arch::Starcoder2 => "Starcoder2ForCausalLM",
        };
        serde_json::json!({
            "architectures": [arch],
            "model_type": self.arch.name(),
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "rope_theta": self.rope_theta,
            "rms_norm_eps": self.norm_eps,
            "norm_epsilon": self.norm_eps,
            "max_position_embeddings": self.max_position_embeddings,
            "tie_word_embeddings": self.tie_word_embeddings,
            "use_bias": self.arch == Arch::Starcoder2,
            "torch_dtype": "float32",
        })
    }

    /// The shape of the model at `path`: a GGUF file (its metadata) or a folder with
    /// `config.json`.
    pub fn of_model(path: &Path) -> Result<Config> {
        if path.is_dir() {
            return Config::from_hf_json(&path.join("config.json"));
        }
        let mut f =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let content = gguf_file::Content::read(&mut f)
            .with_context(|| format!("{} is not a GGUF file", path.display()))?;
        Config::from_gguf(&content, path)
    }

    fn from_gguf(c: &gguf_file::Content, path: &Path) -> Result<Config> {
        let arch_name = c
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        let Some(arch) = Arch::parse(&arch_name) else {
            bail!("{}: architecture `{arch_name}` is not supported; patois runs llama, qwen2 and starcoder2 models", path.display())
        };
        let key = |k: &str| format!("{arch_name}.{k}");
        let u = |k: &str| -> Result<usize> {
            c.metadata
                .get(&key(k))
                .and_then(|v| v.to_u64().ok().or(v.to_u32().ok().map(u64::from)))
                .map(|x| x as usize)
                .with_context(|| format!("{} has no `{}`", path.display(), key(k)))
        };
        let f = |k: &str| c.metadata.get(&key(k)).and_then(|v| v.to_f32().ok()).map(f64::from);
        let heads = u("attention.head_count")?;
        let vocab = c
            .tensor_infos
            .get("token_embd.weight")
            .map(|t| t.shape.dims()[0])
            .context("GGUF without token_embd.weight")?;
        Ok(Config {
            arch,
            vocab_size: vocab,
            hidden_size: u("embedding_length")?,
            intermediate_size: u("feed_forward_length")?,
            num_hidden_layers: u("block_count")?,
            num_attention_heads: heads,
            num_key_value_heads: u("attention.head_count_kv").unwrap_or(heads),
            rope_theta: f("rope.freq_base").unwrap_or(10_000.0),
            norm_eps: f("attention.layer_norm_rms_epsilon")
                .or(f("attention.layer_norm_epsilon"))
                .unwrap_or(1e-6),
            max_position_embeddings: u("context_length").unwrap_or(4096),
            tie_word_embeddings: !c.tensor_infos.contains_key("output.weight"),
        })
    }

    /// GGUF metadata for this shape.
    pub fn gguf_metadata(&self) -> Vec<(String, gguf_file::Value)> {
        use gguf_file::Value as V;
        let a = self.arch.name();
        vec![
            ("general.architecture".into(), V::String(a.into())),
            (format!("{a}.embedding_length"), V::U32(self.hidden_size as u32)),
            (format!("{a}.feed_forward_length"), V::U32(self.intermediate_size as u32)),
            (format!("{a}.block_count"), V::U32(self.num_hidden_layers as u32)),
            (format!("{a}.attention.head_count"), V::U32(self.num_attention_heads as u32)),
            (format!("{a}.attention.head_count_kv"), V::U32(self.num_key_value_heads as u32)),
            (format!("{a}.rope.freq_base"), V::F32(self.rope_theta as f32)),
            (format!("{a}.attention.layer_norm_rms_epsilon"), V::F32(self.norm_eps as f32)),
            (format!("{a}.attention.layer_norm_epsilon"), V::F32(self.norm_eps as f32)),
            (format!("{a}.context_length"), V::U32(self.max_position_embeddings as u32)),
        ]
    }
}

/// HF tensor name → GGUF tensor name.
pub fn gguf_name(hf: &str) -> String {
    let rest = hf.strip_prefix("model.").unwrap_or(hf);
    match rest {
        "embed_tokens.weight" => return "token_embd.weight".into(),
        "norm.weight" => return "output_norm.weight".into(),
        "norm.bias" => return "output_norm.bias".into(),
        "lm_head.weight" => return "output.weight".into(),
        _ => {}
    }
    let Some(layer) = rest.strip_prefix("layers.") else { return hf.to_string() };
    let (i, tail) = layer.split_once('.').unwrap_or((layer, ""));
    let tail = tail
        .replace("input_layernorm", "attn_norm")
        .replace("post_attention_layernorm", "ffn_norm")
        .replace("self_attn.q_proj", "attn_q")
        .replace("self_attn.k_proj", "attn_k")
        .replace("self_attn.v_proj", "attn_v")
        .replace("self_attn.o_proj", "attn_output")
        .replace("mlp.gate_proj", "ffn_gate")
        .replace("mlp.up_proj", "ffn_up")
        .replace("mlp.down_proj", "ffn_down")
        .replace("mlp.c_fc", "ffn_up")
        .replace("mlp.c_proj", "ffn_down");
    format!("blk.{i}.{tail}")
}

/// A low-rank update `scale · B·A` added to a linear layer's output.
#[derive(Clone)]
pub struct Lora {
    pub a: Tensor,
    pub b: Tensor,
    pub scale: f64,
}

/// A linear layer: dense or quantized weights, optional bias, optional LoRA.
#[derive(Clone)]
pub struct Lin {
    pub dense: Option<Tensor>,
    pub quant: Option<Arc<QMatMul>>,
    pub bias: Option<Tensor>,
    pub lora: Option<Lora>,
}

impl Lin {
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with(x, false)
    }

    /// `frozen`: the dense weight gets no gradient (LoRA training), which halves the
    /// backward pass's work on it.
    fn forward_with(&self, x: &Tensor, frozen: bool) -> Result<Tensor> {
        let mut y = match (&self.dense, &self.quant) {
            (Some(w), _) if frozen => {
                x.contiguous()?.apply_op1(crate::frozen::FrozenMatmul { weight: w.clone() })?
            }
            (Some(w), _) => x.broadcast_matmul(&w.t()?)?,
            (None, Some(q)) => q.forward(x)?,
            _ => unreachable!("a Lin always has weights"),
        };
        if let Some(b) = &self.bias {
            y = y.broadcast_add(b)?;
        }
        if let Some(l) = &self.lora {
            let d = x.broadcast_matmul(&l.a.t()?)?.broadcast_matmul(&l.b.t()?)?;
            y = (y + (d * l.scale)?)?;
        }
        Ok(y)
    }
    /// The weight as a dense tensor (dequantized when quantized).
    pub fn weight(&self, dev: &Device) -> Result<Tensor> {
        match (&self.dense, &self.quant) {
            (Some(w), _) => Ok(w.clone()),
            (None, Some(q)) => match q.as_ref() {
                QMatMul::QTensor(t) => Ok(t.dequantize(dev)?),
                QMatMul::Tensor(t) | QMatMul::TensorF16(t) => Ok(t.to_dtype(DType::F32)?),
            },
            _ => unreachable!(),
        }
    }
}

enum Norm {
    Rms(Tensor, f64),
    Layer(Tensor, Tensor, f64),
}

impl Norm {
    /// `differentiable`: composed ops with gradients instead of candle's fused kernels.
    fn forward(&self, x: &Tensor, differentiable: bool) -> Result<Tensor> {
        Ok(match (self, differentiable) {
            (Norm::Rms(w, eps), false) => candle_nn::ops::rms_norm(x, w, *eps as f32)?,
            (Norm::Rms(w, eps), true) => candle_nn::ops::rms_norm_slow(x, w, *eps as f32)?,
            (Norm::Layer(w, b, eps), false) => candle_nn::ops::layer_norm(x, w, b, *eps as f32)?,
            (Norm::Layer(w, b, eps), true) => {
                candle_nn::ops::layer_norm_slow(x, w, b, *eps as f32)?
            }
        })
    }
}

struct Layer {
    norm1: Norm,
    norm2: Norm,
    q: Lin,
    k: Lin,
    v: Lin,
    o: Lin,
    /// SwiGLU: gate, up, down. GELU (StarCoder2): up = c_fc, down = c_proj, no gate.
    gate: Option<Lin>,
    up: Lin,
    down: Lin,
}

impl Layer {
    /// The layer's linear projections.
    fn linears_mut(&mut self) -> impl Iterator<Item = &mut Lin> {
        [&mut self.q, &mut self.k, &mut self.v, &mut self.o, &mut self.up, &mut self.down]
            .into_iter()
            .chain(self.gate.as_mut())
    }
}

/// Where weights come from.
enum Source<'a> {
    Safetensors(VarBuilder<'a>),
    /// Tensors by HF name (trainable `Var`s when training).
    Map(&'a HashMap<String, Tensor>),
    Gguf {
        content: gguf_file::Content,
        file: std::fs::File,
        path: &'a Path,
    },
}

impl Source<'_> {
    fn has(&self, hf: &str) -> bool {
        match self {
            Source::Safetensors(vb) => vb.contains_tensor(hf),
            Source::Map(m) => m.contains_key(hf),
            Source::Gguf { content, .. } => content.tensor_infos.contains_key(&gguf_name(hf)),
        }
    }
    fn tensor(&mut self, hf: &str, dev: &Device) -> Result<Tensor> {
        match self {
            Source::Safetensors(vb) => {
                Ok(vb.get_unchecked_dtype(hf, DType::F32)?.to_dtype(DType::F32)?)
            }
            Source::Map(m) => m.get(hf).cloned().with_context(|| format!("no tensor {hf}")),
            Source::Gguf { content, file, path } => {
                let q = content
                    .tensor(file, &gguf_name(hf), dev)
                    .with_context(|| format!("{}: reading {}", path.display(), gguf_name(hf)))?;
                Ok(q.dequantize(dev)?)
            }
        }
    }
    fn lin(&mut self, hf: &str, dev: &Device) -> Result<Lin> {
        let bias = if self.has(&format!("{hf}.bias")) {
            Some(self.tensor(&format!("{hf}.bias"), dev)?)
        } else {
            None
        };
        match self {
            Source::Safetensors(_) | Source::Map(_) => Ok(Lin {
                dense: Some(self.tensor(&format!("{hf}.weight"), dev)?),
                quant: None,
                bias,
                lora: None,
            }),
            Source::Gguf { content, file, path } => {
                let name = gguf_name(&format!("{hf}.weight"));
                let q: QTensor = content
                    .tensor(file, &name, dev)
                    .with_context(|| format!("{}: reading {name}", path.display()))?;
                Ok(Lin {
                    dense: None,
                    quant: Some(Arc::new(QMatMul::from_qtensor(q)?)),
                    bias,
                    lora: None,
                })
            }
        }
    }
    fn norm(&mut self, hf: &str, arch: Arch, eps: f64, dev: &Device) -> Result<Norm> {
        let w = self.tensor(&format!("{hf}.weight"), dev)?;
        Ok(if arch.layer_norm() {
            let b = if self.has(&format!("{hf}.bias")) {
                self.tensor(&format!("{hf}.bias"), dev)?
            } else {
                w.zeros_like()?
            };
            Norm::Layer(w, b, eps)
        } else {
            Norm::Rms(w, eps)
        })
    }
}

/// Per-layer keys and values of the tokens processed so far.
#[derive(Clone, Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    /// The tokens whose keys and values are cached, in order.
    pub tokens: Vec<u32>,
}

impl KvCache {
    pub fn len(&self) -> usize {
        self.tokens.len()
    }
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
    /// Keeps the first `n` positions.
    pub fn truncate(&mut self, n: usize) -> Result<()> {
        if n >= self.tokens.len() {
            return Ok(());
        }
        self.tokens.truncate(n);
        for l in self.layers.iter_mut() {
            *l = match l.take() {
                Some((k, v)) if n > 0 => Some((k.narrow(2, 0, n)?, v.narrow(2, 0, n)?)),
                _ => None,
            };
        }
        Ok(())
    }
}

/// A loaded model.
pub struct Model {
    pub config: Config,
    pub device: Device,
    embed: Tensor,
    layers: Vec<Layer>,
    norm: Norm,
    lm_head: Lin,
    cos: Tensor,
    sin: Tensor,
    /// GGUF llama checkpoints store Q/K permuted for interleaved rotary embeddings.
    interleaved_rope: bool,
    /// Use differentiable ops (training); candle's fused kernels have no backward pass.
    pub differentiable: bool,
    /// The base weights are frozen (LoRA training): gradients reach activations and LoRA
    /// matrices, never the dense weights.
    pub frozen_base: bool,
}

impl Model {
    /// Loads `model.safetensors` (or shards) + `config.json` from a folder.
    pub fn from_safetensors(dir: &Path, dev: &Device) -> Result<Model> {
        let config = Config::from_hf_json(&dir.join("config.json"))?;
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|x| x == "safetensors")
                    && !p.file_name().unwrap().to_string_lossy().starts_with("adapter")
            })
            .collect();
        files.sort();
        if files.is_empty() {
            bail!("{} has a config.json but no *.safetensors weights", dir.display());
        }
        // SAFETY: the files are memory-mapped read-only; patois never writes them while loaded.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&files, DType::F32, dev)? };
        Self::build(config, Source::Safetensors(vb), dev, false)
    }

    /// Builds a model from tensors by HF name; with `Var`s, gradients reach them.
    pub fn from_tensors(
        config: Config,
        weights: &HashMap<String, Tensor>,
        dev: &Device,
    ) -> Result<Model> {
        Self::build(config, Source::Map(weights), dev, false)
    }

    /// Loads a GGUF file (quantized or not).
    pub fn from_gguf(path: &Path, dev: &Device) -> Result<Model> {
        let mut file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let content = gguf_file::Content::read(&mut file)
            .with_context(|| format!("{} is not a GGUF file", path.display()))?;
        let config = Config::from_gguf(&content, path)?;
        let interleaved = config.arch == Arch::Llama;
        Self::build(config, Source::Gguf { content, file, path }, dev, interleaved)
    }

    fn build(
        config: Config,
        mut src: Source,
        dev: &Device,
        interleaved_rope: bool,
    ) -> Result<Model> {
        let c = &config;
        let embed = src.tensor("model.embed_tokens.weight", dev)?;
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let p = format!("model.layers.{i}");
            let gelu = c.arch == Arch::Starcoder2;
            layers.push(Layer {
                norm1: src.norm(&format!("{p}.input_layernorm"), c.arch, c.norm_eps, dev)?,
                norm2: src.norm(
                    &format!("{p}.post_attention_layernorm"),
                    c.arch,
                    c.norm_eps,
                    dev,
                )?,
                q: src.lin(&format!("{p}.self_attn.q_proj"), dev)?,
                k: src.lin(&format!("{p}.self_attn.k_proj"), dev)?,
                v: src.lin(&format!("{p}.self_attn.v_proj"), dev)?,
                o: src.lin(&format!("{p}.self_attn.o_proj"), dev)?,
                gate: if gelu { None } else { Some(src.lin(&format!("{p}.mlp.gate_proj"), dev)?) },
                up: src.lin(&format!("{p}.mlp.{}", if gelu { "c_fc" } else { "up_proj" }), dev)?,
                down: src
                    .lin(&format!("{p}.mlp.{}", if gelu { "c_proj" } else { "down_proj" }), dev)?,
            });
        }
        let norm = src.norm("model.norm", c.arch, c.norm_eps, dev)?;
        let lm_head = if src.has("lm_head.weight") && !c.tie_word_embeddings {
            src.lin("lm_head", dev)?
        } else if matches!(src, Source::Gguf { .. }) {
            // Tied head on a quantized checkpoint: multiply by the quantized embedding,
            // not its f32 copy (a quarter to an eighth of the memory read per token).
            src.lin("model.embed_tokens", dev)?
        } else {
            Lin { dense: Some(embed.clone()), quant: None, bias: None, lora: None }
        };
        let (cos, sin) = rope_tables(c, dev)?;
        Ok(Model {
            config,
            device: dev.clone(),
            embed,
            layers,
            norm,
            lm_head,
            cos,
            sin,
            interleaved_rope,
            differentiable: false,
            frozen_base: false,
        })
    }

    /// Attaches LoRA updates to the named linear layers (HF names without `.weight`).
    pub fn set_lora(&mut self, loras: &HashMap<String, Lora>) -> Result<usize> {
        let mut n = 0;
        let (up, down) = if self.config.arch == Arch::Starcoder2 {
            ("mlp.c_fc", "mlp.c_proj")
        } else {
            ("mlp.up_proj", "mlp.down_proj")
        };
        for (i, l) in self.layers.iter_mut().enumerate() {
            let p = format!("model.layers.{i}");
            for (name, lin) in [
                ("self_attn.q_proj", &mut l.q),
                ("self_attn.k_proj", &mut l.k),
                ("self_attn.v_proj", &mut l.v),
                ("self_attn.o_proj", &mut l.o),
                (up, &mut l.up),
                (down, &mut l.down),
            ] {
                if let Some(lora) = loras.get(&format!("{p}.{name}")) {
                    lin.lora = Some(lora.clone());
                    n += 1;
                }
            }
            if let (Some(g), Some(lora)) =
                (l.gate.as_mut(), loras.get(&format!("{p}.mlp.gate_proj")))
            {
                g.lora = Some(lora.clone());
                n += 1;
            }
        }
        Ok(n)
    }

    /// Multiplies every LoRA update by `factor` (its strength).
    pub fn scale_lora(&mut self, factor: f64) {
        for l in self.layers.iter_mut() {
            for lora in l.linears_mut().filter_map(|lin| lin.lora.as_mut()) {
                lora.scale *= factor;
            }
        }
    }

    /// Removes every LoRA update set by [`Model::set_lora`].
    pub fn clear_lora(&mut self) {
        for l in self.layers.iter_mut() {
            for lin in l.linears_mut() {
                lin.lora = None;
            }
        }
    }

    /// Input and output sizes of each layer's projections, by HF name.
    pub fn projection_shapes(&self) -> Vec<(&'static str, (usize, usize))> {
        let c = &self.config;
        let (h, i, kv) = (c.hidden_size, c.intermediate_size, c.num_key_value_heads * c.head_dim());
        let mut v = vec![
            ("self_attn.q_proj", (h, h)),
            ("self_attn.k_proj", (h, kv)),
            ("self_attn.v_proj", (h, kv)),
            ("self_attn.o_proj", (h, h)),
        ];
        if c.arch == Arch::Starcoder2 {
            v.extend([("mlp.c_fc", (h, i)), ("mlp.c_proj", (i, h))]);
        } else {
            v.extend([
                ("mlp.gate_proj", (h, i)),
                ("mlp.up_proj", (h, i)),
                ("mlp.down_proj", (i, h)),
            ]);
        }
        v
    }

    /// Replaces quantized weights with dense f32 ones (training needs gradients through them).
    pub fn dequantize(&mut self) -> Result<()> {
        let dev = self.device.clone();
        for l in self.layers.iter_mut() {
            for lin in l.linears_mut() {
                if lin.quant.is_some() {
                    lin.dense = Some(lin.weight(&dev)?);
                    lin.quant = None;
                }
            }
        }
        if self.lm_head.quant.is_some() {
            self.lm_head.dense = Some(self.lm_head.weight(&dev)?);
            self.lm_head.quant = None;
        }
        Ok(())
    }

    /// Folds every LoRA update into its layer's weights (dequantizing those layers).
    pub fn merge_lora(&mut self) -> Result<()> {
        let dev = self.device.clone();
        for l in self.layers.iter_mut() {
            for lin in l.linears_mut() {
                if let Some(lora) = lin.lora.take() {
                    let w = lin.weight(&dev)?;
                    let delta = (lora.b.matmul(&lora.a)? * lora.scale)?;
                    lin.dense = Some((w + delta)?);
                    lin.quant = None;
                }
            }
        }
        Ok(())
    }

    /// Runs `tokens` (positions `cache.len()..`) through the model, appending to the
    /// cache. Returns the logits of the last position, shape `(vocab,)`.
    pub fn forward(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Tensor> {
        let h = self.hidden(tokens, cache)?;
        let last = h.narrow(1, tokens.len() - 1, 1)?;
        Ok(self.lm_head.forward(&last)?.squeeze(0)?.squeeze(0)?)
    }

    /// Logits for every position of `tokens`, shape `(len, vocab)`; used by training and tests.
    pub fn forward_all(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Tensor> {
        let h = self.hidden(tokens, cache)?;
        Ok(self.lm_head.forward(&h)?.squeeze(0)?)
    }

    fn hidden(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Tensor> {
        let x = self.embed(tokens, cache.len())?;
        let x = self.layers_forward(x, 0..self.layers.len(), cache)?;
        cache.tokens.extend_from_slice(tokens);
        self.norm.forward(&x, self.differentiable)
    }

    /// The embeddings of `tokens` placed at `pos..`, shape `(1, len, hidden)`.
    pub fn embed(&self, tokens: &[u32], pos: usize) -> Result<Tensor> {
        let c = &self.config;
        if tokens.is_empty() {
            bail!("no tokens to run");
        }
        if pos + tokens.len() > c.max_position_embeddings {
            bail!(
                "{} tokens exceed the model's context of {}",
                pos + tokens.len(),
                c.max_position_embeddings
            );
        }
        let ids = Tensor::new(tokens, &self.device)?;
        Ok(self.embed.index_select(&ids, 0)?.unsqueeze(0)?)
    }

    /// The residual stream `x` (positions `cache.len()..`) through the layers in
    /// `range`, attending to and extending their cache entries. Training runs the frozen
    /// lower layers once per example this way and the adapted upper ones at every step.
    pub fn layers_forward(
        &self,
        x: Tensor,
        range: std::ops::Range<usize>,
        cache: &mut KvCache,
    ) -> Result<Tensor> {
        self.run_layers(x, range, cache, self.differentiable, self.frozen_base)
    }

    /// [`Model::layers_forward`] from position 0 with the fused inference kernels and no
    /// gradients, whatever the model's training switches say.
    pub fn inference_forward(&self, x: Tensor, range: std::ops::Range<usize>) -> Result<Tensor> {
        self.run_layers(x, range, &mut KvCache::default(), false, false)
    }

    fn run_layers(
        &self,
        mut x: Tensor,
        range: std::ops::Range<usize>,
        cache: &mut KvCache,
        diff: bool,
        frozen: bool,
    ) -> Result<Tensor> {
        let c = &self.config;
        let seq = x.dim(1)?;
        if cache.layers.len() != self.layers.len() {
            cache.layers = vec![None; self.layers.len()];
        }
        let pos = cache
            .layers
            .get(range.start)
            .and_then(|l| l.as_ref())
            .map_or(0, |l| l.0.dim(2).unwrap_or(0));
        let cos = self.cos.narrow(0, pos, seq)?;
        let sin = self.sin.narrow(0, pos, seq)?;
        let (hd, nh, nkv) = (c.head_dim(), c.num_attention_heads, c.num_key_value_heads);
        for i in range {
            let l = &self.layers[i];
            let residual = x.clone();
            let hs = l.norm1.forward(&x, diff)?;
            let proj = |lin: &Lin, heads: usize| -> Result<Tensor> {
                Ok(lin
                    .forward_with(&hs, frozen)?
                    .reshape((1, seq, heads, hd))?
                    .transpose(1, 2)?
                    .contiguous()?)
            };
            let (q, k, v) = (proj(&l.q, nh)?, proj(&l.k, nkv)?, proj(&l.v, nkv)?);
            use candle_nn::rotary_emb::{rope, rope_i, rope_i_slow, rope_slow};
            let rot = match (self.interleaved_rope, diff) {
                (true, false) => rope_i,
                (true, true) => rope_i_slow,
                (false, false) => rope,
                (false, true) => rope_slow,
            };
            let (q, k) = (rot(&q, &cos, &sin)?, rot(&k, &cos, &sin)?);
            let (k, v) = match &cache.layers[i] {
                Some((pk, pv)) => (Tensor::cat(&[pk, &k], 2)?, Tensor::cat(&[pv, &v], 2)?),
                None => (k, v),
            };
            cache.layers[i] = Some((k.clone(), v.clone()));
            let rep = nh / nkv;
            let (k, v) = if rep > 1 { (repeat_kv(&k, rep)?, repeat_kv(&v, rep)?) } else { (k, v) };
            let scale = 1.0 / (hd as f32).sqrt();
            let att = q.matmul(&k.t()?)?.apply_op1(CausalSoftmax { scale })?;
            let y = att.matmul(&v)?.transpose(1, 2)?.reshape((1, seq, nh * hd))?;
            x = (residual + l.o.forward_with(&y, frozen)?)?;
            let residual = x.clone();
            let hs = l.norm2.forward(&x, diff)?;
            let m = match &l.gate {
                Some(g) => {
                    let gated = (candle_nn::ops::silu(&g.forward_with(&hs, frozen)?)?
                        * l.up.forward_with(&hs, frozen)?)?;
                    l.down.forward_with(&gated, frozen)?
                }
                None => l.down.forward_with(&l.up.forward_with(&hs, frozen)?.gelu()?, frozen)?,
            };
            x = (residual + m)?;
        }
        Ok(x)
    }

    /// Logits of the residual stream `x` after the last layer: the final norm and the
    /// head, the whole of it or only the rows [`Model::head_rows`] picked.
    pub fn logits(&self, x: &Tensor, rows: Option<&Tensor>) -> Result<Tensor> {
        let h = self.norm.forward(x, self.differentiable)?;
        match rows {
            None => Ok(self.lm_head.forward_with(&h, self.frozen_base)?.squeeze(0)?),
            Some(w) => {
                let head = Lin { dense: Some(w.clone()), quant: None, bias: None, lora: None };
                Ok(head.forward_with(&h, true)?.squeeze(0)?)
            }
        }
    }

    /// The head's rows for the token `ids`, for [`Model::logits`] over those tokens only.
    pub fn head_rows(&self, ids: &[u32]) -> Result<Tensor> {
        let ids = Tensor::new(ids, &self.device)?;
        Ok(self.lm_head.weight(&self.device)?.index_select(&ids, 0)?)
    }

    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }
}

fn rope_tables(c: &Config, dev: &Device) -> Result<(Tensor, Tensor)> {
    let hd = c.head_dim();
    let inv: Vec<f32> = (0..hd)
        .step_by(2)
        .map(|i| 1f32 / (c.rope_theta as f32).powf(i as f32 / hd as f32))
        .collect();
    let n = inv.len();
    let inv = Tensor::from_vec(inv, (1, n), dev)?;
    let t = Tensor::arange(0u32, c.max_position_embeddings as u32, dev)?
        .to_dtype(DType::F32)?
        .reshape((c.max_position_embeddings, 1))?;
    let freqs = t.matmul(&inv)?;
    Ok((freqs.cos()?, freqs.sin()?))
}

fn repeat_kv(x: &Tensor, rep: usize) -> Result<Tensor> {
    let (b, n, s, d) = x.dims4()?;
    Ok(x.unsqueeze(2)?.expand((b, n, rep, s, d))?.reshape((b, n * rep, s, d))?)
}

/// Index of the largest logit.
pub fn argmax(logits: &Tensor) -> Result<u32> {
    Ok(logits.argmax(D::Minus1)?.to_scalar::<u32>()?)
}
