//! `patois bench retrieval`: recall of defining files on tasks mined from history.

use super::corpus::{self, Half};
use anyhow::{Context, Result};
use patois_index::{Index, Quiet, UpdateOptions};
use patois_retrieve::{chars, contains_word, nth_line, retrieve, Budget, Item, Options, Request};
use patois_syntax::{ChunkLimits, SymbolKind};
use patois_vcs::Repo;
use regex::Regex;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

struct Task {
    path: String,
    /// The document with the added line blanked after its indentation.
    text: String,
    cursor: usize,
    line: u32,
    ident: String,
    def_paths: HashSet<String>,
}

const TOP: usize = 5;
const BUDGET: usize = 6000;

/// Hits of one repository's tasks: patois and the BM25-window baseline.
#[derive(Debug, Clone, Copy, Default)]
pub struct Score {
    pub tasks: usize,
    pub def_ours: usize,
    pub def_base: usize,
}

pub fn run(dir: PathBuf, commits: usize, max_tasks: usize, samples: usize) -> Result<Score> {
    let root = patois_index::repo_root(&dir)?;
    let tmp = tempfile::tempdir()?;
    let base_dir = tmp.path().join("base");
    std::fs::create_dir_all(&base_dir)?;
    let repo = Repo::discover(&root)?;
    let mut range: Vec<String> = Vec::new();
    match &repo {
        Some(repo) => {
            let chain = repo.first_parent_chain(commits + 1)?;
            let base = if chain.len() > commits {
                chain[commits].clone()
            } else {
                chain.last().cloned().context("the repository has no commits")?
            };
            range = chain.into_iter().take_while(|c| *c != base).collect();
            range.reverse();
            let n = repo.export_tree(&base, &base_dir)?;
            println!(
                "bench retrieval {}: base {} ({n} files), {} commits after it",
                root.display(),
                &base[..10],
                range.len()
            );
        }
        None => {
            println!("bench retrieval {}: not a git repository, latency only", root.display());
            copy_tree(&root, &base_dir)?;
        }
    }
    let ix = Index::open(&base_dir, &tmp.path().join("ix"))?;
    // One indexing thread: the same documents in the same order, so BM25 ties break the same
    // way and a run repeats its numbers.
    let r = ix.update(&UpdateOptions { threads: 1, ..Default::default() }, &Quiet)?;
    let win = Index::open(&base_dir, &tmp.path().join("win"))?;
    win.update(
        &UpdateOptions {
            threads: 1,
            line_windows_only: true,
            history: false,
            chunk_limits: ChunkLimits { max_bytes: usize::MAX, window_lines: 20 },
            ..Default::default()
        },
        &Quiet,
    )?;
    println!("  index              {} files, {} chunks, {} symbols", r.files, r.chunks, r.symbols);

    let mut score = Score::default();
    if let Some(repo) = &repo {
        let tasks = mine_tasks(repo, &ix, &range, max_tasks)?;
        score = evaluate(&ix, &win, &tasks)?;
    }
    latency(&ix, &base_dir, samples)?;
    Ok(score)
}

/// [`run`] on each repository of `half` of the corpus in `file` (cloned under `repos`),
/// then def-recall@5 per repository and overall with standard errors.
pub fn run_corpus(
    file: &Path,
    repos: &Path,
    half: Half,
    commits: usize,
    max_tasks: usize,
) -> Result<()> {
    let entries = corpus::load(file, repos, half)?;
    let mut rows = Vec::new();
    for e in &entries {
        let score = run(e.dir(repos), commits, max_tasks, 0)?;
        rows.push((e, score));
    }
    println!(
        "\ncorpus {} ({half:?} half): def-recall@5, patois and the BM25-window baseline",
        file.display()
    );
    for (e, s) in &rows {
        let (p, p_se) = corpus::share(s.def_ours, s.tasks);
        let (b, b_se) = corpus::share(s.def_base, s.tasks);
        println!(
            "  {:28} {:10} {:4} tasks   patois {p:.3} ± {p_se:.3}   bm25-window {b:.3} ± {b_se:.3}",
            e.name, e.language, s.tasks
        );
    }
    let tasks: usize = rows.iter().map(|(_, s)| s.tasks).sum();
    let (p, p_se) = corpus::share(rows.iter().map(|(_, s)| s.def_ours).sum(), tasks);
    let (b, b_se) = corpus::share(rows.iter().map(|(_, s)| s.def_base).sum(), tasks);
    println!("  all tasks pooled              {tasks:4} tasks   patois {p:.3} ± {p_se:.3}   bm25-window {b:.3} ± {b_se:.3}");
    let per_repo: Vec<f64> = rows
        .iter()
        .filter(|(_, s)| s.tasks > 0)
        .map(|(_, s)| s.def_ours as f64 / s.tasks as f64)
        .collect();
    let (m, m_se) = corpus::mean(&per_repo);
    println!("  mean over {} repositories       patois {m:.3} ± {m_se:.3}", per_repo.len());
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for c in patois_index::walk(from, to) {
        let p = to.join(&c.rel);
        std::fs::create_dir_all(p.parent().unwrap())?;
        std::fs::copy(&c.abs, &p)?;
    }
    Ok(())
}

