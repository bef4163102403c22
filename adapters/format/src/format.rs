//! On-disk formats: PEFT LoRA (`adapter_model.safetensors` + `adapter_config.json`),
//! and `patois.json`, the provenance of a trained model or adapter.

use crate::error::{invalid, io, Error, Result};
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
    /// Mean loss on held-out examples before and after training (NaN, written as null,
    /// when nothing was held out).
    #[serde(deserialize_with = "nan_if_null")]
    pub base_loss: f32,
    #[serde(deserialize_with = "nan_if_null")]
    pub adapted_loss: f32,
    /// False while only a checkpoint exists (interrupted).
    pub complete: bool,
    /// How strongly the adapter is applied when the settings do not say (1: as trained,
    /// 0.5: every update halved); `None`: 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strength: Option<f32>,
}

/// A loss that JSON wrote as null (it has no NaN) read back as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f32, D::Error> {
    Ok(Option::<f32>::deserialize(d)?.unwrap_or(f32::NAN))
}

impl Provenance {
    pub fn load(dir: &Path) -> Result<Provenance> {
        let p = dir.join(PROVENANCE);
        let t = std::fs::read_to_string(&p).map_err(io("reading", &p))?;
        serde_json::from_str(&t).map_err(|e| invalid(&p, e))
    }
    pub fn save(&self, dir: &Path) -> Result<()> {
        let p = dir.join(PROVENANCE);
        let json = serde_json::to_string_pretty(self).expect("provenance serializes");
        std::fs::write(&p, json).map_err(io("writing", &p))
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
    /// The layers adapted, when not all (PEFT's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers_to_transform: Option<Vec<usize>>,
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
            layers_to_transform: None,
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
    std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
    let mut map: HashMap<String, Tensor> = HashMap::new();
    for (layer, (a, b)) in loras {
        map.insert(peft_key(layer, 'A'), a.detach());
        map.insert(peft_key(layer, 'B'), b.detach());
    }
    let wp = dir.join("adapter_model.safetensors");
    candle_core::safetensors::save(&map, &wp)
        .map_err(|source| Error::Tensors { path: wp.clone(), source })?;
    let cp = dir.join("adapter_config.json");
    let json = serde_json::to_string_pretty(config).expect("a config serializes");
    std::fs::write(&cp, json).map_err(io("writing", &cp))
}

/// Reads a PEFT LoRA adapter (ours or one trained with PEFT) as layer → update.
pub fn load_peft(dir: &Path, dev: &Device) -> Result<(AdapterConfig, HashMap<String, Lora>)> {
    let cp = dir.join("adapter_config.json");
    let text = std::fs::read_to_string(&cp).map_err(io("reading", &cp))?;
    let config: AdapterConfig = serde_json::from_str(&text)
        .map_err(|e| invalid(&cp, format!("not a PEFT adapter_config.json ({e})")))?;
    if config.peft_type != "LORA" {
        let why = format!(
            "peft_type {} is not supported; patois applies LORA adapters",
            config.peft_type
        );
        return Err(invalid(&cp, why));
    }
    let wp = dir.join("adapter_model.safetensors");
    let tensors = candle_core::safetensors::load(&wp, dev)
        .map_err(|source| Error::Tensors { path: wp.clone(), source })?;
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
            .ok_or_else(|| invalid(&wp, format!("{k} has no lora_B")))?;
        out.insert(layer.to_string(), Lora { a: a.clone(), b: b.clone(), scale });
    }
    if out.is_empty() {
        return Err(invalid(&wp, "holds no lora_A/lora_B pairs"));
    }
    Ok((config, out))
}
