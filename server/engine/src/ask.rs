//! Questions about the code and its history (`patois ask`, `patois/ask`): the sources a
//! colleague would read — the definitions and uses of the names the question mentions,
//! the commits whose messages match it (within a path and a date window when given), the
//! code that matches its words — and the model's answer from them, each claim cited.
//! When nothing matches, or a name the question asks about is nowhere in the index, the
//! answer says so instead of guessing.

use crate::answer::{answer, Answer, AnswerSource};
use crate::{Engine, Error, Result};
use patois_index::{ChunkHit, CommitHit, SymbolHit};
use patois_retrieve::{contains_word, Citation};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

/// A question, optionally about a path (a file or a folder) and the commits since a time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Question {
    pub text: String,
    pub path: Option<String>,
    /// Seconds since the Unix epoch: only commits from then on.
    pub since: Option<i64>,
}

/// What a question found and what the model answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Asked {
    /// Numbered in order: `[n]` in the answer cites `sources[n - 1]`.
    pub sources: Vec<AnswerSource>,
    pub answer: Option<Answer>,
    /// Why there is no answer (nothing found, no model, no whole sentence written).
    pub note: Option<String>,
}

/// The most sources an answer reads.
const MAX_SOURCES: usize = 8;
/// Lines of a chunk the model reads.
const CHUNK_LINES: usize = 30;

/// Words of a question that say nothing about the code.
const QUESTION_WORDS: &[&str] = &[
    "what", "why", "how", "where", "who", "which", "when", "did", "does", "do", "is", "are", "was",
    "were", "the", "an", "of", "in", "on", "to", "for", "and", "or", "it", "its", "this", "that",
    "with", "by", "from", "we", "our", "be", "as", "at", "calls", "call", "called", "defined",
    "change", "changed", "about", "there", "would", "if", "any", "can", "last", "month", "quarter",
    "year",
];

/// The names a question mentions: in backticks, or spelled like code (`snake_case`,
/// `camelCase`, `Path::name`, `obj.method`).
pub fn names_in(question: &str) -> Vec<String> {
    let mut names: Vec<String> =
        question.split('`').skip(1).step_by(2).map(str::to_string).collect();
    for word in question.split(|c: char| c.is_whitespace() || ",;?!()\"'`".contains(c)) {
        let word = word.trim_end_matches('.');
        let inner_capital = word.chars().skip(1).any(|c| c.is_ascii_uppercase())
            && word.chars().any(|c| c.is_ascii_lowercase());
        let code_like = word.contains('_') || word.contains("::") || inner_capital;
        if code_like && !names.iter().any(|n| n == word) {
            names.push(word.to_string());
        }
    }
    names.retain(|n| !n.trim().is_empty());
    names
}

/// Whether a name the question mentions is a file path (`src/fuse.rs`, `main.go`).
fn is_path(name: &str) -> bool {
    const EXTENSIONS: &[&str] = &[
        "rs", "py", "go", "ts", "tsx", "js", "jsx", "mjs", "cjs", "toml", "json", "yaml", "yml",
        "md", "txt", "c", "h", "cc", "cpp", "java", "rb", "sh", "lock", "mod", "cfg",
    ];
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    !name.contains("::") && (name.contains('/') || EXTENSIONS.contains(&ext))
}

/// The last identifier of a name (`Store::put` → `put`, `self.items` → `items`).
fn last_identifier(name: &str) -> &str {
    name.rsplit([':', '.']).find(|p| !p.is_empty()).unwrap_or(name).trim_end_matches("()")
}

