//! `patois train`: the house adapter (LoRA on the model in effect) or the built-in model.
//! The defaults of the options are `TrainOptions`'s: declared once, in `patois-train`.

use crate::cmd::index::open_index;
use crate::cmd::model::{engine_for, serving_train_options};
use crate::IndexLocation;
use anyhow::{Context, Result};
use patois_adapter::{IdleEvent, IdleOutcome};
use patois_engine::{adapter_dir, builtin_model_dir};
use patois_train::{train_builtin, train_lora, TrainOptions, TrainProgress, TrainReport};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn defaults() -> TrainOptions {
    TrainOptions::default()
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
    #[arg(long, default_value_t = defaults().minutes)]
    pub minutes: f64,
    #[arg(long)]
    pub steps: Option<usize>,
    /// Adapter name: written to .patois/adapters/NAME/.
    #[arg(long, default_value = "house")]
    pub name: String,
    #[arg(long, default_value_t = defaults().lora_rank)]
    pub rank: usize,
    #[arg(long, default_value_t = defaults().lora_alpha)]
    pub alpha: f64,
    /// Comma-separated projections LoRA attaches to.
    #[arg(long, default_value_t = defaults().lora_targets.join(","))]
    pub targets: String,
    /// Also train on the sources of Rust dependencies found in the local cargo registry (MB).
    #[arg(long, value_name = "MB", default_value_t = 0)]
    pub with_deps: usize,
    /// LoRA: adapt the top N layers (0: all); the frozen layers below run once per example.
    #[arg(long, default_value_t = defaults().top_layers)]
    pub top_layers: usize,
    /// LoRA: the training loss over the whole vocabulary, not only the tokens the data holds.
    #[arg(long)]
    pub full_vocabulary: bool,
    /// Tokens per training window.
    #[arg(long, default_value_t = defaults().seq_len)]
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
pub(crate) struct TrainCli {
    #[command(flatten)]
    pub(crate) args: TrainArgs,
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

/// Progress as one [`IdleEvent`] per step on stdout (read by the server).
struct IdleLines;
impl TrainProgress for IdleLines {
    fn step(&self, step: usize, loss: f32, tokens_per_s: f64) {
        println!("{}", IdleEvent::Step { step, loss, tokens_per_s }.to_line());
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

pub fn train(args: TrainArgs) -> Result<TrainReport> {
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
    let bar = progress_bar(!args.json && !args.idle);
    let stop = stop_flag();
    if args.idle {
        stop_with_parent(stop.clone());
    }
    let (bar_progress, idle_progress) = (TrainBar(bar.clone()), IdleLines);
    let progress: &dyn TrainProgress = if args.idle { &idle_progress } else { &bar_progress };
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
        println!("{}", IdleEvent::Finished(outcome(&r, replaced)).to_line());
    } else if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print_report(&r, &opts, exported);
    }
    Ok(r)
}

/// The terminal's progress bar, or a hidden one.
fn progress_bar(shown: bool) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    if !shown {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template("train [{bar:30}] {elapsed} {msg}")
            .expect("a valid progress template")
            .progress_chars("=> "),
    );
    bar
}

/// What an idle run tells the server at its end.
fn outcome(r: &TrainReport, replaced: bool) -> IdleOutcome {
    IdleOutcome {
        steps: r.steps,
        tokens: r.tokens,
        base_loss: r.base_loss,
        held_out_loss: r.adapted_loss,
        previous_loss: r.rival_loss,
        replaced,
    }
}

fn print_report(r: &TrainReport, opts: &TrainOptions, exported: bool) {
    for reason in &r.split_reasons {
        println!("data: {reason}");
    }
    let resumed = if r.resumed_from > 0 {
        format!(", resumed from step {}", r.resumed_from)
    } else {
        String::new()
    };
    println!(
        "{} {} steps ({} tokens, {:.0} tokens/s, {:.1}s{resumed}): held-out loss {:.3} -> {:.3} ({:+.1}%)",
        if r.interrupted { "checkpointed after" } else { "trained" },
        r.steps,
        r.tokens,
        r.tokens_per_s,
        r.seconds,
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
