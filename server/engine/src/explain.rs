//! "Explain with patois": what a colleague would show about a piece of code — its
//! definition, callers, tests, and the commits that introduced and last changed
//! it — each with a citation, plus a model summary when a model is loaded.

use crate::answer::{linked, Answer, AnswerSource};
use crate::{Engine, Error, Result};
use patois_retrieve::{contains_word, is_test_code, Citation};
use patois_syntax::SymbolKind;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// How a caller follows the model's summary while it is written: `written` holds the text
/// so far, `cancelled` stops the model (the explanation then comes without a summary).
pub struct Follow<'a> {
    pub written: Option<Arc<Mutex<String>>>,
    pub cancelled: &'a dyn Fn() -> bool,
}

impl Follow<'static> {
    /// Nobody follows: the summary is read when the explanation is done.
    pub fn unfollowed() -> Follow<'static> {
        Follow { written: None, cancelled: &never }
    }
}

fn never() -> bool {
    false
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Section {
    pub title: SectionTitle,
    pub entries: Vec<Entry>,
}

/// The sections of an explanation, in the order they are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SectionTitle {
    Definition,
    Callers,
    Tests,
    History,
}

impl std::fmt::Display for SectionTitle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub citation: Citation,
    pub label: String,
    /// A few lines of code or the commit message.
    pub excerpt: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Explanation {
    pub symbol: Option<String>,
    pub kind: Option<SymbolKind>,
    pub sections: Vec<Section>,
    /// Written by the model from the sections' entries, numbered in order as its sources:
    /// `[n]` cites the n-th entry (see [`Explanation::citations`]). `None` without a model,
    /// or when it wrote no whole sentence.
    pub summary: Option<String>,
    /// The model that wrote the summary.
    pub summary_model: Option<String>,
    pub markdown: String,
}

impl Explanation {
    pub fn citations(&self) -> impl Iterator<Item = &Citation> {
        self.sections.iter().flat_map(|s| s.entries.iter().map(|e| &e.citation))
    }
}

fn excerpt(text: &str, max_lines: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = lines.iter().take(max_lines).copied().collect::<Vec<_>>().join("\n");
    if lines.len() > max_lines {
        out.push_str("\n…");
    }
    out
}

/// Explains lines `start..=end` (1-based) of `path`, whose current text is `text`; a
/// range past the end of the text is cut to it. With `summary`, the model summarizes the
/// explanation's entries, followed as it writes.
pub fn explain(
    engine: &Engine,
    path: &str,
    text: &str,
    start: u32,
    end: u32,
    summary: Option<Follow<'_>>,
) -> Result<Explanation> {
    let last_line = (text.lines().count() as u32).max(1);
    let start = start.clamp(1, last_line);
    let end = end.clamp(start, last_line);
    let analysis = patois_syntax::analyze(Path::new(path), text, &Default::default());
    // The innermost definition containing the selection, else the first one inside it.
    let sym = analysis
        .symbols
        .iter()
        .filter(|s| !s.kind.is_member() && s.start_line <= start && end <= s.end_line)
        .min_by_key(|s| s.end_line - s.start_line)
        .or_else(|| analysis.symbols.iter().find(|s| s.start_line >= start && s.start_line <= end));
    let (def_start, def_end) = sym.map(|s| (s.start_line, s.end_line)).unwrap_or((start, end));
    let def_text: String = text
        .lines()
        .skip((def_start as usize).saturating_sub(1))
        .take((def_end.saturating_sub(def_start) + 1) as usize)
        .collect::<Vec<_>>()
        .join("\n");
    let mut sections = vec![Section {
        title: SectionTitle::Definition,
        entries: vec![Entry {
            citation: Citation {
                path: path.into(),
                start_line: def_start,
                end_line: def_end,
                commit: None,
                pr: None,
            },
            label: sym
                .map(|s| format!("{} {}", s.kind, s.name))
                .unwrap_or_else(|| "selection".into()),
            excerpt: excerpt(&def_text, 30),
        }],
    }];
    if let Some(s) = sym {
        let (callers, tests) = uses_of(engine, &s.name, path, (def_start, def_end))?;
        sections.push(Section { title: SectionTitle::Callers, entries: callers });
        sections.push(Section { title: SectionTitle::Tests, entries: tests });
    }
    sections.push(Section {
        title: SectionTitle::History,
        entries: history(engine, path, text, sym.map(|s| s.name.as_str()), (def_start, def_end))?,
    });

    let name = sym.map(|s| s.name.as_str());
    let summary = summary.and_then(|follow| summarize(engine, &sections, name, follow));
    let markdown = render(
        path,
        sym.map(|s| (s.name.as_str(), s.kind.as_str())),
        &sections,
        summary.as_ref(),
        engine,
    );
    Ok(Explanation {
        symbol: sym.map(|s| s.name.clone()),
        kind: sym.map(|s| s.kind),
        sections,
        summary_model: summary.as_ref().map(|a| a.model.clone()),
        summary: summary.map(|a| a.text),
        markdown,
    })
}

