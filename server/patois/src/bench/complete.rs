//! `patois bench complete`: next-line tasks from the repository's own history. The
//! index sees the repository as of N first-parent commits ago; each task is a line one
//! of those commits added, asked for at its indentation in the file as that commit left
//! it (the line itself removed). Scored on the first line: exact match and edit
//! similarity. In the same run: the model without retrieval (`budget = 0`: no retrieved
//! context, and no continuation found elsewhere either), and the copy baseline (the line
//! that follows the most similar line elsewhere in the repository).

use crate::bench::corpus::{self, Half};
use crate::bench::generate::pct;
use anyhow::{Context, Result};
use patois_engine::{Engine, Run, Settings, Ticket};
use patois_index::{Index, Quiet, UpdateOptions};
use patois_retrieve::line_start;
use patois_vcs::{AddedLines, Repo};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use patois_types::edit_similarity;

pub(crate) struct Task {
    /// The commit that added the line.
    commit: String,
    pub path: String,
    /// The file as the commit left it, with the target line's text removed.
    pub text: String,
    pub cursor: usize,
    pub target: String,
    /// The nearest non-empty line above the target (for the copy baseline).
    pub previous: String,
}

/// Lines of the base tree: each trimmed line and the trimmed line after it.
pub(crate) struct LinePairs {
    next_of: HashMap<String, String>,
    lines: Vec<(String, String)>,
}

impl LinePairs {
    pub fn new(base: &Path, files: &[String]) -> LinePairs {
        let mut next_of = HashMap::new();
        let mut lines = Vec::new();
        for f in files {
            let Ok(text) = std::fs::read_to_string(base.join(f)) else { continue };
            let v: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            for w in v.windows(2) {
                next_of.entry(w[0].to_string()).or_insert_with(|| w[1].to_string());
                lines.push((w[0].to_string(), w[1].to_string()));
            }
        }
        LinePairs { next_of, lines }
    }

    /// The line after the line most similar to `previous`.
    pub fn copy(&self, previous: &str) -> String {
        if let Some(n) = self.next_of.get(previous) {
            return n.clone();
        }
        let len = previous.chars().count();
        let close = self.lines.iter().filter(|(l, _)| {
            let n = l.chars().count();
            n * 2 >= len && n <= len * 2
        });
        let best = close
            .map(|(l, n)| (edit_similarity(l, previous), n))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        best.map(|(_, n)| n.clone()).unwrap_or_default()
    }
}

/// The files the commits of `range` added lines to, in a language patois reads, each with
/// its commit, the lines added and its text as the commit left it; in order.
pub(crate) fn added_code(
    repo: &Repo,
    range: &[String],
) -> Result<Vec<(String, AddedLines, String)>> {
    let mut out = Vec::new();
    for id in range {
        for added in repo.added_lines(id)? {
            if patois_syntax::language_for_path(Path::new(&added.path)).is_none() {
                continue;
            }
            let Some(bytes) = repo.file_at(id, &added.path)? else { continue };
            let Ok(text) = String::from_utf8(bytes) else { continue };
            out.push((id.clone(), added, text));
        }
    }
    Ok(out)
}

fn mine(repo: &Repo, range: &[String], max_tasks: usize) -> Result<Vec<Task>> {
    let mut all = Vec::new();
    for (id, added, text) in added_code(repo, range)? {
        for (n, line) in &added.lines {
            let t = line.trim();
            let trivial = t.len() < 8
                || t.starts_with("//")
                || t.starts_with('#')
                || t.starts_with("/*")
                || t.starts_with('*');
            if trivial || *n < 3 {
                continue;
            }
            let start = line_start(&text, *n);
            let indent = line.len() - line.trim_start().len();
            let cursor = start + indent;
            let end = start + line.len();
            if end > text.len() || !text.is_char_boundary(cursor) {
                continue;
            }
            let doc = format!("{}{}", &text[..cursor], &text[end..]);
            let previous = text[..start]
                .lines()
                .rev()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("")
                .to_string();
            all.push(Task {
                commit: id.clone(),
                path: added.path.clone(),
                text: doc,
                cursor,
                target: t.to_string(),
                previous,
            });
        }
    }
    // An even sample across the commits, in order (so the model's cache sees files as
    // an editor would).
    let step = (all.len() as f64 / max_tasks.max(1) as f64).max(1.0);
    let picked = (0..max_tasks.min(all.len())).map(|i| (i as f64 * step) as usize);
    let keep: std::collections::HashSet<usize> = picked.collect();
    Ok(all.into_iter().enumerate().filter(|(i, _)| keep.contains(i)).map(|(_, t)| t).collect())
}

