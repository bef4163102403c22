//! `patois bench next-edit`: real commits with several hunks. The first hunk of each file a
//! commit changed is replayed as the user's edit of the file as it was before; the next
//! edits patois suggests then are compared with the commit's other hunks: at the right
//! place (within 2 lines of one), exactly right (the line the suggestion makes is one the
//! commit wrote there), wrong ones shown per 100 replayed edits, latency; overall and for
//! each rule's suggestions alone. Propagation only: the model tier does not exist yet.
//! The index follows the commits: it is the repository's as of each replayed commit's
//! parent.

use super::complete::TimeSplit;
use super::corpus::{self, share, CorpusArgs};
use super::generate::pct;
use anyhow::Result;
use patois_engine::{EditRule, Engine, NextEdit, Settings};
use patois_index::{Quiet, UpdateOptions};
use patois_vcs::Hunk;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

#[derive(clap::Args)]
pub struct NextEditArgs {
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The last N first-parent commits are replayed.
    #[arg(long, default_value_t = 60)]
    pub commits: usize,
    #[command(flatten)]
    pub corpus: CorpusArgs,
}

#[derive(Default, Clone)]
struct Tally {
    edits: usize,
    with_suggestions: usize,
    shown: usize,
    at_place: usize,
    exact: usize,
    latency_ms: Vec<f64>,
    /// The suggestions of each rule alone (their `edits` count every replayed edit).
    by_rule: BTreeMap<EditRule, Tally>,
}

impl Tally {
    /// `other` added to this one.
    fn add(&mut self, other: Tally) {
        self.edits += other.edits;
        self.with_suggestions += other.with_suggestions;
        self.shown += other.shown;
        self.at_place += other.at_place;
        self.exact += other.exact;
        self.latency_ms.extend(other.latency_ms);
        for (rule, t) in other.by_rule {
            self.by_rule.entry(rule).or_default().add(t);
        }
    }
}

/// `text` with `h` applied (its removed lines replaced by its added ones).
fn apply(text: &str, h: &Hunk) -> String {
    let mut lines: Vec<&str> = text.split('\n').collect();
    let at = if h.removed.is_empty() { h.old_start as usize } else { h.old_start as usize - 1 };
    let end = (at + h.removed.len()).min(lines.len());
    let at = at.min(end);
    lines.splice(at..end, h.added.iter().map(String::as_str));
    lines.join("\n")
}

/// Whether `s` lands within 2 lines of `h` (lines of the file after `first`, which moved
/// the lines below it by `shift`), and whether every line it writes is one of `h`'s.
fn judge(s: &NextEdit, h: &Hunk, first: &Hunk, shift: i64) -> (bool, bool) {
    if h.path != s.path {
        return (false, false);
    }
    let moved = if h.path == first.path && h.old_start > first.old_start { shift } else { 0 };
    let start = h.old_start as i64 + moved;
    let end = start + h.removed.len().max(1) as i64 - 1;
    let near = (start - 2..=end + 2).contains(&(s.line as i64));
    let made = format!("{}{}{}", &s.line_text[..s.start], s.new_text, &s.line_text[s.end..]);
    // The lines it writes: all of them but the one kept when it inserts lines after it.
    let mut written =
        made.split('\n').map(str::trim).filter(|l| *l != s.line_text.trim()).peekable();
    let exact = written.peek().is_some() && written.all(|w| h.added.iter().any(|a| a.trim() == w));
    (near, near && exact)
}

fn replay(engine: &Engine, repo: &patois_vcs::Repo, id: &str, t: &mut Tally) -> Result<()> {
    let hunks = repo.hunks(id)?;
    let Some(parent) = repo.parent(id)? else { return Ok(()) };
    if hunks.len() < 2 {
        return Ok(());
    }
    let mut seen = Vec::new();
    for first in &hunks {
        if seen.contains(&first.path)
            || patois_syntax::language_for_path(Path::new(&first.path)).is_none()
        {
            continue;
        }
        seen.push(first.path.clone());
        let Some(bytes) = repo.file_at(&parent, &first.path)? else { continue };
        let Ok(before) = String::from_utf8(bytes) else { continue };
        let after = apply(&before, first);
        engine.document_changed(&first.path, Arc::new(before), first.old_start);
        engine.document_changed(&first.path, Arc::new(after), first.old_start);
        let t0 = Instant::now();
        let found = engine.next_edits_by(&first.path)?;
        t.latency_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        engine.document_closed(&first.path);
        engine.forget_edits();
        t.edits += 1;
        let Some((rule, suggested)) = found else { continue };
        let mut alone = Tally { edits: 0, with_suggestions: 1, ..Tally::default() };
        let shift = first.added.len() as i64 - first.removed.len() as i64;
        for s in &suggested {
            alone.shown += 1;
            let verdicts = hunks.iter().filter(|h| *h != first).map(|h| judge(s, h, first, shift));
            let (near, exact) = verdicts.fold((false, false), |a, b| (a.0 || b.0, a.1 || b.1));
            alone.at_place += usize::from(near);
            alone.exact += usize::from(exact);
            if super::verbose() {
                let made =
                    format!("{}{}{}", &s.line_text[..s.start], s.new_text, &s.line_text[s.end..]);
                let verdict = if exact {
                    "exact"
                } else if near {
                    "near"
                } else {
                    "wrong"
                };
                println!("  {verdict:<5} {}:{} {} — {}", s.path, s.line, made.trim(), s.reason);
            }
        }
        if suggested.is_empty() {
            continue;
        }
        t.by_rule.entry(rule).or_default().add(alone.clone());
        t.add(alone);
    }
    Ok(())
}

