//! `patois bench hybrid`: does the house-style adapter earn its place beside retrieval?
//! The repository as of N commits ago is indexed and an adapter is trained on it; the
//! lines the commits since added are asked for in four arms on the same tasks: the base
//! model alone, with retrieval, with the adapter, with both (the adapter's two arms at
//! each strength asked for). Plus the held-out loss of the base and the adapted model,
//! and the training speed.

use crate::bench::complete::{LinePairs, Score, TimeSplit};
use anyhow::Result;
use patois_adapter::Provenance;
use patois_engine::{Engine, Run, Settings, Ticket, GGUF_ADAPTER};
use patois_train::{train_lora, Silent, TrainOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

#[derive(clap::Args)]
pub struct HybridArgs {
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    #[arg(long, default_value_t = 20)]
    pub commits: usize,
    #[arg(long, default_value_t = 40)]
    pub max_tasks: usize,
    /// The base model [default: the model in effect].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Minutes of adapter training.
    #[arg(long, default_value_t = 5.0)]
    pub minutes: f64,
    /// Layers the adapter adapts, from the top (0: all).
    #[arg(long, default_value_t = 4)]
    pub top_layers: usize,
    /// Where the adapter is trained and kept; one already there is used as it is.
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// Adapter strengths to measure, comma-separated (1: as trained); with several,
    /// one is chosen on half of the files and reported on the other half [default:
    /// the strength its patois.json records, else 1].
    #[arg(long, value_delimiter = ',')]
    pub strengths: Vec<f32>,
}

/// The scores of the adapter's two arms at one strength.
struct Adapted {
    strength: f32,
    alone: Score,
    with_retrieval: Score,
}

pub fn run(args: HybridArgs) -> Result<()> {
    let mut split = TimeSplit::new(&args.dir, args.commits, args.max_tasks, "hybrid")?;
    let mut settings = Settings::from_repo(&split.root).unwrap_or_default();
    if args.model.is_some() {
        settings.model = args.model.clone();
    }
    settings.adapter = None;
    let engine = Engine::new(split.index()?, settings.clone());
    let base = engine.model_path();
    println!("  model {} ({})", base.display(), engine.model_choice().source);
    let tmp = tempfile::tempdir()?;
    let adapter = args.adapter.clone().unwrap_or_else(|| tmp.path().join("adapter"));
    if adapter.join("adapter_config.json").exists() {
        println!("  adapter: {} (given; not trained in this run)", adapter.display());
    } else {
        train(&engine, &base, &adapter, &args)?;
    }
    let measure = |label: &str, retrieval: bool, strength: Option<f32>| -> Result<Score> {
        engine.set_settings(Settings {
            budget: if retrieval { settings.budget } else { 0 },
            adapter: strength.map(|_| adapter.clone()),
            adapter_strength: strength,
            ..settings.clone()
        })?;
        let mut score = Score::default();
        for t in &split.tasks {
            let r =
                engine.complete_as(&t.path, &t.text, t.cursor, &Ticket::detached(), Run::Full)?;
            score.add(&t.path, &r.text, &t.target, r.ms.total);
            if super::verbose() {
                eprintln!("[{label}] {}\n  want {:?}\n  got  {:?}", t.path, t.target, r.text);
            }
        }
        score.line(label);
        Ok(score)
    };
    measure("base", false, None)?;
    let retrieved = measure("base + retrieval", true, None)?;
    let strengths = match &args.strengths[..] {
        [] => vec![Provenance::load(&adapter).ok().and_then(|p| p.strength).unwrap_or(1.0)],
        given => given.to_vec(),
    };
    let several = strengths.len() > 1;
    let mut adapted = Vec::new();
    for &strength in &strengths {
        let at = if several || strength != 1.0 { format!(" ×{strength}") } else { String::new() };
        adapted.push(Adapted {
            strength,
            alone: measure(&format!("base + adapter{at}"), false, Some(strength))?,
            with_retrieval: measure(
                &format!("base + adapter{at} + retrieval"),
                true,
                Some(strength),
            )?,
        });
    }
    let pairs = LinePairs::new(&split.base_dir, &split.files);
    let mut copy = Score::default();
    for t in &split.tasks {
        copy.add(&t.path, &pairs.copy(&t.previous), &t.target, 0.0);
    }
    copy.line("copy baseline");
    if !several {
        let a = &adapted[0];
        verdict(&a.with_retrieval, &retrieved, &a.alone);
        return Ok(());
    }
    // Choose the strength on the tasks of half of the files; report on the others.
    let choosing: Vec<bool> = split.tasks.iter().map(|t| in_choosing_half(&t.path)).collect();
    let reporting: Vec<bool> = choosing.iter().map(|c| !c).collect();
    let choosing_mean = |a: &Adapted| a.with_retrieval.subset(&choosing).mean();
    let best = adapted
        .iter()
        .max_by(|a, b| choosing_mean(a).total_cmp(&choosing_mean(b)))
        .expect("at least one strength");
    let n_choosing = choosing.iter().filter(|c| **c).count();
    println!(
        "  strength {} chosen on {n_choosing} tasks (half of the files, by a hash of the \
         path: adapter + retrieval {:.3}); on the other {} tasks:",
        best.strength,
        choosing_mean(best),
        split.tasks.len() - n_choosing
    );
    let (r, a, b) = (
        retrieved.subset(&reporting),
        best.alone.subset(&reporting),
        best.with_retrieval.subset(&reporting),
    );
    r.line("  base + retrieval");
    a.line(&format!("  base + adapter ×{}", best.strength));
    b.line(&format!("  both ×{}", best.strength));
    verdict(&b, &r, &a);
    Ok(())
}

/// Prints how adapter + retrieval compares with each single arm on the same tasks.
fn verdict(both: &Score, retrieval: &Score, adapter: &Score) {
    let (over_retrieval, se_r) = both.gain_over(retrieval);
    let (over_adapter, se_a) = both.gain_over(adapter);
    println!(
        "  adapter + retrieval vs retrieval alone {over_retrieval:+.3} ± {se_r:.3}, vs the \
         adapter alone {over_adapter:+.3} ± {se_a:.3} (standard errors over the tasks; goal: \
         both > 0)"
    );
}

/// Whether the tasks of `path` choose the strength (else they report it): a fixed hash
/// (FNV-1a) of the path, so runs split the same way and a file's tasks stay together.
fn in_choosing_half(path: &str) -> bool {
    let hash = path
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
    hash % 2 == 0
}

/// Trains the adapter on the base index and writes its GGUF export beside it.
fn train(engine: &Engine, base: &Path, adapter: &Path, args: &HybridArgs) -> Result<()> {
    let opts = TrainOptions {
        minutes: args.minutes,
        lr: 1e-3,
        top_layers: args.top_layers,
        ..crate::cmd::model::serving_train_options(&engine.settings())
    };
    let stop = AtomicBool::new(false);
    let r = train_lora(engine.index(), base, adapter, &opts, &stop, &Silent)?;
    let layers = match opts.top_layers {
        0 => "all".to_string(),
        n => format!("top {n}"),
    };
    println!(
        "  adapter: {} steps, {} tokens in {:.0} s ({:.0} tokens/s; rank {}, {layers} layers)",
        r.steps, r.tokens, r.seconds, r.tokens_per_s, opts.lora_rank
    );
    println!(
        "  held-out loss: base {:.3}, adapted {:.3}: {:.1}% lower (goal >= 15%), on {} held-out files",
        r.base_loss,
        r.adapted_loss,
        (1.0 - r.adapted_loss / r.base_loss) * 100.0,
        r.held_out_files
    );
    if let Some(serving) = r.serving_loss {
        println!(
            "  held-out loss at the recorded strength {}: {serving:.3}, {:.1}% lower",
            opts.serving_strength,
            (1.0 - serving / r.base_loss) * 100.0
        );
    }
    patois_adapter::export_gguf(adapter, base, &adapter.join(GGUF_ADAPTER))?;
    Ok(())
}
