//! `patois bench ask`: questions built from a repository's own history, answered through
//! the engine as `patois ask` answers them. "Why did `FILE` change in MONTH YEAR?" (the
//! gold source is the commit), "Where is `NAME` defined and who calls it?" (the gold source
//! is the defining file), and questions about names that do not exist (the answer must be
//! "not found"). Reports the gold source among the sources given and among those cited,
//! markers the model wrote that pointed at no source (dropped), refusals, and latency.

use super::corpus::{self, share, CorpusArgs};
use super::generate::pct;
use crate::cmd::model::engine_for;
use anyhow::Result;
use patois_engine::{format_date, Asked, Engine, Question};
use patois_index::{Index, Quiet, UpdateOptions};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args)]
pub struct AskArgs {
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Questions of each kind per repository.
    #[arg(long, default_value_t = 6)]
    pub questions: usize,
    /// The model [default: the model in effect].
    #[arg(long)]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub corpus: CorpusArgs,
}

/// What one repository's questions gave.
#[derive(Default)]
struct Tally {
    /// Answerable questions, answers written, gold among the sources, gold cited.
    asked: usize,
    answered: usize,
    gold_given: usize,
    gold_cited: usize,
    /// Gold cited by the model's own markers.
    gold_by_model: usize,
    /// Markers pointing at no source in the prompt, dropped from the answers.
    dropped: usize,
    /// Markers patois added to sentences the model left without one.
    attributed: usize,
    unanswerable: usize,
    refused: usize,
    latency_ms: Vec<f64>,
}

/// A question and how to recognize its gold source.
struct Probe {
    question: String,
    gold: Gold,
}

enum Gold {
    Commit(String),
    Definition(String),
    Nothing,
}

/// Questions from the last 200 first-parent commits of the repository at `root`.
fn probes(index: &Index, root: &Path, per_kind: usize) -> Result<Vec<Probe>> {
    let repo = patois_vcs::Repo::discover(root)?
        .ok_or_else(|| anyhow::anyhow!("{}: not a git repository", root.display()))?;
    let chain = repo.first_parent_chain(200)?;
    let mut why = Vec::new();
    let mut where_ = Vec::new();
    let mut nothing = Vec::new();
    // Every third commit, newest first, until each kind has its questions.
    for id in chain.iter().step_by(3) {
        if why.len() >= per_kind && where_.len() >= per_kind {
            break;
        }
        // A commit the index lacks (a shallow clone's edge) gives no question.
        let Some(c) = index.commit(id).ok().flatten() else { continue };
        let code =
            c.files.iter().find(|f| patois_syntax::language_for_path(Path::new(&f.path)).is_some());
        let Some(file) = code else { continue };
        let month = format_date(c.time);
        let (y, m) = (&month[..4], month[5..7].parse::<usize>().unwrap_or(1));
        const MONTHS: [&str; 12] = [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ];
        if why.len() < per_kind {
            let question = format!("Why did `{}` change in {} {y}?", file.path, MONTHS[m - 1]);
            why.push(Probe { question, gold: Gold::Commit(c.id.clone()) });
        }
        let symbols = index.symbols_in_file(&file.path)?;
        let sym = symbols.iter().find(|s| {
            (s.kind.is_callable() || s.kind.is_type())
                && s.name.len() >= 4
                && index.symbols_named(&s.name, 2).map(|v| v.len() == 1).unwrap_or(false)
        });
        if let Some(s) = sym.filter(|_| where_.len() < per_kind) {
            let question = format!("Where is `{}` defined and who calls it?", s.name);
            where_.push(Probe { question, gold: Gold::Definition(s.path.clone()) });
            let made_up = format!("{}_unused_{}", s.name, nothing.len());
            let question = format!("Where is `{made_up}` defined and who calls it?");
            nothing.push(Probe { question, gold: Gold::Nothing });
        }
    }
    Ok(why.into_iter().chain(where_).chain(nothing).collect())
}