/// Up to five chunks that use `name` outside its definition (`path`, lines `def`), and up
/// to five tests that do.
fn uses_of(
    engine: &Engine,
    name: &str,
    path: &str,
    (def_start, def_end): (u32, u32),
) -> Result<(Vec<Entry>, Vec<Entry>)> {
    let mut callers = Vec::new();
    let mut tests = Vec::new();
    let outside = |h: &patois_index::ChunkHit| {
        !(h.path == path && h.start_line <= def_end && h.end_line >= def_start)
    };
    for hit in engine.index().search_chunks(name, 40, &outside).map_err(Error::index)? {
        if !contains_word(&hit.text, name)
            || hit.name.as_deref() == Some(name)
            || only_imports(&hit.text, name)
        {
            continue;
        }
        let is_test = is_test_code(&hit.path, hit.name.as_deref(), &hit.text);
        let entry = Entry {
            citation: Citation::lines(&hit.path, hit.start_line, hit.end_line),
            label: hit.name.clone().unwrap_or_else(|| hit.kind.clone()),
            excerpt: excerpt(&hit.text, 8),
        };
        if is_test && tests.len() < 5 {
            tests.push(entry);
        } else if !is_test && callers.len() < 5 {
            callers.push(entry);
        }
    }
    Ok((callers, tests))
}

/// The commit that last changed the lines, and the oldest indexed commit whose
/// version of the file already had the symbol (it introduced it).
fn history(
    engine: &Engine,
    path: &str,
    text: &str,
    name: Option<&str>,
    lines: (u32, u32),
) -> Result<Vec<Entry>> {
    let index = engine.index();
    let mut out = Vec::new();
    let Some(repo) = patois_vcs::Repo::discover(index.root()).map_err(Error::index)? else {
        return Ok(out);
    };
    let push = |id: &str, label: String, out: &mut Vec<Entry>| -> Result<()> {
        if let Some(e) =
            out.iter_mut().find(|e: &&mut Entry| e.citation.commit.as_deref() == Some(id))
        {
            // One commit with two roles: say both.
            if let Some((role, summary)) = e.label.clone().split_once(": ") {
                e.label = format!("{label} and {role}: {summary}");
            }
            return Ok(());
        }
        if let Some(c) = index.commit(id).map_err(Error::index)? {
            let pr = c.pr.and_then(|n| index.pr(n).ok().flatten());
            let mut ex = c.message.trim().to_string();
            if let Some(pr) = pr {
                ex.push_str(&format!("\n\nPR #{}: {}", pr.number, pr.title));
            }
            out.push(Entry {
                citation: Citation {
                    path: path.into(),
                    start_line: lines.0,
                    end_line: lines.1,
                    commit: Some(c.id.clone()),
                    pr: c.pr,
                },
                label: format!("{label}: {}", c.summary),
                excerpt: excerpt(&ex, 6),
            });
        }
        Ok(())
    };
    if let Ok(blamed) = repo.blame_lines(path, Some(text), lines) {
        if let Some(id) = blamed.first() {
            push(id, "last changed these lines".into(), &mut out)?;
        }
    }
    if let Some(name) = name {
        let commits = index.commits_touching(path, 200).map_err(Error::index)?;
        let introduced = commits.iter().rev().find(|c| {
            repo.file_at(&c.id, path)
                .ok()
                .flatten()
                .is_some_and(|b| contains_word(&String::from_utf8_lossy(&b), name))
        });
        if let Some(c) = introduced {
            push(&c.id, format!("introduced `{name}`"), &mut out)?;
        }
    }
    Ok(out)
}

