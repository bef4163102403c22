//! `patois bench adapter`: does training on the repository help on code it never saw?
//! Held-out loss and next-line edit similarity, base vs adapted, in one run.

use anyhow::Result;
use candle_core::Device;
use patois_generate::{Backend, GenOptions, Generator, Mode};
use patois_index::{Index, Quiet};
use patois_train::{train_builtin, train_lora, Silent, TrainOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// 1 - Levenshtein distance / longer length, on characters.
pub fn edit_similarity(a: &str, b: &str) -> f64 {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            cur[j] = (prev[j] + 1)
                .min(cur[j - 1] + 1)
                .min(prev[j - 1] + (a[i - 1] != b[j - 1]) as usize);
        }
        prev = cur;
    }
    1.0 - prev[b.len()] as f64 / a.len().max(b.len()) as f64
}

/// Mean edit similarity of greedy single-line completions on held-out lines.
fn next_line_similarity(g: &Generator, root: &Path, files: &[String], n: usize) -> Result<f64> {
    let mut sims = Vec::new();
    'files: for f in files {
        let Ok(text) = std::fs::read_to_string(root.join(f)) else { continue };
        let lines: Vec<&str> = text.lines().collect();
        for i in (8..lines.len()).step_by(7) {
            if sims.len() >= n {
                break 'files;
            }
            let target = lines[i].trim();
            if target.len() < 6 {
                continue;
            }
            let indent = &lines[i][..lines[i].len() - lines[i].trim_start().len()];
            let prefix = format!("{}\n{indent}", lines[i.saturating_sub(20)..i].join("\n"));
            let prompt = g.info.fim.render(&prefix, "\n");
            let opts = GenOptions { max_tokens: 32, mode: Mode::SingleLine, ..Default::default() };
            let c = g.complete(&prompt, "\n", &opts, &|| false)?;
            sims.push(edit_similarity(c.text.trim(), target));
        }
    }
    Ok(if sims.is_empty() { f64::NAN } else { sims.iter().sum::<f64>() / sims.len() as f64 })
}

pub fn run(dir: &Path, base: Option<PathBuf>, minutes: f64) -> Result<()> {
    let root = patois_index::repo_root(dir)?;
    let tmp = tempfile::tempdir()?;
    let index = Index::open(&root, &tmp.path().join("ix"))?;
    index.update(&Default::default(), &Quiet)?;
    let split = patois_train::data::split(&index, 0.1, 0.1)?;
    let held: Vec<String> = split.held_out.keys().cloned().collect();
    println!(
        "bench adapter {}: {} training files, {} held-out files",
        root.display(),
        split.train.len(),
        held.len()
    );
    let stop = AtomicBool::new(false);
    let base_dir = match base {
        Some(b) => b,
        None => {
            // No pretrained base here: the built-in model trained from scratch is the base.
            let out = tmp.path().join("builtin");
            let r = train_builtin(
                &index,
                &out,
                &TrainOptions { minutes, ..Default::default() },
                &stop,
                &Silent,
            )?;
            println!(
                "  built-in base      {} steps, {:.0} tokens/s; held-out loss {:.3} (random init) -> {:.3}",
                r.steps, r.tokens_per_s, r.base_loss, r.adapted_loss
            );
            out
        }
    };
    let ad = tmp.path().join("adapter");
    let opts = TrainOptions { minutes, lr: 2e-3, ..Default::default() };
    let r = train_lora(&index, &base_dir, &ad, &opts, &stop, &Silent)?;
    println!(
        "  LoRA adapter       {} steps, {:.0} tokens/s (rank {}, {} targets)",
        r.steps,
        r.tokens_per_s,
        opts.lora_rank,
        opts.lora_targets.len()
    );
    println!(
        "  held-out loss      base {:.3}   adapted {:.3}   {:.1}% lower (goal >= 15%)",
        r.base_loss,
        r.adapted_loss,
        (1.0 - r.adapted_loss / r.base_loss) * 100.0
    );
    let plain = Generator::load(&base_dir, &Device::Cpu)?;
    let mut adapted = Generator::load(&base_dir, &Device::Cpu)?;
    patois_adapter::apply(&mut adapted.model, &ad, true)?;
    let (s0, s1) = (
        next_line_similarity(&plain, &root, &held, 60)?,
        next_line_similarity(&adapted, &root, &held, 60)?,
    );
    println!("  next-line edit similarity on held-out lines: base {s0:.3}   adapted {s1:.3}");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn edit_similarity() {
        assert_eq!(super::edit_similarity("abc", "abc"), 1.0);
        assert_eq!(super::edit_similarity("abc", "abd"), 1.0 - 1.0 / 3.0);
        assert_eq!(super::edit_similarity("", "ab"), 0.0);
    }
}