fn score(t: &mut Tally, p: &Probe, asked: &Asked) {
    let is_gold = |n: usize| {
        let c = &asked.sources[n - 1].citation;
        match &p.gold {
            Gold::Commit(id) => c.commit.as_deref() == Some(id.as_str()),
            Gold::Definition(path) => c.path == *path && c.commit.is_none(),
            Gold::Nothing => false,
        }
    };
    if let Gold::Nothing = p.gold {
        t.unanswerable += 1;
        t.refused += usize::from(asked.note.as_deref().is_some_and(|n| n.starts_with("Not found")));
        return;
    }
    t.asked += 1;
    t.gold_given += usize::from((1..=asked.sources.len()).any(is_gold));
    if let Some(a) = &asked.answer {
        t.answered += 1;
        t.dropped += a.dropped;
        t.attributed += a.attributed;
        t.gold_cited += usize::from(a.cited.iter().any(|n| is_gold(*n)));
        t.gold_by_model += usize::from(a.by_model.iter().any(|n| is_gold(*n)));
    }
}

fn run_repo(dir: &Path, per_kind: usize, model: Option<PathBuf>) -> Result<Tally> {
    let root = patois_index::repo_root(dir)?;
    let tmp = tempfile::tempdir()?;
    let index = Index::open(&root, tmp.path())?;
    index.update(&UpdateOptions::default(), &Quiet)?;
    let probes = probes(&index, &root, per_kind)?;
    let engine: Engine = engine_for(index, model)?;
    let mut t = Tally::default();
    for p in &probes {
        let t0 = Instant::now();
        let q = Question { text: p.question.clone(), ..Default::default() };
        let asked = engine.ask(&q, None, &|| false)?;
        t.latency_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        score(&mut t, p, &asked);
        if super::verbose() {
            trace(p, &asked);
        }
    }
    Ok(t)
}

/// With `PATOIS_BENCH_VERBOSE`: the question, its gold, the sources and the answer.
fn trace(p: &Probe, asked: &Asked) {
    let gold = match &p.gold {
        Gold::Commit(id) => format!("commit {id}"),
        Gold::Definition(path) => format!("definition in {path}"),
        Gold::Nothing => "none".to_string(),
    };
    eprintln!("Q: {} (gold: {gold})", p.question);
    for (i, s) in asked.sources.iter().enumerate() {
        eprintln!("  [{}] {} ({})", i + 1, s.label, s.citation);
    }
    match &asked.answer {
        Some(a) => {
            eprintln!("  A (cited {:?}, by the model {:?}): {}", a.cited, a.by_model, a.text)
        }
        None => eprintln!("  no answer: {}", asked.note.as_deref().unwrap_or("")),
    }
}

fn print_row(name: &str, t: &mut Tally) {
    let f = |(p, se): (f64, f64)| format!("{:.0}% ± {:.0}", p * 100.0, se * 100.0);
    println!(
        "{name:<24} {:>3} asked  answered {:<10} gold given {:<10} gold cited {:<10} (by the model {:<10}) markers dropped {:>2}, added {:>2}  not found {}/{}  p50 {:.1} s",
        t.asked,
        f(share(t.answered, t.asked)),
        f(share(t.gold_given, t.asked)),
        f(share(t.gold_cited, t.answered)),
        f(share(t.gold_by_model, t.answered)),
        t.dropped,
        t.attributed,
        t.refused,
        t.unanswerable,
        pct(&mut t.latency_ms, 0.5) / 1e3,
    );
}

pub fn run(args: AskArgs) -> Result<()> {
    let repos = corpus::repos(&args.corpus, &args.dir)?;
    let mut all = Tally::default();
    for (name, dir) in repos {
        let mut t = match run_repo(&dir, args.questions, args.model.clone()) {
            Ok(t) => t,
            Err(e) => {
                println!("{name:<24} skipped: {e:#}");
                continue;
            }
        };
        print_row(&name, &mut t);
        all.asked += t.asked;
        all.answered += t.answered;
        all.gold_given += t.gold_given;
        all.gold_cited += t.gold_cited;
        all.gold_by_model += t.gold_by_model;
        all.dropped += t.dropped;
        all.attributed += t.attributed;
        all.unanswerable += t.unanswerable;
        all.refused += t.refused;
        all.latency_ms.extend(t.latency_ms);
    }
    print_row("all", &mut all);
    println!("(gold cited is among the answers written; the CPU: see `lscpu`)");
    Ok(())
}
