//! The parts of a layer: linear projections (dense, quantized, with LoRA), norms, the
//! sources weights load from, and the KV cache.

use super::config::{gguf_name, Arch};
use anyhow::{Context, Result};
use candle_core::quantized::{gguf_file, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

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
    pub(crate) fn forward_with(&self, x: &Tensor, frozen: bool) -> Result<Tensor> {
        let mut y = match (&self.dense, &self.quant) {
            (Some(w), _) if frozen => x
                .contiguous()?
                .apply_op1(crate::candle::frozen::FrozenMatmul { weight: w.clone() })?,
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

pub(crate) enum Norm {
    Rms(Tensor, f64),
    Layer(Tensor, Tensor, f64),
}

impl Norm {
    /// `differentiable`: composed ops with gradients instead of candle's fused kernels.
    pub(crate) fn forward(&self, x: &Tensor, differentiable: bool) -> Result<Tensor> {
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

pub(crate) struct Layer {
    pub(crate) norm1: Norm,
    pub(crate) norm2: Norm,
    pub(crate) q: Lin,
    pub(crate) k: Lin,
    pub(crate) v: Lin,
    pub(crate) o: Lin,
    /// SwiGLU: gate, up, down. GELU (StarCoder2): up = c_fc, down = c_proj, no gate.
    pub(crate) gate: Option<Lin>,
    pub(crate) up: Lin,
    pub(crate) down: Lin,
}

impl Layer {
    /// The layer's linear projections.
    pub(crate) fn linears_mut(&mut self) -> impl Iterator<Item = &mut Lin> {
        [&mut self.q, &mut self.k, &mut self.v, &mut self.o, &mut self.up, &mut self.down]
            .into_iter()
            .chain(self.gate.as_mut())
    }
}

/// Where weights come from.
pub(crate) enum Source<'a> {
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
    pub(crate) fn has(&self, hf: &str) -> bool {
        match self {
            Source::Safetensors(vb) => vb.contains_tensor(hf),
            Source::Map(m) => m.contains_key(hf),
            Source::Gguf { content, .. } => content.tensor_infos.contains_key(&gguf_name(hf)),
        }
    }
    pub(crate) fn tensor(&mut self, hf: &str, dev: &Device) -> Result<Tensor> {
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
    pub(crate) fn lin(&mut self, hf: &str, dev: &Device) -> Result<Lin> {
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
    pub(crate) fn norm(&mut self, hf: &str, arch: Arch, eps: f64, dev: &Device) -> Result<Norm> {
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
    pub(crate) layers: Vec<Option<(Tensor, Tensor)>>,
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
