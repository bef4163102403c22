//! A matrix product with a frozen weight: `x · Wᵀ`, whose backward pass computes the
//! gradient of `x` only. candle's own matmul also computes the weight's gradient, which
//! doubles the backward work of LoRA training and allocates a weight-sized tensor per
//! layer and step, only to throw it away.

use candle_core::{CpuStorage, CustomOp1, Device, Layout, Shape, Tensor};

/// `x · Wᵀ` for `x` of shape `(…, in)` and `W` of shape `(out, in)`.
pub struct FrozenMatmul {
    pub weight: Tensor,
}

impl CustomOp1 for FrozenMatmul {
    fn name(&self) -> &'static str {
        "frozen-matmul"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let all = storage.as_slice::<f32>()?;
        // The caller makes `x` contiguous (see `Lin::forward_with`).
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("frozen-matmul needs a contiguous input")
        };
        let x = Tensor::from_slice(&all[start..end], layout.shape(), &Device::Cpu)?;
        let y = x.broadcast_matmul(&self.weight.t()?)?;
        let shape = y.shape().clone();
        Ok((CpuStorage::F32(y.flatten_all()?.to_vec1::<f32>()?), shape))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad_res.broadcast_matmul(&self.weight)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Var, D};

    #[test]
    fn matches_matmul_forward_and_input_gradient() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (5, 3), &dev)?;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (1, 4, 3), &dev)?)?;
        let frozen = x.as_tensor().apply_op1(FrozenMatmul { weight: w.clone() })?;
        let plain = x.as_tensor().broadcast_matmul(&w.t()?)?;
        let diff = (&frozen - &plain)?.abs()?.max_keepdim(D::Minus1)?.max(D::Minus1)?;
        assert!(diff.flatten_all()?.max(0)?.to_scalar::<f32>()? < 1e-5);
        let g1 = frozen.sqr()?.sum_all()?.backward()?;
        let g2 = plain.sqr()?.sum_all()?.backward()?;
        let (a, b) = (g1.get(x.as_tensor()).unwrap(), g2.get(x.as_tensor()).unwrap());
        let d = (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
        assert!(d < 1e-4, "input gradients differ by {d}");
        assert!(g1.get(&w).is_none(), "the frozen weight got a gradient");
        Ok(())
    }
}