/// Scores of one way of completing, per task in order: exact first lines, similarity,
/// identifiers, latency.
#[derive(Default)]
pub(crate) struct Score {
    exact: Vec<bool>,
    sim: Vec<f64>,
    /// The share of the target's identifiers the line has (`None`: the target has none).
    identifiers: Vec<Option<f64>>,
    ms: Vec<f64>,
}

/// The identifiers of a line of `path`'s language, keywords left out.
fn identifiers<'t>(path: &str, line: &'t str) -> Vec<&'t str> {
    let lang = patois_syntax::language_for_path(Path::new(path)).map(|l| l.name);
    line.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.len() >= 2 && !w.starts_with(|c: char| c.is_ascii_digit()))
        .filter(|w| !patois_retrieve::is_keyword(lang, w))
        .collect()
}

impl Score {
    /// Appends `other`'s tasks.
    pub fn extend(&mut self, other: &Score) {
        self.exact.extend(&other.exact);
        self.sim.extend(&other.sim);
        self.identifiers.extend(&other.identifiers);
        self.ms.extend(&other.ms);
    }

    pub fn add(&mut self, path: &str, got: &str, target: &str, ms: f64) {
        let first = got.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
        self.exact.push(first == target);
        self.sim.push(edit_similarity(first, target));
        let wanted = identifiers(path, target);
        let have = identifiers(path, first);
        let hits = wanted.iter().filter(|w| have.contains(w)).count();
        self.identifiers.push((!wanted.is_empty()).then(|| hits as f64 / wanted.len() as f64));
        self.ms.push(ms);
    }
    /// The scores of the tasks `keep` says yes to (by position).
    pub fn subset(&self, keep: &[bool]) -> Score {
        fn pick<T: Clone>(v: &[T], keep: &[bool]) -> Vec<T> {
            v.iter().zip(keep).filter(|(_, k)| **k).map(|(x, _)| x.clone()).collect()
        }
        Score {
            exact: pick(&self.exact, keep),
            sim: pick(&self.sim, keep),
            identifiers: pick(&self.identifiers, keep),
            ms: pick(&self.ms, keep),
        }
    }
    pub fn mean(&self) -> f64 {
        self.sim.iter().sum::<f64>() / self.sim.len().max(1) as f64
    }
    /// The mean edit-similarity gain over `other` on the same tasks, with its standard
    /// error (of the per-task differences): a gain within about two of them is noise.
    pub fn gain_over(&self, other: &Score) -> (f64, f64) {
        let d: Vec<f64> = self.sim.iter().zip(&other.sim).map(|(a, b)| a - b).collect();
        let n = d.len() as f64;
        if d.len() < 2 {
            return (d.first().copied().unwrap_or(0.0), f64::NAN);
        }
        let mean = d.iter().sum::<f64>() / n;
        let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, (var / n).sqrt())
    }
    pub fn line(&self, label: &str) {
        let n = self.sim.len().max(1);
        let latency = if self.ms.iter().any(|m| *m > 0.0) {
            let mut ms = self.ms.clone();
            format!(", latency p50 {:.0} ms, p95 {:.0} ms", pct(&mut ms, 0.5), pct(&mut ms, 0.95))
        } else {
            String::new()
        };
        let ids: Vec<f64> = self.identifiers.iter().flatten().copied().collect();
        let ids = ids.iter().sum::<f64>() / ids.len().max(1) as f64;
        let exact = self.exact.iter().filter(|e| **e).count();
        println!(
            "  {label:<28} edit similarity {:.3}, exact {:.3} ({exact}/{n}), identifiers \
             {ids:.3}{latency}",
            self.mean(),
            exact as f64 / n as f64,
        );
    }
}

