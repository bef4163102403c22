//! On-disk formats: PEFT LoRA (`adapter_model.safetensors` + `adapter_config.json`),
//! and `patois.json`, the provenance of a trained model or adapter.

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use patois_generate::Lora;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

pub const PROVENANCE: &str = "patois.json";

/// Where a model or adapter came from, for drift reports.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Provenance {
    /// `builtin` (trained from scratch) or `lora`.
    pub kind: String,
    pub base_model: Option<String>,
    /// git blob id of the base weights file.
    pub base_hash: Option<String>,
    /// HEAD when training started.
    pub commit: Option<String>,
    /// Training files and their blob ids.
    pub data_files: BTreeMap<String, String>,
    pub held_out_files: Vec<String>,
    pub steps: usize,
    pub tokens: usize,
    pub seconds: f64,
    /// Mean loss on held-out examples before and after training.
    pub base_loss: f32,
    pub adapted_loss: f32,
    /// False while only a checkpoint exists (interrupted).
    pub complete: bool,
}

impl Provenance {
    pub fn load(dir: &Path) -> Result<Provenance> {
        let p = dir.join(PROVENANCE);
        let t = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        serde_json::from_str(&t).with_context(|| format!("parsing {}", p.display()))
    }
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::write(dir.join(PROVENANCE), serde_json::to_string_pretty(self)?)?;
        Ok(())
    }
}

/// `adapter_config.json` as PEFT writes it (the fields patois uses).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdapterConfig {
    pub peft_type: String,
    pub task_type: String,
    pub r: usize,
    pub lora_alpha: f64,
    pub lora_dropout: f64,
    pub target_modules: Vec<String>,
    pub bias: String,
    pub fan_in_fan_out: bool,
    pub base_model_name_or_path: Option<String>,
}

impl AdapterConfig {
    pub fn new(r: usize, alpha: f64, targets: &[String], base: Option<String>) -> AdapterConfig {
        AdapterConfig {
            peft_type: "LORA".into(),
            task_type: "CAUSAL_LM".into(),
            r,
            lora_alpha: alpha,
            lora_dropout: 0.0,
            target_modules: targets.to_vec(),
            bias: "none".into(),
            fan_in_fan_out: false,
            base_model_name_or_path: base,
        }
    }
}

/// PEFT key of a LoRA matrix for a layer (HF name without `.weight`).
pub fn peft_key(layer: &str, ab: char) -> String {
    format!("base_model.model.{layer}.lora_{ab}.weight")
}

/// Writes LoRA matrices in the PEFT layout.
pub fn save_peft(
    dir: &Path,
    config: &AdapterConfig,
    loras: &BTreeMap<String, (Tensor, Tensor)>,
) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut map: HashMap<String, Tensor> = HashMap::new();
    for (layer, (a, b)) in loras {
        map.insert(peft_key(layer, 'A'), a.detach());
        map.insert(peft_key(layer, 'B'), b.detach());
    }
    candle_core::safetensors::save(&map, dir.join("adapter_model.safetensors"))?;
    std::fs::write(dir.join("adapter_config.json"), serde_json::to_string_pretty(config)?)?;
    Ok(())
}

/// Reads a PEFT LoRA adapter (ours or one trained with PEFT) as layer → update.
pub fn load_peft(dir: &Path, dev: &Device) -> Result<(AdapterConfig, HashMap<String, Lora>)> {
    let cp = dir.join("adapter_config.json");
    let config: AdapterConfig = serde_json::from_str(
        &std::fs::read_to_string(&cp).with_context(|| format!("reading {}", cp.display()))?,
    )
    .with_context(|| format!("{} is not a PEFT adapter_config.json", cp.display()))?;
    if config.peft_type != "LORA" {
        anyhow::bail!(
            "{}: peft_type {} is not supported; patois applies LORA adapters",
            cp.display(),
            config.peft_type
        );
    }
    let wp = dir.join("adapter_model.safetensors");
    let tensors = candle_core::safetensors::load(&wp, dev)
        .with_context(|| format!("reading {}", wp.display()))?;
    let scale = config.lora_alpha / config.r as f64;
    let mut out = HashMap::new();
    for (k, a) in &tensors {
        let Some(layer) =
            k.strip_prefix("base_model.model.").and_then(|k| k.strip_suffix(".lora_A.weight"))
        else {
            continue;
        };
        let b = tensors
            .get(&peft_key(layer, 'B'))
            .with_context(|| format!("{}: {k} has no lora_B", wp.display()))?;
        out.insert(layer.to_string(), Lora { a: a.clone(), b: b.clone(), scale });
    }
    if out.is_empty() {
        anyhow::bail!("{} holds no lora_A/lora_B pairs", wp.display());
    }
    Ok((config, out))
}
