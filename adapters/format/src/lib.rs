//! The house-style adapter as the server uses it: the PEFT LoRA layout with its
//! provenance (`patois.json`), applying an adapter to a model, drift against the live
//! index, and the lines an idle training run reports to the server ([`idle`]). Training
//! lives in `patois-train`, which the server does not depend on.

mod error;
pub mod format;
pub mod idle;

use error::invalid;
pub use error::{Error, Result};
pub use format::{load_peft, save_peft, AdapterConfig, Provenance};
pub use idle::{IdleEvent, IdleOutcome};

use patois_generate::Model;
use patois_index::Index;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Applies the PEFT adapter in `dir` to `model` at `strength` (1: as trained): merged
/// into the weights, or kept as separate low-rank updates. Returns how many layers it
/// touched.
pub fn apply(model: &mut Model, dir: &Path, strength: f32, merge: bool) -> Result<usize> {
    let (_, mut loras) = load_peft(dir, &model.device.clone())?;
    for lora in loras.values_mut() {
        lora.scale *= strength as f64;
    }
    let refused =
        |e: anyhow::Error| Error::Apply { dir: dir.to_path_buf(), message: format!("{e:#}") };
    let n = model.set_lora(&loras).map_err(refused)?;
    if n == 0 {
        return Err(Error::Apply {
            dir: dir.to_path_buf(),
            message: "none of its layers exist in this model; was it trained on another base?"
                .into(),
        });
    }
    if merge {
        model.merge_lora().map_err(refused)?;
    }
    Ok(n)
}

/// Writes the PEFT adapter in `dir` as a GGUF LoRA for the model at `base` (what
/// llama.cpp, llama-server and Ollama load) into `out`. Returns how many matrices it adapts.
pub fn export_gguf(dir: &Path, base: &Path, out: &Path) -> Result<usize> {
    let (config, loras) = load_peft(dir, &candle_core::Device::Cpu)?;
    let shape = patois_generate::Config::of_model(base)
        .map_err(|e| invalid(base, format!("cannot read the base model's shape: {e:#}")))?;
    let pairs: std::collections::BTreeMap<String, (candle_core::Tensor, candle_core::Tensor)> =
        loras.into_iter().map(|(layer, l)| (layer, (l.a, l.b))).collect();
    patois_generate::write::write_gguf_lora(out, &shape, &pairs, config.lora_alpha as f32)
        .map_err(|e| Error::Apply { dir: dir.to_path_buf(), message: format!("{e:#}") })?;
    Ok(pairs.len())
}

/// Commits made since training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommitsSince {
    Count(usize),
    /// The training commit is no longer an ancestor of HEAD.
    HistoryRewritten,
}

/// How far the repository moved since a model or adapter was trained.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Drift {
    pub trained_at: Option<String>,
    pub commits_since: CommitsSince,
    /// Share of the training files whose content changed or that are gone.
    pub changed_share: f64,
    pub changed_files: Vec<String>,
    pub retrain_advised: bool,
    pub advice: String,
}

/// Compares a provenance record with the live index.
pub fn drift(index: &Index, p: &Provenance) -> Result<Drift> {
    let commits_since = match (patois_vcs::Repo::discover(index.root())?, &p.commit) {
        (Some(repo), Some(c)) => {
            let w = repo.commits_since(Some(c))?;
            if w.rewritten {
                CommitsSince::HistoryRewritten
            } else {
                CommitsSince::Count(w.commits.len())
            }
        }
        _ => CommitsSince::Count(0),
    };
    let changed: Vec<String> = index.with_manifest(|m| {
        p.data_files
            .iter()
            .filter(|(path, blob)| m.files.get(*path).is_none_or(|e| &e.blob != *blob))
            .map(|(path, _)| path.clone())
            .collect()
    });
    let share = if p.data_files.is_empty() {
        0.0
    } else {
        changed.len() as f64 / p.data_files.len() as f64
    };
    let (advised, since) = match commits_since {
        CommitsSince::Count(n) => (share > 0.2 || n > 100, format!("{n} commits since")),
        CommitsSince::HistoryRewritten => (true, "history was rewritten since".to_string()),
    };
    let advice = if advised {
        format!(
            "retrain advised: {:.0}% of the training files changed, {since}; run `patois train`",
            share * 100.0
        )
    } else {
        format!("up to date enough: {:.0}% of the training files changed, {since}", share * 100.0)
    };
    Ok(Drift {
        trained_at: p.commit.clone(),
        commits_since,
        changed_share: share,
        changed_files: changed,
        retrain_advised: advised,
        advice,
    })
}