fn ident_re() -> Regex {
    Regex::new(r"[A-Za-z_][A-Za-z0-9_]*").unwrap()
}

/// Why candidate identifiers were not made into tasks.
#[derive(Default)]
struct Dropped {
    not_code: usize,
    defined_here: usize,
    std_name: usize,
}

/// A task is an added line whose first identifier that is absent from the text
/// above is a reference in code (not in a comment, string or attribute, not a
/// binding, a module path segment or a primitive type), is not being
/// defined on that line, is not a standard-library name, and is defined in
/// another file of the base index (modules, fields, variants and impls do not count).
fn mine_tasks(repo: &Repo, ix: &Index, range: &[String], max_tasks: usize) -> Result<Vec<Task>> {
    let re = ident_re();
    let mut tasks = Vec::new();
    let mut dropped = Dropped::default();
    for id in range {
        for added in repo.added_lines(id)? {
            let Some(lang) = patois_syntax::language_for_path(Path::new(&added.path)) else {
                continue;
            };
            if patois_retrieve::is_test_path(&added.path) {
                continue;
            }
            let Some(bytes) = repo.file_at(id, &added.path)? else { continue };
            let Ok(new_text) = String::from_utf8(bytes) else { continue };
            let analysis =
                patois_syntax::analyze(Path::new(&added.path), &new_text, &ChunkLimits::default());
            let (Some(tree), defined) = (analysis.tree, analysis.symbols) else { continue };
            for (n, line) in &added.lines {
                let above_end = patois_retrieve::line_start(&new_text, *n);
                let above = &new_text[..above_end];
                let mut task_ident = None;
                for m in re.find_iter(line) {
                    let w = m.as_str();
                    if w.len() < 3 || contains_word(above, w) {
                        continue;
                    }
                    let defs: HashSet<String> = ix
                        .symbols_named(w, 32)?
                        .into_iter()
                        .filter(|h| {
                            h.path != added.path
                                && !h.kind.is_member()
                                && !matches!(h.kind, SymbolKind::Impl | SymbolKind::Module)
                        })
                        .map(|h| h.path)
                        .collect();
                    if defs.is_empty() {
                        continue;
                    }
                    let at = above_end + m.start();
                    if !patois_syntax::is_reference(&tree, &new_text, at, at + w.len()) {
                        dropped.not_code += 1;
                    } else if defined
                        .iter()
                        .any(|s| s.name == w && s.start_line == *n && s.kind != SymbolKind::Impl)
                    {
                        dropped.defined_here += 1;
                    } else if patois_retrieve::is_std_name(Some(lang.name), w) {
                        dropped.std_name += 1;
                    } else {
                        task_ident = Some((w.to_string(), defs));
                        break;
                    }
                }
                let Some((ident, def_paths)) = task_ident else { continue };
                let indent: String = line.chars().take_while(|c| c.is_whitespace()).collect();
                let after = &new_text[(above_end + line.len()).min(new_text.len())..];
                let text = format!("{above}{indent}{after}");
                tasks.push(Task {
                    path: added.path.clone(),
                    cursor: above.len() + indent.len(),
                    text,
                    line: *n,
                    ident,
                    def_paths,
                });
            }
        }
    }
    println!(
        "  candidates dropped {} not references (comments, strings, attributes, bindings, module paths), {} defined on their line, {} standard-library names",
        dropped.not_code, dropped.defined_here, dropped.std_name
    );
    println!(
        "  tasks mined        {} (an even spread of at most {max_tasks} is evaluated)",
        tasks.len()
    );
    // An even spread when there are more than asked for.
    if tasks.len() > max_tasks {
        let step = tasks.len() as f64 / max_tasks as f64;
        tasks = (0..max_tasks)
            .map(|i| (i as f64 * step) as usize)
            .map(|i| std::mem::replace(&mut tasks[i], empty_task()))
            .collect();
    }
    Ok(tasks)
}

fn empty_task() -> Task {
    Task {
        path: String::new(),
        text: String::new(),
        cursor: 0,
        line: 0,
        ident: String::new(),
        def_paths: HashSet::new(),
    }
}

