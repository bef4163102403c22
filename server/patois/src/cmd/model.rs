//! `patois complete`, `explain` and `status`, and the engine they open.

use crate::cmd::context::{byte_offset, parse_position, read_document, Position};
use crate::cmd::index::open_index;
use crate::IndexLocation;
use anyhow::{Context, Result};
use patois_engine::{Engine, Run, Settings, Ticket};
use patois_train::TrainOptions;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Clone)]
pub struct ModelArgs {
    /// A .gguf file, or a folder with config.json + *.safetensors + tokenizer.json
    /// [default: the installed default model, else the built-in model].
    #[arg(long)]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub location: IndexLocation,
}

/// Opens the engine for the repository containing `dir`, with the index brought up to date.
pub fn open_engine(dir: &Path, args: &ModelArgs) -> Result<Engine> {
    let index = open_index(dir, &args.location)?;
    index.update(&Default::default(), &patois_index::Quiet)?;
    engine_for(index, args.model.clone())
}

/// The engine on `index` with the repository's settings, `model` overriding theirs.
pub(crate) fn engine_for(index: patois_index::Index, model: Option<PathBuf>) -> Result<Engine> {
    let mut settings = Settings::from_repo(index.root())?;
    if model.is_some() {
        settings.model = model;
    }
    Ok(Engine::new(index, settings))
}

/// Training options whose serving-format prompts follow `settings` (`patois.toml`), so
/// that training and serving build the same prompts.
pub fn serving_train_options(settings: &Settings) -> TrainOptions {
    TrainOptions {
        prompt_budget: settings.budget,
        prompt_window: settings.prompt_window(usize::MAX),
        ..Default::default()
    }
}

fn dir_of(p: &Position) -> &Path {
    p.file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

#[derive(clap::Args)]
pub struct CompleteArgs {
    /// FILE:LINE:COL (1-based).
    pub position: String,
    #[command(flatten)]
    pub model: ModelArgs,
    #[arg(long)]
    pub json: bool,
}

pub fn complete(args: CompleteArgs) -> Result<()> {
    let pos = parse_position(&args.position)?;
    let engine = open_engine(dir_of(&pos), &args.model)?;
    let (rel, text) = read_document(engine.root(), &pos.file)?;
    let cursor = byte_offset(&text, pos.line, pos.col);
    let r = engine.complete_as(&rel, &text, cursor, &Ticket::detached(), Run::Full)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!("{}", r.text);
    eprintln!(
        "-- {:?}, {} tokens, {:?} mode; ms: retrieval {:.1}, prompt {:.1}, prefill {:.1} ({} of {} prompt tokens cached), decode {:.1}, total {:.1}",
        r.stop, r.tokens, r.mode, r.ms.retrieval, r.ms.prompt, r.ms.prefill, r.cache_hit_tokens, r.prompt_tokens, r.ms.decode, r.ms.total
    );
    for c in &r.citations {
        eprintln!("-- context: {c}");
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct ExplainArgs {
    /// FILE:LINE or FILE:LINE-LINE (1-based).
    pub range: String,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Skip the model-written summary.
    #[arg(long)]
    pub no_summary: bool,
    #[arg(long)]
    pub json: bool,
}

pub fn explain(args: ExplainArgs) -> Result<()> {
    let (file, lines) =
        args.range.rsplit_once(':').context("expected FILE:LINE or FILE:LINE-LINE")?;
    let (a, b) = lines.split_once('-').unwrap_or((lines, lines));
    let (start, end): (u32, u32) =
        (a.parse().context("LINE must be a number")?, b.parse().context("LINE must be a number")?);
    let file = PathBuf::from(file);
    let engine = open_engine(
        file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")),
        &args.model,
    )?;
    let (rel, text) = read_document(engine.root(), &file)?;
    let summary = (!args.no_summary).then(patois_engine::Follow::unfollowed);
    let e = patois_engine::explain(&engine, &rel, &text, start, end.max(start), summary)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&e)?);
    } else {
        println!("{}", e.markdown);
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct StatusArgs {
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    #[arg(long)]
    pub json: bool,
}

pub fn status(args: StatusArgs) -> Result<()> {
    let engine = open_engine(&args.dir, &args.model)?;
    let _ = engine.load_model();
    let s = engine.status();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    println!("repository  {}", s.root.display());
    println!(
        "index       {} ({} files, {} commits, HEAD {})",
        s.index_dir.display(),
        s.files,
        s.commits,
        s.head.as_deref().map(|h| h.get(..10).unwrap_or(h)).unwrap_or("none")
    );
    match (&s.model, &s.model_error) {
        (Some(m), _) => println!(
            "model       {} ({} {}, {:.1}M parameters, FIM {:?}, run by {})\n            \
             chosen as {}",
            m.path.display(),
            m.format,
            m.arch,
            m.parameters as f64 / 1e6,
            m.fim,
            m.backend,
            s.model_source
        ),
        (None, Some(e)) => println!("model       none: {e}"),
        _ => println!(
            "model       {} (not loaded yet)\n            chosen as {}",
            s.model_path.display(),
            s.model_source
        ),
    }
    if let Some(a) = &s.adapter {
        let strength = s.adapter_strength.map_or(String::new(), |x| format!(" (strength {x})"));
        println!("adapter     {}{strength}", a.display());
    }
    if let Some(n) = &s.adapter_note {
        println!("            {n}");
    }
    println!("prompts     {}", s.prompts_go_to);
    if let Some(v) = &s.speed {
        let full = s.full_prompt_window.map_or("?".into(), |w| w.to_string());
        println!(
            "speed       {:.0} prompt tokens/s, {:.0} tokens/s written (measured here); budget \
             {} ms: a first line after a keystroke about {:.0} ms; prompts up to {full} tokens, \
             smaller when a cold prompt would not answer in time",
            v.prefill_tokens_per_s,
            v.decode_tokens_per_s,
            s.latency_budget_ms,
            s.keystroke_ms.unwrap_or_default()
        );
    }
    if let Some(d) = &s.drift {
        println!("drift       {}", d.advice);
    }
    Ok(())
}