/// Shows `engine` the other files' changes of `t`'s commit as edits the user just made
/// (each file opened as it was, changed to what the commit made it, and closed).
fn replay_commit(engine: &Engine, repo: &Repo, t: &Task) -> Result<usize> {
    let parent = repo.parent(&t.commit)?;
    let mut n = 0;
    for changed in repo.added_lines(&t.commit)? {
        if changed.path == t.path
            || patois_syntax::language_for_path(Path::new(&changed.path)).is_none()
        {
            continue;
        }
        let read = |id: Option<&String>| -> Result<String> {
            let bytes = match id {
                Some(id) => repo.file_at(id, &changed.path)?.unwrap_or_default(),
                None => Vec::new(),
            };
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        };
        let (before, after) = (read(parent.as_ref())?, read(Some(&t.commit))?);
        let line = changed.lines.first().map_or(1, |(n, _)| *n);
        engine.document_changed(&changed.path, std::sync::Arc::new(before), 1);
        engine.document_changed(&changed.path, std::sync::Arc::new(after), line);
        engine.document_closed(&changed.path);
        n += 1;
    }
    Ok(n)
}

/// The repository as of N commits ago, indexed, and the tasks the commits since give.
pub(crate) struct TimeSplit {
    pub root: PathBuf,
    pub repo: Repo,
    pub tasks: Vec<Task>,
    /// The commits after the base, oldest first.
    pub range: Vec<String>,
    /// The tree at the base commit, with its index.
    pub base_dir: PathBuf,
    pub files: Vec<String>,
    index: Option<Index>,
    _tmp: tempfile::TempDir,
}

impl TimeSplit {
    /// Prints what `bench NAME` split.
    pub fn new(dir: &Path, commits: usize, max_tasks: usize, name: &str) -> Result<TimeSplit> {
        let root = patois_index::repo_root(dir)?;
        let repo = Repo::discover(&root)?
            .with_context(|| format!("bench {name} needs a git repository"))?;
        let chain = repo.first_parent_chain(commits + 1)?;
        let base =
            chain.get(commits).or(chain.last()).context("the repository has no commits")?.clone();
        let mut range: Vec<String> = chain.iter().take_while(|c| **c != base).cloned().collect();
        range.reverse();
        let tmp = tempfile::tempdir()?;
        let base_dir = tmp.path().join("base");
        std::fs::create_dir_all(&base_dir)?;
        let n = repo.export_tree(&base, &base_dir)?;
        let ix = Index::open(&base_dir, &tmp.path().join("ix"))?;
        // One indexing thread: retrieval, so the prompts, repeat from run to run.
        let report = ix.update(&UpdateOptions { threads: 1, ..Default::default() }, &Quiet)?;
        let files: Vec<String> = ix.with_manifest(|m| m.files.keys().cloned().collect());
        let tasks = mine(&repo, &range, max_tasks)?;
        println!(
            "bench {name} {}: base {} ({n} files, {} indexed), {} commits after it, {} tasks",
            root.display(),
            base.get(..10).unwrap_or(&base),
            report.files,
            range.len(),
            tasks.len()
        );
        Ok(TimeSplit { root, repo, tasks, range, base_dir, files, index: Some(ix), _tmp: tmp })
    }

    /// The index of the base tree (once).
    pub fn index(&mut self) -> Result<Index> {
        self.index.take().context("the index was handed out already")
    }
}

/// The runs a task gets besides the model with retrieval (and the copy baseline).
#[derive(Debug, Clone, Copy)]
pub struct Arms {
    /// The model without retrieval: no context, no continuation found elsewhere.
    pub bare: bool,
    /// Again after replaying the other files' hunks of the task's commit as the user's edits.
    pub replay_edits: bool,
}