/// The model's summary from the sections' entries, numbered in order as its sources.
fn summarize(
    engine: &Engine,
    sections: &[Section],
    name: Option<&str>,
    follow: Follow<'_>,
) -> Option<crate::answer::Answer> {
    let g = engine.load_model().ok()?;
    let sources: Vec<AnswerSource> = sections
        .iter()
        .flat_map(|s| {
            s.entries.iter().map(move |e| AnswerSource {
                citation: e.citation.clone(),
                label: format!("{}: {}", s.title, e.label),
                text: e.excerpt.clone(),
            })
        })
        .collect();
    let question = match name {
        Some(name) => format!("What does `{name}` do, and why is it the way it is?"),
        None => "What does this code do, and why is it the way it is?".to_string(),
    };
    crate::answer::answer(g.as_ref(), &question, &sources, follow.written, follow.cancelled)
}

fn render(
    path: &str,
    sym: Option<(&str, &str)>,
    sections: &[Section],
    summary: Option<&Answer>,
    engine: &Engine,
) -> String {
    let lang = patois_syntax::language_for_path(Path::new(path)).map(|l| l.name).unwrap_or("");
    let mut md = match sym {
        Some((name, kind)) => format!("## `{name}` ({kind}) — {path}\n"),
        None => format!("## {path}\n"),
    };
    for s in sections {
        md.push_str(&format!("\n### {}\n", s.title));
        if s.entries.is_empty() {
            md.push_str("_none found in the index_\n");
        }
        for e in &s.entries {
            let c = &e.citation;
            let link = format!(
                "[{}:{}-{}]({}#L{})",
                c.path,
                c.start_line,
                c.end_line,
                engine.root().join(&c.path).display(),
                c.start_line
            );
            match &c.commit {
                Some(id) => {
                    let pr = c.pr.map(|p| format!(" (#{p})")).unwrap_or_default();
                    md.push_str(&format!(
                        "- `{}`{pr} {} — {link}\n",
                        &id[..id.len().min(10)],
                        e.label
                    ));
                }
                None => {
                    md.push_str(&format!(
                        "- {} — {link}\n\n```{lang}\n{}\n```\n",
                        e.label, e.excerpt
                    ));
                }
            }
        }
    }
    if let Some(a) = summary {
        let sources: Vec<Citation> =
            sections.iter().flat_map(|s| s.entries.iter().map(|e| e.citation.clone())).collect();
        let text = linked(a, &sources, engine.root());
        let added = match a.attributed {
            0 => String::new(),
            n => format!(
                "; the {n} followed by † are patois's: those sentences share names with that \
                 source, the model did not cite it"
            ),
        };
        md.push_str(&format!(
            "\n### Summary\n_Written by {} from the first {} sources above, in order; [n] \
             marks the source of a claim{added}._\n\n{text}\n",
            a.model, a.in_prompt
        ));
    }
    md
}

/// Whether every line that names `name` imports it (`use`, `import`, `from … import`): such a
/// chunk is not a caller.
fn only_imports(text: &str, name: &str) -> bool {
    let import = |l: &str| {
        let l = l.trim_start().trim_start_matches("pub ").trim_start_matches("pub(crate) ");
        l.starts_with("use ") || l.starts_with("import ") || l.starts_with("from ")
    };
    let mut naming = text.lines().filter(|l| contains_word(l, name)).peekable();
    naming.peek().is_some() && naming.all(import)
}

#[cfg(test)]
mod tests {
    use super::only_imports;

    #[test]
    fn an_import_is_not_a_caller() {
        assert!(only_imports("use crate::store::fetch_value;\n", "fetch_value"));
        assert!(only_imports("pub use store::{fetch_value, put};\n", "fetch_value"));
        assert!(only_imports("from store import fetch_value\n", "fetch_value"));
        assert!(!only_imports("use x::fetch_value;\nlet v = fetch_value(k);\n", "fetch_value"));
        assert!(!only_imports("fetch_value(\"abc\")\n", "fetch_value"));
        assert!(!only_imports("use other::thing;\n", "fetch_value"));
    }
}
