//! Training data from the index: code chunks as fill-in-the-middle and
//! next-line examples. Stable files are trained on; the most volatile are left to
//! retrieval; files touched by the newest commits are held out for evaluation.

use anyhow::Result;
use patois_index::Index;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// Which files train, which are held out, which are left to retrieval, and why.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Split {
    /// Path → blob id of the training files.
    pub train: BTreeMap<String, String>,
    pub held_out: BTreeMap<String, String>,
    /// Files with the highest churn: what changes is retrieval's job.
    pub volatile: Vec<String>,
    pub reasons: Vec<String>,
}

/// Splits the indexed source files. Held out: files the newest `held_out_share` of
/// commits touched (at least one commit), else every tenth file. Volatile: the
/// top `volatile_share` by churn among files changed at least 3 times.
pub fn split(index: &Index, held_out_share: f64, volatile_share: f64) -> Result<Split> {
    let m = index.manifest();
    let files: Vec<(&String, &patois_index::FileEntry)> =
        m.files.iter().filter(|(_, e)| e.language.is_some()).collect();
    let mut held: HashSet<String> = HashSet::new();
    let mut reasons = Vec::new();
    if m.commits > 1 {
        let mut times: Vec<i64> = m.history.values().map(|h| h.last_time).collect();
        times.sort_unstable();
        let cut = times[((times.len() as f64) * (1.0 - held_out_share))
            .floor()
            .min(times.len() as f64 - 1.0) as usize];
        for (p, h) in &m.history {
            if h.last_time >= cut && files.iter().any(|(f, _)| *f == p) {
                held.insert(p.clone());
            }
        }
        reasons.push(format!(
            "held out: {} files changed by the newest commits (last change at or after {cut})",
            held.len()
        ));
    }
    if held.is_empty() || held.len() * 2 > files.len() {
        held = files
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 10 == 9)
            .map(|(_, (p, _))| (*p).clone())
            .collect();
        reasons.push(format!(
            "held out: every tenth file ({}), as history does not separate new from old",
            held.len()
        ));
    }
    let mut churn: Vec<(u32, &String)> = files
        .iter()
        .filter_map(|(p, _)| m.history.get(*p).map(|h| (h.churn, *p)))
        .filter(|(c, p)| *c >= 3 && !held.contains(*p))
        .collect();
    churn.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let n_volatile = ((files.len() as f64) * volatile_share).floor() as usize;
    let volatile: Vec<String> = churn.iter().take(n_volatile).map(|(_, p)| (*p).clone()).collect();
    if !volatile.is_empty() {
        reasons.push(format!(
            "left to retrieval: {} most-changed files ({} changes and up), e.g. {}",
            volatile.len(),
            churn[volatile.len() - 1].0,
            volatile[0]
        ));
    }
    let mut s = Split { volatile: volatile.clone(), reasons, ..Default::default() };
    for (p, e) in files {
        if held.contains(p) {
            s.held_out.insert(p.clone(), e.blob.clone());
        } else if !volatile.contains(p) {
            s.train.insert(p.clone(), e.blob.clone());
        }
    }
    s.reasons.push(format!("trained on: {} stable files", s.train.len()));
    Ok(s)
}

/// Text examples from the chunks of `files`: each chunk once as plain code
/// (next-line prediction) and once as a fill-in-the-middle example whose middle is
/// one line, with retrieved context in front for every third example.
pub fn examples(
    index: &Index,
    files: &BTreeMap<String, String>,
    fim: Option<patois_prompt::FimStyle>,
    with_context: bool,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (n, path) in files.keys().enumerate() {
        let lang = patois_syntax::language_for_path(std::path::Path::new(path));
        let comment = lang.map(|l| l.line_comment).unwrap_or("#");
        for (k, c) in index.chunks_in_file(path)?.into_iter().enumerate() {
            if c.text.trim().is_empty() {
                continue;
            }
            let head = format!("{comment} Path: {path}\n");
            out.push(format!("{head}{}", c.text));
            let lines: Vec<&str> = c.text.split_inclusive('\n').collect();
            if let (Some(style), true) = (fim, lines.len() >= 3) {
                let mid = 1 + (n * 31 + k * 17) % (lines.len() - 2);
                let prefix: String = lines[..mid].concat();
                let middle = lines[mid].trim_end_matches('\n');
                let suffix: String = format!("\n{}", lines[mid + 1..].concat());
                let mut context = String::new();
                if with_context && (n + k) % 3 == 0 {
                    let text = index
                        .chunks_in_file(path)?
                        .into_iter()
                        .map(|c| c.text)
                        .collect::<Vec<_>>()
                        .join("\n");
                    if let Some(cursor) = text.find(&c.text).map(|i| i + prefix.len()) {
                        let req = patois_retrieve::Request {
                            path,
                            text: &text,
                            cursor,
                            recent: &[],
                            edits: &[],
                            budget: patois_retrieve::Budget {
                                limit: 600,
                                count: &patois_retrieve::chars,
                            },
                        };
                        if let Ok(r) = patois_retrieve::retrieve(index, &req, &Default::default()) {
                            for it in r
                                .items
                                .iter()
                                .filter(|i| i.source == patois_retrieve::Source::Definition)
                                .take(1)
                            {
                                context.push_str(&patois_prompt::render_item(comment, it));
                            }
                        }
                    }
                }
                let end = style.stop_tokens()[0];
                out.push(format!(
                    "{}{middle}{end}",
                    style.render(&format!("{context}{head}{prefix}"), &suffix)
                ));
            }
        }
    }
    Ok(out)
}