/// The question's words that say something about the code, besides the names it mentions
/// (looked up by name) and the month it names (a window on the commits).
fn keywords(question: &str) -> String {
    let names = names_in(question);
    let unquoted: String = question.split('`').step_by(2).collect::<Vec<_>>().join(" ");
    let is_date = |w: &str| {
        let w = w.to_ascii_lowercase();
        (w.len() == 4 && w.chars().all(|c| c.is_ascii_digit()))
            || crate::dates::month_window(&format!("{w} 2000")).is_some()
    };
    unquoted
        .split(|c: char| c.is_whitespace() || ",;?!()\"'".contains(c))
        .filter(|w| !names.iter().any(|n| n == w.trim_end_matches('.')))
        .flat_map(|w| w.split(|c: char| !(c.is_alphanumeric() || c == '_')))
        .filter(|w| w.len() > 1 && !QUESTION_WORDS.contains(&w.to_ascii_lowercase().as_str()))
        .filter(|w| !is_date(w))
        .collect::<Vec<_>>()
        .join(" ")
}

fn chunk_source(hit: &ChunkHit, label: String) -> AnswerSource {
    let lines: Vec<&str> = hit.text.lines().take(CHUNK_LINES).collect();
    AnswerSource {
        citation: Citation::lines(&hit.path, hit.start_line, hit.end_line),
        label,
        text: lines.join("\n"),
    }
}

fn commit_source(c: &CommitHit, about: Option<&str>) -> AnswerSource {
    let date = crate::dates::format_date(c.time);
    let files: Vec<&str> = c.files.iter().take(6).map(|f| f.path.as_str()).collect();
    let path = about.map(str::to_string).or_else(|| files.first().map(|f| f.to_string()));
    AnswerSource {
        citation: Citation {
            path: path.unwrap_or_default(),
            start_line: 1,
            end_line: 1,
            commit: Some(c.id.clone()),
            pr: c.pr,
        },
        label: format!("commit {} by {} on {date}", &c.id[..c.id.len().min(10)], c.author),
        text: format!("{}\n\nFiles: {}", c.message.trim(), files.join(", ")),
    }
}

impl Asked {
    /// The answer and its sources as Markdown, each `[n]` a link to its source under `root`.
    pub fn markdown(&self, root: &std::path::Path) -> String {
        let mut md = String::new();
        match (&self.answer, &self.note) {
            (Some(a), _) => {
                let cites: Vec<Citation> =
                    self.sources.iter().map(|s| s.citation.clone()).collect();
                md.push_str(&crate::answer::linked(a, &cites, root));
                md.push_str(&format!("\n\n_Written by {} from the sources below", a.model));
                if a.attributed > 0 {
                    md.push_str(&format!(
                        "; the {} markers followed by † are patois's: those sentences share \
                         names with that source, the model did not cite it",
                        a.attributed
                    ));
                }
                md.push_str("._\n");
            }
            (None, Some(note)) => md.push_str(&format!("{note}\n")),
            (None, None) => {}
        }
        if !self.sources.is_empty() {
            md.push_str("\n### Sources\n");
        }
        for (i, s) in self.sources.iter().enumerate() {
            let c = &s.citation;
            let link = format!("{}#L{}", root.join(&c.path).display(), c.start_line);
            md.push_str(&format!("{}. {} — [{c}]({link})\n", i + 1, s.label));
        }
        md
    }
}