/// Brings the indexed tree (`dir`) to commit `id` by writing the files it changed, and
/// updates the index, as the server keeps its index up with the repository: suggestions in
/// other files then stand on the lines they would stand on at the next commit's parent.
fn advance(engine: &Engine, repo: &patois_vcs::Repo, dir: &Path, id: &str) -> Result<()> {
    let mut paths: Vec<String> = repo.hunks(id)?.into_iter().map(|h| h.path).collect();
    paths.dedup();
    for path in paths {
        let file = dir.join(&path);
        match repo.file_at(id, &path)? {
            Some(bytes) => {
                if let Some(parent) = file.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&file, bytes)?;
            }
            None => std::fs::remove_file(&file).or_else(ignore_missing)?,
        }
    }
    engine.update_index(&UpdateOptions { threads: 1, ..Default::default() }, &Quiet)?;
    Ok(())
}

fn ignore_missing(e: std::io::Error) -> std::io::Result<()> {
    match e.kind() {
        std::io::ErrorKind::NotFound => Ok(()),
        _ => Err(e),
    }
}

fn run_repo(dir: &Path, commits: usize) -> Result<Tally> {
    let mut split = TimeSplit::new(dir, commits, 0, "next-edit")?;
    let engine = Engine::new(split.index()?, Settings::default());
    let mut t = Tally::default();
    for id in &split.range {
        replay(&engine, &split.repo, id, &mut t)?;
        advance(&engine, &split.repo, &split.base_dir, id)?;
    }
    Ok(t)
}

/// One row of figures; the latency when `t` has it (a rule's own row has not: one call
/// finds the edits of every rule).
fn print_row(name: &str, t: &mut Tally) {
    let f = |(p, se): (f64, f64)| format!("{:.0}% ± {:.0}", p * 100.0, se * 100.0);
    let wrong = t.shown - t.at_place;
    let latency = match t.latency_ms.is_empty() {
        true => String::new(),
        false => format!("; p50 {:.1} ms", pct(&mut t.latency_ms, 0.5)),
    };
    println!(
        "{name:<24} {:>4} edits replayed, {:>3} with suggestions, {:>3} shown: at the place {:<10} exact {:<10} wrong shown per 100 edits {:.1}{latency}",
        t.edits,
        t.with_suggestions,
        t.shown,
        f(share(t.at_place, t.shown)),
        f(share(t.exact, t.shown)),
        100.0 * wrong as f64 / t.edits.max(1) as f64,
    );
}

pub fn run(args: NextEditArgs) -> Result<()> {
    let repos = corpus::repos(&args.corpus, &args.dir)?;
    let mut all = Tally::default();
    for (name, dir) in repos {
        let mut t = match run_repo(&dir, args.commits) {
            Ok(t) => t,
            Err(e) => {
                println!("{name:<24} skipped: {e:#}");
                continue;
            }
        };
        print_row(&name, &mut t);
        all.add(t);
    }
    print_row("all", &mut all);
    for (rule, t) in &all.by_rule {
        let mut t = Tally { edits: all.edits, ..t.clone() };
        print_row(&format!("  {} alone", rule.as_str()), &mut t);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hunk_replaces_its_lines_or_adds_after_its_line() {
        let h = |old_start, removed: &[&str], added: &[&str]| Hunk {
            path: "a.rs".into(),
            old_start,
            removed: removed.iter().map(|s| s.to_string()).collect(),
            added: added.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(apply("a\nb\nc", &h(2, &["b"], &["B", "B2"])), "a\nB\nB2\nc");
        assert_eq!(apply("a\nb\nc", &h(1, &[], &["new"])), "a\nnew\nb\nc");
        assert_eq!(apply("a\nb\nc", &h(3, &["c"], &[])), "a\nb");
    }

    #[test]
    fn an_inserted_line_is_exact_when_the_commit_wrote_it() {
        let hunk = Hunk {
            path: "a.rs".into(),
            old_start: 10,
            removed: vec![],
            added: vec!["    len: 0,".into()],
        };
        let edit = |new_text: &str| NextEdit {
            path: "a.rs".into(),
            line: 10,
            line_text: "    items,".into(),
            start: 10,
            end: 10,
            new_text: new_text.into(),
            reason: String::new(),
            citation: patois_retrieve::Citation::lines("a.rs", 10, 10),
        };
        let first = Hunk { old_start: 1, ..hunk.clone() };
        assert_eq!(judge(&edit("\n    len: 0,"), &hunk, &first, 0), (true, true));
        assert_eq!(judge(&edit("\n    len: todo!(),"), &hunk, &first, 0), (true, false));
        assert_eq!(judge(&edit(""), &hunk, &first, 0), (true, false), "writes nothing");
    }
}