fn evaluate(ix: &Index, win: &Index, tasks: &[Task]) -> Result<Score> {
    if tasks.is_empty() {
        println!(
            "  tasks              none found (no added lines using symbols defined in other files)"
        );
        return Ok(Score::default());
    }
    let (mut def_ours, mut id_ours, mut def_base, mut id_base) = (0, 0, 0, 0);
    let mut times = Vec::new();
    for t in tasks {
        let req = Request {
            path: &t.path,
            text: &t.text,
            cursor: t.cursor,
            recent: &[],
            edits: &[],
            budget: Budget { limit: BUDGET, count: &chars },
        };
        let start = Instant::now();
        let r = retrieve(ix, &req, &Options::default())?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
        let top: Vec<&Item> = r.items.iter().take(TOP).collect();
        let hit = top.iter().any(|i| t.def_paths.contains(&i.citation.path));
        def_ours += hit as usize;
        if !hit && std::env::var_os("PATOIS_BENCH_MISSES").is_some() {
            let later = r.items.iter().position(|i| t.def_paths.contains(&i.citation.path));
            eprintln!("MISS {}:{} `{}` defined in {:?} (found at rank {later:?} of {})\n  line: {}\n  got: {:?}", t.path, t.line, t.ident, t.def_paths, r.items.len(), t.text[t.cursor..].lines().next().unwrap_or(""),
                top.iter().map(|i| format!("{} {} ({})", i.citation.path, i.title, i.score.reason)).collect::<Vec<_>>());
        }
        id_ours += top.iter().any(|i| contains_word(&i.text, &t.ident)) as usize;
        // Baseline: BM25 over 20-line windows with the previous 12 lines as the query.
        let q: String = (t.line.saturating_sub(12).max(1)..t.line)
            .map(|n| nth_line(&t.text, n))
            .collect::<Vec<_>>()
            .join("\n");
        let lo = t.line.saturating_sub(12);
        let hits = win.search_chunks(&q, TOP, &|h| {
            h.path != t.path || h.end_line < lo || h.start_line > t.line
        })?;
        def_base += hits.iter().any(|h| t.def_paths.contains(&h.path)) as usize;
        id_base += hits.iter().any(|h| contains_word(&h.text, &t.ident)) as usize;
    }
    let n = tasks.len() as f64;
    let ratio = |a: usize, b: usize| if b == 0 { f64::INFINITY } else { a as f64 / b as f64 };
    println!("  tasks              {}", tasks.len());
    println!(
        "  def-recall@5       patois {:.3}   bm25-window {:.3}   ratio {:.2} (goal >= 0.5 and >= 3x)",
        def_ours as f64 / n,
        def_base as f64 / n,
        ratio(def_ours, def_base)
    );
    println!(
        "  ident-in-top5      patois {:.3}   bm25-window {:.3}   ratio {:.2}",
        id_ours as f64 / n,
        id_base as f64 / n,
        ratio(id_ours, id_base)
    );
    print_latency("  task latency", &mut times);
    Ok(Score { tasks: tasks.len(), def_ours, def_base })
}

fn latency(ix: &Index, base: &Path, samples: usize) -> Result<()> {
    let files: Vec<_> = ix.with_manifest(|m| {
        m.files.iter().filter(|(_, e)| e.language.is_some()).map(|(p, _)| p.clone()).collect()
    });
    if files.is_empty() || samples == 0 {
        return Ok(());
    }
    let mut times = Vec::new();
    for i in 0..samples {
        let path = &files[i * 7919 % files.len()];
        let text = std::fs::read_to_string(base.join(path))?;
        let lines = text.lines().count().max(1);
        let line = 1 + (i * 104_729) % lines;
        let cursor = patois_retrieve::line_start(&text, line as u32)
            + nth_line(&text, line as u32).len() / 2;
        let cursor = text.floor_char_boundary(cursor);
        let req = Request {
            path,
            text: &text,
            cursor,
            recent: &[],
            edits: &[],
            budget: Budget { limit: BUDGET, count: &chars },
        };
        let t = Instant::now();
        retrieve(ix, &req, &Options::default())?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    print_latency(
        &format!("  latency ({} files)", ix.with_manifest(|m| m.files.len())),
        &mut times,
    );
    Ok(())
}

fn print_latency(label: &str, times: &mut [f64]) {
    let mut p = |q: f64| crate::bench::generate::pct(times, q);
    println!(
        "{label:<19}p50 {:.1} ms   p95 {:.1} ms   max {:.1} ms over {} (goal p95 < 30 ms)",
        p(0.5),
        p(0.95),
        p(1.0),
        times.len()
    );
}