impl Engine {
    /// The sources for `q`, and the names it mentions that the index does not have.
    fn sources_for(&self, q: &Question) -> Result<(Vec<AnswerSource>, Vec<String>)> {
        let index = self.index();
        let in_path = |p: &str| q.path.as_deref().is_none_or(|want| p.starts_with(want));
        let mut sources = Vec::new();
        let mut missing = Vec::new();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let window = crate::dates::window_in(&q.text, now);
        let when = |c: &CommitHit| {
            q.since.is_none_or(|s| c.time >= s)
                && window.is_none_or(|(a, b)| (a..b).contains(&c.time))
        };
        for name in names_in(&q.text) {
            if is_path(&name) {
                let commits = index.commits_touching(&name, 200).map_err(Error::index)?;
                let known = !commits.is_empty()
                    || !index.chunks_in_file(&name).map_err(Error::index)?.is_empty();
                if !known {
                    missing.push(name.clone());
                }
                let when_ok = commits.iter().filter(|c| when(c)).take(4);
                sources.extend(when_ok.map(|c| commit_source(c, Some(&name))));
                continue;
            }
            let ident = last_identifier(&name);
            let defs = index.symbols_named(ident, 3).map_err(Error::index)?;
            // The chunk that holds a definition's first line.
            let holds = |c: &ChunkHit, d: &SymbolHit| {
                c.path == d.path && c.start_line <= d.start_line && c.end_line >= d.start_line
            };
            for d in &defs {
                let chunks = index.chunks_in_file(&d.path).map_err(Error::index)?;
                if let Some(c) = chunks.iter().find(|c| holds(c, d)) {
                    sources
                        .push(chunk_source(c, format!("definition of `{}` ({})", d.name, d.kind)));
                }
            }
            let is_def = |h: &ChunkHit| defs.iter().any(|d| holds(h, d));
            let uses = index
                .search_chunks(ident, 3, &|h| contains_word(&h.text, ident) && !is_def(h))
                .map_err(Error::index)?;
            if defs.is_empty() && uses.is_empty() {
                missing.push(name.clone());
            }
            sources.extend(uses.iter().map(|h| chunk_source(h, format!("uses `{ident}`"))));
        }
        let words = keywords(&q.text);
        let keep = |c: &CommitHit| when(c) && c.files.iter().any(|f| in_path(&f.path));
        let commits = index.search_commits(&words, 4, &keep).map_err(Error::index)?;
        sources.extend(commits.iter().map(|(_, c)| commit_source(c, q.path.as_deref())));
        let code = index.search_chunks(&words, 3, &|h| in_path(&h.path)).map_err(Error::index)?;
        sources.extend(code.iter().map(|h| chunk_source(h, "matches the question's words".into())));
        let mut seen = Vec::new();
        sources.retain(|s| {
            let new = !seen.contains(&s.citation);
            seen.push(s.citation.clone());
            new
        });
        sources.truncate(MAX_SOURCES);
        Ok((sources, missing))
    }

    /// Answers `q` from the sources the index holds; `written` follows the answer as the
    /// model writes it and `cancelled` stops it.
    pub fn ask(
        &self,
        q: &Question,
        written: Option<Arc<Mutex<String>>>,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Asked> {
        let (sources, missing) = self.sources_for(q)?;
        let root = self.root().display();
        let not_found = if !missing.is_empty() {
            let names: Vec<String> = missing.iter().map(|n| format!("`{n}`")).collect();
            Some(format!("Not found: {} is nowhere in the index of {root}.", names.join(", ")))
        } else if sources.is_empty() {
            Some(format!("Not found: nothing in the index of {root} matches the question."))
        } else {
            None
        };
        if not_found.is_some() {
            return Ok(Asked { sources, answer: None, note: not_found });
        }
        let g = self.load_model()?;
        let answer = answer(g.as_ref(), &q.text, &sources, written, cancelled);
        let note = answer.is_none().then(|| {
            "The model wrote no whole sentence from these sources; read them instead.".to_string()
        });
        Ok(Asked { sources, answer, note })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_what_the_question_spells_like_code() {
        let q = "Where is `fuse` defined, and who calls fetch_value or Store::put or camelCase?";
        assert_eq!(names_in(q), ["fuse", "fetch_value", "Store::put", "camelCase"]);
        assert!(names_in("What changed in the payment service this quarter?").is_empty());
        assert_eq!(last_identifier("Store::put"), "put");
        assert_eq!(last_identifier("self.items"), "items");
        assert!(
            is_path("src/fuse.rs")
                && is_path("main.go")
                && !is_path("self.items")
                && !is_path("Store::put")
        );
    }

    #[test]
    fn question_words_are_not_searched() {
        assert_eq!(keywords("Why did the retry timeout change?"), "retry timeout");
        let q = "Why did `src/lib.rs` and fetch_value change in March 2025?";
        assert_eq!(keywords(q), "", "names are looked up, the month is a window");
    }
}
