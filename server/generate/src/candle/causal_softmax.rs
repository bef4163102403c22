//! Attention weights in one pass: `softmax(scale · scores)` over the last dimension with
//! the causal mask applied in place, and a backward pass of its own.
//!
//! The composed version (scale, add a mask tensor, then softmax as max, subtract, exp,
//! sum, divide) makes a dozen passes over a `heads × seq × seq` tensor forward and more
//! backward; for LoRA training on serving-length prompts that was a third of a step.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

/// For `scores` of shape `(…, seq, total)`: query `i` sees keys `0..=offset + i`
/// (`offset`: the positions already in the cache, `total - seq`); the rest get weight 0.
pub struct CausalSoftmax {
    pub scale: f32,
}

fn contiguous<'a>(storage: &'a CpuStorage, layout: &Layout) -> candle_core::Result<&'a [f32]> {
    let all = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&all[start..end]),
        None => candle_core::bail!("causal-softmax needs a contiguous input"),
    }
}

/// (rows per matrix, row length) of a `(…, seq, total)` layout.
fn matrix_dims(layout: &Layout) -> candle_core::Result<(usize, usize)> {
    let dims = layout.dims();
    if dims.len() < 2 {
        candle_core::bail!("causal-softmax needs (…, seq, total) scores, got {dims:?}");
    }
    let (seq, total) = (dims[dims.len() - 2], dims[dims.len() - 1]);
    if seq > total {
        candle_core::bail!("causal-softmax: {seq} queries cannot attend to {total} keys");
    }
    Ok((seq, total))
}

impl CustomOp1 for CausalSoftmax {
    fn name(&self) -> &'static str {
        "causal-softmax"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let src = contiguous(storage, layout)?;
        let (seq, total) = matrix_dims(layout)?;
        let offset = total - seq;
        let mut out = vec![0f32; src.len()];
        if total > 0 {
            out.par_chunks_mut(total).zip(src.par_chunks(total)).enumerate().for_each(
                |(row, (o, s))| {
                    let seen = offset + row % seq + 1;
                    let max = s[..seen].iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v));
                    let mut sum = 0f32;
                    for (o, s) in o[..seen].iter_mut().zip(&s[..seen]) {
                        *o = ((s - max) * self.scale).exp();
                        sum += *o;
                    }
                    o[..seen].iter_mut().for_each(|o| *o /= sum);
                },
            );
        }
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(
        &self,
        _scores: &Tensor,
        weights: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let grad = grad.contiguous()?;
        Ok(Some(weights.apply_op2_no_bwd(&grad, &SoftmaxGradient { scale: self.scale })?))
    }
}

/// The scores' gradient from the weights `p` and their gradient `g`:
/// `scale · p · (g − Σ g·p)` per row (0 where the mask hid a key, as `p` is 0 there).
struct SoftmaxGradient {
    scale: f32,
}

impl CustomOp2 for SoftmaxGradient {
    fn name(&self) -> &'static str {
        "causal-softmax-gradient"
    }

    fn cpu_fwd(
        &self,
        p_storage: &CpuStorage,
        p_layout: &Layout,
        g_storage: &CpuStorage,
        g_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (p, g) = (contiguous(p_storage, p_layout)?, contiguous(g_storage, g_layout)?);
        let (_, total) = matrix_dims(p_layout)?;
        if p_layout.dims() != g_layout.dims() {
            candle_core::bail!("causal-softmax-gradient: shapes differ");
        }
        let mut out = vec![0f32; p.len()];
        if total > 0 {
            out.par_chunks_mut(total).zip(p.par_chunks(total).zip(g.par_chunks(total))).for_each(
                |(o, (p, g))| {
                    let dot: f32 = p.iter().zip(g).map(|(p, g)| p * g).sum();
                    for ((o, p), g) in o.iter_mut().zip(p).zip(g) {
                        *o = self.scale * p * (g - dot);
                    }
                },
            );
        }
        Ok((CpuStorage::F32(out), p_layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var, D};

    fn max_abs(t: &Tensor) -> f32 {
        t.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    /// The composed version it replaces: scale, add the causal mask, softmax.
    fn composed(x: &Tensor, scale: f64, offset: usize) -> candle_core::Result<Tensor> {
        let (seq, total) = (x.dim(D::Minus2)?, x.dim(D::Minus1)?);
        let mask: Vec<f32> = (0..seq)
            .flat_map(|i| {
                (0..total).map(move |j| if j > offset + i { f32::NEG_INFINITY } else { 0.0 })
            })
            .collect();
        let mask = Tensor::from_vec(mask, (seq, total), x.device())?;
        candle_nn::ops::softmax(&(x * scale)?.broadcast_add(&mask)?, D::Minus1)
    }

    #[test]
    fn matches_the_composed_softmax_forward_and_backward() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        // With a cache (offset 2) and without; several heads.
        for (seq, total) in [(5, 5), (3, 5), (1, 4)] {
            let x = Var::from_tensor(&Tensor::randn(0f32, 3.0, (1, 2, seq, total), &dev)?)?;
            let weights = Tensor::randn(0f32, 1.0, (1, 2, seq, total), &dev)?;
            let fused = x.as_tensor().apply_op1(CausalSoftmax { scale: 0.125 })?;
            let plain = composed(x.as_tensor(), 0.125, total - seq)?;
            assert!(max_abs(&(&fused - &plain)?) < 1e-6, "forward differs at {seq}×{total}");
            // The first query of a fresh sequence sees only the first key.
            if seq == total {
                let first = fused.get(0)?.get(0)?.get(0)?.to_vec1::<f32>()?;
                assert_eq!(first[0], 1.0);
                assert!(first[1..].iter().all(|w| *w == 0.0));
            }
            let g1 = (&fused * &weights)?.sum_all()?.backward()?;
            let g2 = (&plain * &weights)?.sum_all()?.backward()?;
            let (a, b) = (g1.get(x.as_tensor()).unwrap(), g2.get(x.as_tensor()).unwrap());
            assert!(max_abs(&(a - b)?) < 1e-5, "gradient differs at {seq}×{total}");
        }
        Ok(())
    }

    #[test]
    fn more_queries_than_keys_is_an_error() {
        let x = Tensor::zeros((1, 4, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(x.apply_op1(CausalSoftmax { scale: 1.0 }).is_err());
    }
}
