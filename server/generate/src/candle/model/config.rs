//! Model configurations: the architectures covered, their hyperparameters from HF
//! `config.json` or GGUF metadata, and HF ↔ GGUF tensor names.

use anyhow::{bail, Context, Result};
use candle_core::quantized::gguf_file;
use serde::{Deserialize, Serialize};
use std::path::Path;

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
    pub(crate) fn layer_norm(self) -> bool {
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

    pub(crate) fn from_gguf(c: &gguf_file::Content, path: &Path) -> Result<Config> {
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