/// One repository's scores, one per arm.
#[derive(Default)]
struct ArmScores {
    with: Score,
    without: Score,
    copy: Score,
    edited: Score,
    unedited: Score,
    /// Tasks answered without a prompt: the line continued code found elsewhere.
    continued: usize,
}

impl ArmScores {
    fn print(&self, arms: Arms) {
        self.with.line("model + retrieval");
        println!(
            "    ({} of them continued code found elsewhere, without the model)",
            self.continued
        );
        if arms.bare {
            self.without.line("model, no retrieval (no context, no continuation)");
        }
        self.copy.line("copy baseline");
        if arms.replay_edits {
            println!(
                "  tasks whose commit changed other files too ({}), with and without those \
                 changes replayed as the user's edits:",
                self.edited.sim.len()
            );
            self.unedited.line("  model + retrieval, no edits");
            self.edited.line("  model + retrieval + edits");
        }
        let (gain, se) = self.with.gain_over(&self.copy);
        println!(
            "  model + retrieval vs copy baseline: {gain:+.3} ± {se:.3} (standard error over the \
             tasks; goal: >= 0.45 and >= baseline + 0.1)"
        );
    }
}

/// Task `t` asked again after its commit's other files were replayed as the user's edits
/// (`first`: the answer and its milliseconds without them), when the commit changed other
/// files.
fn with_edits(
    engine: &Engine,
    repo: &Repo,
    t: &Task,
    first: (&str, f64),
    s: &mut ArmScores,
) -> Result<()> {
    engine.forget_edits();
    if replay_commit(engine, repo, t)? > 0 {
        s.unedited.add(&t.path, first.0, &t.target, first.1);
        let r = engine.complete_as(&t.path, &t.text, t.cursor, &Ticket::detached(), Run::Full)?;
        s.edited.add(&t.path, &r.text, &t.target, r.ms.total);
    }
    engine.forget_edits();
    Ok(())
}

pub fn run(
    dir: PathBuf,
    commits: usize,
    max_tasks: usize,
    model: Option<PathBuf>,
    arms: Arms,
) -> Result<(Score, Score)> {
    let mut split = TimeSplit::new(&dir, commits, max_tasks, "complete")?;
    let index = split.index()?;
    let (root, repo, tasks) = (&split.root, &split.repo, &split.tasks);
    let mut settings = Settings::from_repo(root).unwrap_or_default();
    if model.is_some() {
        settings.model = model;
    }
    let engine = Engine::new(index, settings.clone());
    let g = engine.load_model()?;
    println!(
        "  model {} ({}, run by {})",
        g.info().path.display(),
        engine.model_choice().source,
        g.info().backend
    );
    let pairs = LinePairs::new(&split.base_dir, &split.files);
    let mut s = ArmScores::default();
    let plain = Settings { budget: 0, ..settings.clone() };
    for (i, t) in tasks.iter().enumerate() {
        engine.set_settings(settings.clone())?;
        let r = engine.complete_as(&t.path, &t.text, t.cursor, &Ticket::detached(), Run::Full)?;
        s.with.add(&t.path, &r.text, &t.target, r.ms.total);
        s.continued += usize::from(r.prompt_tokens == 0 && !r.text.is_empty());
        let mut bare = None;
        if arms.bare {
            engine.set_settings(plain.clone())?;
            let r0 =
                engine.complete_as(&t.path, &t.text, t.cursor, &Ticket::detached(), Run::Full)?;
            s.without.add(&t.path, &r0.text, &t.target, r0.ms.total);
            bare = Some(r0.text);
        }
        let copied = pairs.copy(&t.previous);
        s.copy.add(&t.path, &copied, &t.target, 0.0);
        if arms.replay_edits {
            engine.set_settings(settings.clone())?;
            with_edits(&engine, repo, t, (&r.text, r.ms.total), &mut s)?;
        }
        if super::verbose() {
            eprintln!(
                "[{i}] {} sim {:.3}\n  want {:?}\n  got  {:?}\n  bare {:?}\n  copy {:?}",
                t.path,
                s.with.sim.last().copied().unwrap_or_default(),
                t.target,
                r.text,
                bare,
                copied
            );
        }
    }
    s.print(arms);
    Ok((s.with, s.copy))
}