/// How serving asks for a completion, for [`serving_examples`].
pub struct Serving<'a> {
    pub style: patois_prompt::FimStyle,
    /// The model's tokenizer (budgets and cuts are in its tokens).
    pub tokens: &'a dyn patois_prompt::Tokens,
    /// Context budget, as `budget` in the settings.
    pub budget: usize,
    /// The prompt's size, as the engine computes it from the settings.
    pub window: usize,
    /// Lines asked for per file, spread over it.
    pub per_file: usize,
}

/// Next-line examples built the way the engine builds a completion prompt: the cursor at
/// a line's indentation, the line removed, context retrieved from the index for that
/// cursor, the same prompt builder and limits; the line and the end token follow.
pub fn serving_examples(
    index: &Index,
    files: &BTreeMap<String, String>,
    s: &Serving,
) -> Result<Vec<String>> {
    let count = |t: &str| s.tokens.count(t);
    let mut out = Vec::new();
    for path in files.keys() {
        let Some(lang) = patois_syntax::language_for_path(std::path::Path::new(path)) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(index.root().join(path)) else { continue };
        let starts: Vec<usize> =
            std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        let asked: Vec<usize> = (1..starts.len())
            .filter(|&n| {
                let line = text[starts[n - 1]..starts[n] - 1].trim();
                line.len() >= 8 && !line.starts_with(lang.line_comment)
            })
            .collect();
        let step = (asked.len() / s.per_file.max(1)).max(1);
        for &n in asked.iter().skip(step / 2).step_by(step).take(s.per_file) {
            let (start, end) = (starts[n - 1], starts[n] - 1);
            let line = &text[start..end];
            let cursor = start + (line.len() - line.trim_start().len());
            let doc = format!("{}{}", &text[..cursor], &text[end..]);
            let req = patois_retrieve::Request {
                path,
                text: &doc,
                cursor,
                recent: &[],
                edits: &[],
                budget: patois_retrieve::Budget { limit: s.budget, count: &count },
            };
            let items = patois_retrieve::retrieve(index, &req, &Default::default())?.items;
            let input = patois_prompt::Input {
                path,
                comment: lang.line_comment,
                prefix: &doc[..cursor],
                suffix: &doc[cursor..],
                items: &items,
            };
            let limits = patois_prompt::Limits::for_window(s.window);
            let prompt = patois_prompt::build(s.style, &input, limits, s.tokens);
            out.push(format!("{}{}{}", prompt.text, line.trim(), s.style.stop_tokens()[0]));
        }
    }
    Ok(out)
}

/// The local cargo registry's unpacked sources (`$CARGO_HOME/registry/src`).
pub fn cargo_registry_src() -> Option<std::path::PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")))?;
    Some(home.join("registry").join("src"))
}

/// Source text of the repository's Rust dependencies, read from `src` (the local
/// cargo registry) for the packages `Cargo.lock` names; at most `max_bytes` in all.
/// Nothing is downloaded: crates not present are skipped.
pub fn dependency_texts(
    root: &std::path::Path,
    src: &std::path::Path,
    max_bytes: usize,
) -> Vec<String> {
    let Ok(lock) = std::fs::read_to_string(root.join("Cargo.lock")) else { return Vec::new() };
    let registries: Vec<std::path::PathBuf> = std::fs::read_dir(src)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut total = 0;
    let (mut name, mut version) = (None::<String>, None::<String>);
    for line in lock.lines().chain(std::iter::once("[[package]]")) {
        if line == "[[package]]" {
            if let (Some(n), Some(v)) = (name.take(), version.take()) {
                for reg in &registries {
                    let dir = reg.join(format!("{n}-{v}")).join("src");
                    for c in patois_index::walk(&dir, &dir.join(".none")) {
                        if total >= max_bytes {
                            return out;
                        }
                        if !c.rel.ends_with(".rs") || c.size > 200_000 {
                            continue;
                        }
                        if let Ok(t) = std::fs::read_to_string(&c.abs) {
                            if !patois_index::contains_secret(&t) {
                                total += t.len();
                                out.push(format!("// Path: {n}/src/{}\n{t}", c.rel));
                            }
                        }
                    }
                }
            }
        } else if let Some(v) = line.strip_prefix("name = ") {
            name = Some(v.trim_matches('"').to_string());
        } else if let Some(v) = line.strip_prefix("version = ") {
            version = Some(v.trim_matches('"').to_string());
        }
    }
    out
}
