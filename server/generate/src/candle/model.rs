//! A decoder-only transformer in candle covering the Llama, Qwen2 and StarCoder2
//! layouts, with a KV cache we own so a prompt's common prefix can be kept and
//! the rest recomputed. Weights load from safetensors (HF names) or GGUF
//! (llama.cpp names, quantized matmuls).

mod config;
mod layers;

pub use config::{gguf_name, Arch, Config};
pub use layers::{KvCache, Lin, Lora};
use layers::{Layer, Norm, Source};

use anyhow::{bail, Context, Result};
use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;
use std::collections::HashMap;
use std::path::Path;

use super::causal_softmax::CausalSoftmax;

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