/// [`run`] on each repository of `half` of the corpus in `file` (cloned under `repos`),
/// then the first line's edit similarity per repository and overall, with standard errors.
pub fn run_corpus(
    corpus_file: &Path,
    repos: &Path,
    half: Half,
    commits: usize,
    max_tasks: usize,
    model: Option<PathBuf>,
) -> Result<()> {
    let entries = corpus::load(corpus_file, repos, half)?;
    let mut rows = Vec::new();
    for e in &entries {
        // The corpus's figures compare with the copy baseline only.
        let arms = Arms { bare: false, replay_edits: false };
        let (with, copy) = run(e.dir(repos), commits, max_tasks, model.clone(), arms)?;
        rows.push((e, with, copy));
    }
    println!(
        "\ncorpus {} ({half:?} half): first-line edit similarity, model + retrieval and the copy baseline",
        corpus_file.display()
    );
    let (mut all_with, mut all_copy) = (Score::default(), Score::default());
    for (e, with, copy) in &rows {
        let (w, w_se) = corpus::mean(&with.sim);
        let (c, c_se) = corpus::mean(&copy.sim);
        let (gain, gain_se) = with.gain_over(copy);
        println!(
            "  {:28} {:10} {:4} tasks   patois {w:.3} ± {w_se:.3}   copy {c:.3} ± {c_se:.3}   gain {gain:+.3} ± {gain_se:.3}",
            e.name,
            e.language,
            with.sim.len()
        );
        all_with.extend(with);
        all_copy.extend(copy);
    }
    let (w, w_se) = corpus::mean(&all_with.sim);
    let (c, c_se) = corpus::mean(&all_copy.sim);
    let (gain, gain_se) = all_with.gain_over(&all_copy);
    println!(
        "  all tasks pooled              {:4} tasks   patois {w:.3} ± {w_se:.3}   copy {c:.3} ± {c_se:.3}   gain {gain:+.3} ± {gain_se:.3}",
        all_with.sim.len()
    );
    let per_repo: Vec<f64> = rows
        .iter()
        .filter(|(_, w, _)| !w.sim.is_empty())
        .map(|(_, w, _)| corpus::mean(&w.sim).0)
        .collect();
    let (m, m_se) = corpus::mean(&per_repo);
    println!("  mean over {} repositories       patois {m:.3} ± {m_se:.3}", per_repo.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn gain_over_pairs_tasks_and_gives_the_standard_error_of_the_differences() {
        let score = |sims: &[f64]| super::Score { sim: sims.to_vec(), ..Default::default() };
        let (gain, se) = score(&[0.5, 1.0, 0.25]).gain_over(&score(&[0.25, 0.5, 0.25]));
        assert!((gain - 0.25).abs() < 1e-12, "{gain}");
        // Differences 0.25, 0.5, 0: sample variance 0.0625, over 3 tasks.
        assert!((se - (0.0625f64 / 3.0).sqrt()).abs() < 1e-12, "{se}");
        let (same, zero) = score(&[0.5, 0.5]).gain_over(&score(&[0.25, 0.25]));
        assert_eq!((same, zero), (0.25, 0.0));
    }

    #[test]
    fn a_subset_keeps_each_kept_tasks_scores_together() {
        let mut s = super::Score::default();
        s.add("a.rs", "let x = 1;", "let x = 1;", 1.0);
        s.add("a.rs", "", "foo(bar)", 2.0);
        s.add("a.rs", "foo(bar)", "foo(bar)", 3.0);
        let kept = s.subset(&[false, true, true]);
        assert_eq!(kept.sim, [0.0, 1.0]);
        assert_eq!(kept.exact, [false, true]);
        assert_eq!(kept.identifiers, [Some(0.0), Some(1.0)]);
        assert_eq!(kept.ms, [2.0, 3.0]);
    }
}
