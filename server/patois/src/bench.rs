//! `patois bench`: speed as ratios against a baseline measured in the same run.

mod ask;
mod blocks;
mod complete;
mod corpus;
mod generate;
mod hybrid;
mod idle;
mod lsp;
mod multiline;
mod next_edit;
mod retrieval;
mod typing;

use anyhow::Result;
use patois_index::{looks_binary, walk, Index, Quiet, UpdateOptions};
use rayon::prelude::*;
use std::path::PathBuf;
use std::time::Instant;

/// Whether the benchmarks print each task as they go (`PATOIS_BENCH_VERBOSE` set).
fn verbose() -> bool {
    std::env::var_os("PATOIS_BENCH_VERBOSE").is_some()
}

#[derive(clap::Subcommand)]
pub enum What {
    /// Index DIR into a temporary folder and compare with tree-sitter parse-only time.
    Index {
        dir: PathBuf,
        /// Repetitions; the best time of each side is reported.
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Model speed: prefill, decode, first token cold and after a one-character edit,
    /// retrieval time; llama.cpp and candle on the same GGUF, plus the built-in model.
    Generate {
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// The GGUF model [default: the model in effect].
        #[arg(long)]
        model: Option<PathBuf>,
        /// Prompt length in tokens.
        #[arg(long, default_value_t = 1000)]
        tokens: usize,
        /// Skip candle on the same file (it takes minutes on a 0.5B model).
        #[arg(long)]
        skip_candle: bool,
    },
    /// Next-line tasks from DIR's last N commits (the index and model see the repository
    /// as of before them): exact match and edit similarity of the first line, with and
    /// without retrieved context, and the copy baseline, in one run (with `--corpus`, with
    /// retrieval and the copy baseline only).
    Complete {
        #[arg(default_value = ".")]
        dir: PathBuf,
        #[arg(long, default_value_t = 20)]
        commits: usize,
        #[arg(long, default_value_t = 60)]
        max_tasks: usize,
        /// The model [default: the model in effect].
        #[arg(long)]
        model: Option<PathBuf>,
        /// Also ask each line after replaying the other files' hunks of its commit as the
        /// user's edits, and compare with asking without them.
        #[arg(long)]
        replay_edits: bool,
        /// Ask for whole blocks instead of first lines: where a commit's added lines leave
        /// an empty body (a multi-line ghost text).
        #[arg(long)]
        multiline: bool,
        #[command(flatten)]
        corpus: corpus::CorpusArgs,
    },
    /// Replay typing (one character per request) through the real server, with and without caches.
    Lsp {
        #[arg(default_value = ".")]
        dir: PathBuf,
        #[arg(long, default_value_t = 200)]
        requests: usize,
        /// The model [default: the model in effect].
        #[arg(long)]
        model: Option<PathBuf>,
        /// Also type through an OpenAI-compatible server serving the same model
        /// (`http://HOST:PORT/v1`), and compare with local generation.
        #[arg(long)]
        endpoint: Option<String>,
        /// The model name the server expects.
        #[arg(long, default_value = "default")]
        model_name: String,
    },
    /// The hybrid on DIR's own history: an adapter trained on the repository as of N
    /// commits ago; the lines added since asked for by the base model, with retrieval,
    /// with the adapter, with both; held-out loss of base and adapter; training speed.
    Hybrid(hybrid::HybridArgs),
    /// A person typing the lines DIR's last N commits added through the real server at a
    /// human pace: keystroke savings, answer latency, cancellations, input reading.
    Typing(typing::TypingArgs),
    /// Questions from DIR's history answered as `patois ask` answers them: the gold
    /// source (the commit, the definition) among those given and cited, markers dropped,
    /// "not found" on names that do not exist, latency.
    Ask(ask::AskArgs),
    /// Next edits on DIR's last N commits: the first hunk of each changed file replayed
    /// as the user's edit, the suggestions compared with the commit's other hunks.
    NextEdit(next_edit::NextEditArgs),
    /// Training while idle (`train_when_idle`) through the real server: how soon after a
    /// keystroke the trainer is stopped, and completion latency with no trainer and with
    /// a stopped one. Linux (reads process states from /proc).
    Idle {
        #[arg(default_value = ".")]
        dir: PathBuf,
        #[arg(long, default_value_t = 20)]
        keystrokes: usize,
    },
    /// Completion-context tasks from DIR's recent history: does retrieval find the
    /// file defining the symbol the author used next? Compared with BM25 over
    /// 20-line windows in the same run; plus latency at sampled cursors.
    Retrieval {
        #[arg(default_value = ".")]
        dir: PathBuf,
        #[command(flatten)]
        corpus: corpus::CorpusArgs,
        /// How many recent first-parent commits to turn into tasks.
        #[arg(long, default_value_t = 40)]
        commits: usize,
        #[arg(long, default_value_t = 400)]
        max_tasks: usize,
        /// Cursor positions sampled for latency (also in folders without history).
        #[arg(long, default_value_t = 300)]
        samples: usize,
    },
}

pub fn run(what: What) -> Result<()> {
    match what {
        What::Index { dir, runs } => bench_index(dir, runs),
        What::Retrieval {
            corpus: corpus::CorpusArgs { corpus: Some(file), repos, half },
            commits,
            max_tasks,
            ..
        } => retrieval::run_corpus(&file, &repos, half, commits, max_tasks),
        What::Retrieval { dir, commits, max_tasks, samples, .. } => {
            retrieval::run(dir, commits, max_tasks, samples).map(|_| ())
        }
        What::Generate { dir, model, tokens, skip_candle } => {
            generate::run(&dir, model, tokens, skip_candle)
        }
        What::Complete {
            corpus: corpus::CorpusArgs { corpus: Some(file), repos, half },
            commits,
            max_tasks,
            model,
            multiline,
            ..
        } => match multiline {
            true => multiline::run_corpus(&file, &repos, half, commits, max_tasks, model),
            false => complete::run_corpus(&file, &repos, half, commits, max_tasks, model),
        },
        What::Complete { dir, commits, max_tasks, model, multiline: true, .. } => {
            multiline::run(&dir, commits, max_tasks, model).map(|_| ())
        }
        What::Complete { dir, commits, max_tasks, model, replay_edits, .. } => {
            let arms = complete::Arms { bare: true, replay_edits };
            complete::run(dir, commits, max_tasks, model, arms).map(|_| ())
        }
        What::Lsp { dir, requests, model, endpoint, model_name } => {
            let remote = endpoint.map(|e| (e, model_name));
            lsp::run(&dir, requests, model, remote)
        }
        What::Idle { dir, keystrokes } => idle::run(&dir, keystrokes),
        What::Hybrid(args) => hybrid::run(args),
        What::Typing(args) => typing::run(args),
        What::Ask(args) => ask::run(args),
        What::NextEdit(args) => next_edit::run(args),
    }
}

fn bench_index(dir: PathBuf, runs: usize) -> Result<()> {
    let root = dir.canonicalize()?;
    let tmp = tempfile::tempdir()?;
    let files = walk(&root, tmp.path());
    // Baseline: read + tree-sitter parse of every parseable file, same thread pool.
    let texts: Vec<(String, String)> = files
        .iter()
        .filter_map(|c| {
            let bytes = std::fs::read(&c.abs).ok()?;
            (bytes.len() <= 1 << 20 && !looks_binary(&bytes)).then_some(())?;
            Some((c.rel.clone(), String::from_utf8(bytes).ok()?))
        })
        .collect();
    // Middle stage, from memory: parse + symbol and chunk queries, no I/O, no tantivy.
    let analyze_only = || {
        let t = Instant::now();
        texts.par_iter().for_each(|(rel, text)| {
            patois_syntax::analyze(std::path::Path::new(rel), text, &Default::default());
        });
        t.elapsed().as_secs_f64()
    };
    let parse_only = || {
        let t = Instant::now();
        let (n, bytes) = files
            .par_iter()
            .filter_map(|c| {
                let lang = patois_syntax::language_for_path(std::path::Path::new(&c.rel))?;
                let bytes = std::fs::read(&c.abs).ok()?;
                if bytes.len() > 1 << 20 || looks_binary(&bytes) {
                    return None;
                }
                let text = String::from_utf8(bytes).ok()?;
                patois_syntax::parse(lang, &text)?;
                Some((1usize, text.len() as u64))
            })
            .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        (t.elapsed().as_secs_f64(), n, bytes)
    };
    let mut best_parse = f64::MAX;
    let mut best_analyze = f64::MAX;
    let mut best_files = f64::MAX;
    let mut best_total = f64::MAX;
    let (mut parsed_files, mut parsed_bytes, mut report) = (0, 0, None);
    for _ in 0..runs.max(1) {
        let (secs, n, b) = parse_only();
        best_parse = best_parse.min(secs);
        best_analyze = best_analyze.min(analyze_only());
        (parsed_files, parsed_bytes) = (n, b);
        let idx_dir = tempfile::tempdir()?;
        let index = Index::open(&root, idx_dir.path())?;
        let r = index.update(&UpdateOptions::default(), &Quiet)?;
        best_files = best_files.min(r.files_seconds);
        best_total = best_total.min(r.seconds);
        report = Some(r);
    }
    let r = report.unwrap();
    let mb = r.parsed_bytes as f64 / 1e6;
    println!("bench index {}", root.display());
    println!(
        "  files indexed      {} ({:.2} MB), {} chunks, {} symbols, {} commits",
        r.files, mb, r.chunks, r.symbols, r.commits
    );
    println!(
        "  parse-only         {:.3}s for {} parseable files ({:.2} MB): {:.0} files/s, {:.1} MB/s",
        best_parse,
        parsed_files,
        parsed_bytes as f64 / 1e6,
        parsed_files as f64 / best_parse,
        parsed_bytes as f64 / 1e6 / best_parse
    );
    println!(
        "  analyze in memory  {:.3}s (parse + symbols + chunks, all files, no I/O)",
        best_analyze
    );
    println!(
        "  index (files)      {:.3}s: {:.0} files/s, {:.1} MB/s (walk, hash, secret scan, parse, chunk, tantivy)",
        best_files,
        r.files as f64 / best_files,
        mb / best_files
    );
    println!("  index (total)      {:.3}s including git history and commit", best_total);
    println!(
        "  ratio              {:.2} of parse-only speed (files phase; goal >= 0.5)",
        best_parse / best_files
    );
    Ok(())
}
