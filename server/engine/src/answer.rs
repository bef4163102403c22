//! Answers in prose from numbered sources: the sources go to the model in its chat format,
//! the answer cites them as `[n]`, markers that point at no source in the prompt are
//! dropped, and the text ends on a whole sentence.

use patois_generate::{Backend, ChatMessage, GenOptions, Mode, ModelFormat, Role, StopReason};
use patois_retrieve::Citation;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// One source an answer may cite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnswerSource {
    pub citation: Citation,
    /// What it is ("function fuse", "last changed these lines: …").
    pub label: String,
    /// The code or the commit message the model reads.
    pub text: String,
}

/// A model's answer and what it cites.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// The text; `[n]` marks the n-th source (1-based) as the origin of a claim.
    pub text: String,
    /// The numbers of the sources the text cites, each once, in order of first citation.
    pub cited: Vec<usize>,
    /// The numbers the model cited itself (the rest of `cited` patois added, see
    /// `attributed`).
    pub by_model: Vec<usize>,
    /// How many sources the prompt held (the first ones given): only those can be cited.
    pub in_prompt: usize,
    /// Markers the model wrote that pointed at no source in the prompt (dropped).
    pub dropped: usize,
    /// Markers patois added to sentences the model left without one, a marker per clause
    /// tied to the source sharing its names (those markers are patois's, not the model's,
    /// and are followed by [`ADDED`] in the text).
    pub attributed: usize,
    /// The model that wrote it.
    pub model: String,
}

/// How the model is asked to answer.
const SYSTEM: &str = "You are a senior engineer on this codebase, answering a colleague. \
Use only the numbered sources below. End each sentence with [n], the number of the source \
it comes from. Answer in two to four complete sentences. If the sources do not answer the \
question, say so.";

/// The most tokens an answer may take: about four sentences.
const ANSWER_TOKENS: usize = 200;
/// Lines of one source the model reads.
const SOURCE_LINES: usize = 20;
/// The most prompt tokens an answer reads: about 5 s of prefill on two laptop cores
/// (15 s on the slowest class measured), while the answer streams after it.
const PROMPT_TOKENS: usize = 1536;

/// The sources as the model reads them: numbered, each with its citation.
fn sources_text(sources: &[AnswerSource]) -> String {
    let mut out = String::new();
    for (i, s) in sources.iter().enumerate() {
        let text: Vec<&str> = s.text.lines().take(SOURCE_LINES).collect();
        out.push_str(&format!("[{}] {} ({})\n{}\n\n", i + 1, s.label, s.citation, text.join("\n")));
    }
    out
}

/// How many of `sources`, the first ones, fit in `tokens` prompt tokens with the
/// question (counted in the model's chat format), and the messages with those.
fn sources_that_fit(
    g: &dyn Backend,
    question: &str,
    sources: &[AnswerSource],
    tokens: usize,
) -> (usize, Vec<ChatMessage>) {
    let mut n = sources.len();
    loop {
        let messages = messages_of(question, &sources[..n]);
        if n == 0 || g.count(&g.chat_prompt(&messages)) <= tokens {
            return (n, messages);
        }
        n -= 1;
    }
}

fn messages_of(question: &str, sources: &[AnswerSource]) -> Vec<ChatMessage> {
    let user = format!("Sources:\n\n{}Question: {question}", sources_text(sources));
    vec![ChatMessage::new(Role::System, SYSTEM), ChatMessage::new(Role::User, user)]
}

/// Asks `g` to answer `question` from `sources`; `written` follows the text as it is
/// written, `cancelled` stops it. `None` when the model wrote no whole sentence.
pub(crate) fn answer(
    g: &dyn Backend,
    question: &str,
    sources: &[AnswerSource],
    written: Option<Arc<Mutex<String>>>,
    cancelled: &dyn Fn() -> bool,
) -> Option<Answer> {
    let room = g.info().context.saturating_sub(ANSWER_TOKENS + 1).min(PROMPT_TOKENS);
    let (in_prompt, messages) = sources_that_fit(g, question, sources, room);
    let opts =
        GenOptions { max_tokens: ANSWER_TOKENS, mode: Mode::Prose, written, ..Default::default() };
    let c = g.chat(&messages, &opts, cancelled).ok()?;
    if c.stop == StopReason::Cancelled {
        return None;
    }
    let (text, _, dropped) = keep_real_citations(&c.text, in_prompt);
    let text = cite_named_commits(whole_sentences(&text)?, &sources[..in_prompt]);
    let (_, by_model, _) = keep_real_citations(&text, in_prompt);
    let (text, attributed) = attribute(&text, &sources[..in_prompt]);
    let (text, cited, _) = keep_real_citations(&text, in_prompt);
    Some(Answer { text, cited, by_model, in_prompt, dropped, attributed, model: model_name(g) })
}

/// The model as an answer names it: its file, or the served model and the server.
fn model_name(g: &dyn Backend) -> String {
    let info = g.info();
    match info.format {
        ModelFormat::Remote => format!("{} at {}", info.arch, info.path.display()),
        _ => info
            .path
            .file_name()
            .map_or_else(|| info.path.display().to_string(), |f| f.to_string_lossy().into_owned()),
    }
}

/// The numbers inside a citation marker: `[2]`, `[1, 3]`; `None` for any other brackets.
fn marker_numbers(inside: &str) -> Option<Vec<usize>> {
    inside.split(',').map(|n| n.trim().parse().ok()).collect()
}

/// `text` without the markers that point at no source (0, or past `sources`), lists
/// written as single markers (`[1, 3]` → `[1][3]`); the numbers cited in order; how many
/// markers were dropped.
pub fn keep_real_citations(text: &str, sources: usize) -> (String, Vec<usize>, usize) {
    let mut out = String::new();
    let mut cited = Vec::new();
    let mut dropped = 0;
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']').map(|i| open + i) else { break };
        // After a name it is indexing (`x[0]`), not a marker.
        let prev = rest[..open].chars().last().or_else(|| out.chars().last());
        let indexing = prev.is_some_and(|c| c.is_alphanumeric() || c == '_');
        let numbers = (!indexing).then(|| marker_numbers(&rest[open + 1..close])).flatten();
        let Some(numbers) = numbers else {
            out.push_str(&rest[..=open]);
            rest = &rest[open + 1..];
            continue;
        };
        let count = numbers.len();
        let real: Vec<usize> = numbers.into_iter().filter(|n| (1..=sources).contains(n)).collect();
        dropped += count - real.len();
        let before = &rest[..open];
        // A dropped marker takes the space before it along.
        out.push_str(if real.is_empty() { before.trim_end_matches(' ') } else { before });
        for n in real {
            out.push_str(&format!("[{n}]"));
            if !cited.contains(&n) {
                cited.push(n);
            }
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    (out, cited, dropped)
}

/// `text` up to the end of its last whole sentence (a `.`, `!` or `?` followed by a space,
/// a line break or the end, a citation marker after it included); `None` without one.
pub fn whole_sentences(text: &str) -> Option<&str> {
    let text = text.trim();
    let mut end = None;
    while let Some(e) = sentence_end(&text[end.unwrap_or(0)..]) {
        end = Some(end.unwrap_or(0) + e);
    }
    end.map(|e| &text[..e])
}

/// Words too common in answers about code to tie a sentence to a source.
const COMMON: &[&str] = &[
    "this", "that", "with", "from", "which", "have", "were", "when", "used", "uses", "function",
    "code", "file", "files", "change", "changes", "changed", "value", "values", "return",
    "returns", "there", "their", "they", "into", "also", "more", "than", "then", "been", "does",
    "each", "make", "makes", "only", "other", "some", "such", "will", "would", "should", "could",
    "source", "sources", "version", "because", "about",
];

/// The words of `text` that can tie a sentence to a source: 4 or more characters (names,
/// paths, identifiers), not common in answers about code, words of letters only by their
/// [`stem`].
fn telling_words(text: &str) -> HashSet<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.chars().count() >= 4)
        .map(str::to_lowercase)
        .filter(|w| !COMMON.contains(&w.as_str()))
        .map(|w| stem(&w).to_string())
        .collect()
}

/// Endings taken off a word of letters so that the forms of one word meet ("defined",
/// "defines", "definition": "defin").
const ENDINGS: &[&str] = &["ition", "ing", "ed", "es", "s"];

/// `word` without the first of [`ENDINGS`] it ends with, where 4 letters or more remain;
/// names with digits or underscores stay whole.
fn stem(word: &str) -> &str {
    if !word.bytes().all(|b| b.is_ascii_lowercase()) {
        return word;
    }
    ENDINGS.iter().find_map(|e| word.strip_suffix(e).filter(|rest| rest.len() >= 4)).unwrap_or(word)
}

/// What follows a marker patois added (the model did not write it), in the text as shown.
pub const ADDED: &str = "†";

/// The shortest commit id prefix taken as naming a commit.
const COMMIT_ID_MIN: usize = 7;

/// The source whose commit `word` names (a hex prefix of at least [`COMMIT_ID_MIN`]
/// characters of its id), numbered from 1.
fn named_commit(word: &str, sources: &[AnswerSource]) -> Option<usize> {
    let hex = word.len() >= COMMIT_ID_MIN && word.chars().all(|c| c.is_ascii_hexdigit());
    let names =
        |s: &AnswerSource| s.citation.commit.as_deref().is_some_and(|id| id.starts_with(word));
    hex.then(|| sources.iter().position(names).map(|i| i + 1)).flatten()
}

/// Sentences without a marker that name a source's commit by its id (the model's way of
/// citing it, "in commit 4bb03cd681", at times in brackets) get that source's marker
/// before their full stop, as the model's own citation; brackets around the id go.
fn cite_named_commits(text: &str, sources: &[AnswerSource]) -> String {
    let cite = |sentence: &str| {
        let mut words = sentence.split(|c: char| !c.is_ascii_alphanumeric());
        let n = words.find_map(|w| named_commit(w, sources)).filter(|_| !has_marker(sentence))?;
        let id = |w: &str| named_commit(w, sources).is_some();
        with_markers(&unbracket(sentence, &id), &format!("[{n}]"))
    };
    sentences(text).map(|s| cite(s).unwrap_or_else(|| s.to_string())).collect()
}

/// `text` with brackets taken off the words `is_id` accepts: `[4bb03cd681]` → `4bb03cd681`.
fn unbracket(text: &str, is_id: &dyn Fn(&str) -> bool) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let inside = rest[open + 1..].find(']').map(|close| &rest[open + 1..open + 1 + close]);
        out.push_str(&rest[..open]);
        match inside.filter(|w| is_id(w)) {
            Some(w) => {
                out.push_str(w);
                rest = &rest[open + w.len() + 2..];
            }
            None => {
                out.push('[');
                rest = &rest[open + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether `sentence` holds a citation marker (`[2]`).
fn has_marker(sentence: &str) -> bool {
    !keep_real_citations(sentence, usize::MAX).1.is_empty()
}

/// The one source (numbered from 1) that shares at least two of the telling words `said`
/// and, weighing each word by how few sources hold it (a word every source holds tells
/// none of them apart), shares more than any other.
fn best_source(said: &HashSet<String>, words: &[HashSet<String>]) -> Option<usize> {
    let holders = |w: &String| words.iter().filter(|s| s.contains(w)).count() as f64;
    let n = words.len() as f64;
    let mut scored: Vec<(f64, usize, usize)> = words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let shared: Vec<&String> = w.intersection(said).collect();
            let weight = shared.iter().map(|w| ((n + 1.0) / holders(w)).ln()).sum();
            (weight, shared.len(), i + 1)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (best, count, number) = *scored.first()?;
    let unique = scored.get(1).is_none_or(|second| second.0 < best - 1e-9);
    (count >= 2 && unique).then_some(number)
}

/// Where a sentence's claims part: "X is defined in a.rs, and b.rs calls it".
const CLAUSE_BREAKS: &[&str] = &[", and ", "; ", ", while ", ", but ", ", which "];

/// The sources a sentence comes from: for each of its clauses the one [`best_source`]
/// picks, else the one it picks for the whole sentence.
fn sources_of(sentence: &str, words: &[HashSet<String>]) -> Vec<usize> {
    let mut clauses = vec![sentence];
    for cut in CLAUSE_BREAKS {
        clauses = clauses.iter().flat_map(|c| c.split(cut)).collect();
    }
    let mut found: Vec<usize> = Vec::new();
    for n in clauses.iter().filter_map(|c| best_source(&telling_words(c), words)) {
        if !found.contains(&n) {
            found.push(n);
        }
    }
    if found.is_empty() && clauses.len() > 1 {
        found.extend(best_source(&telling_words(sentence), words));
    }
    found
}

/// Sentences of `text` without a marker, each tied to the sources [`sources_of`] picks
/// (read with the path each was cited at, as the model read them): the markers, each
/// followed by [`ADDED`], go before the sentence's full stop. Returns the text and how
/// many markers were added.
fn attribute(text: &str, sources: &[AnswerSource]) -> (String, usize) {
    let words: Vec<_> = sources
        .iter()
        .map(|s| telling_words(&format!("{} {} {}", s.label, s.citation.path, s.text)))
        .collect();
    let mut out = String::new();
    let mut added = 0;
    for sentence in sentences(text) {
        let found = sources_of(sentence, &words);
        let markers: String = found.iter().map(|n| format!("[{n}]{ADDED}")).collect();
        let unmarked = !found.is_empty() && !sentence.contains('[');
        match with_markers(sentence, &markers).filter(|_| unmarked) {
            Some(marked) => {
                out.push_str(&marked);
                added += found.len();
            }
            None => out.push_str(sentence),
        }
    }
    (out, added)
}

/// The sentences of `text` in order (see [`sentence_end`]); the last may be unfinished.
fn sentences(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let end = sentence_end(rest).unwrap_or(rest.len());
        let (sentence, after) = rest.split_at(end);
        rest = after;
        (!sentence.is_empty()).then_some(sentence)
    })
}

/// `sentence` with `markers` before its final `.`, `!` or `?`; `None` when it ends on none.
fn with_markers(sentence: &str, markers: &str) -> Option<String> {
    let body = sentence.strip_suffix(['.', '!', '?'])?;
    Some(format!("{body} {markers}{}", &sentence[body.len()..]))
}

/// Where the first sentence of `text` ends: after its `.`, `!` or `?` and the markers
/// that follow it, where a space, a line break or the end comes; `None` without one.
fn sentence_end(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    for (i, c) in b.iter().enumerate() {
        if !matches!(c, b'.' | b'!' | b'?') || is_list_number(&text[..i]) {
            continue;
        }
        let mut j = i + 1;
        // Markers after the full stop belong to the sentence: "… here.[2] Next".
        while b.get(j) == Some(&b'[') {
            match text[j..].find(']') {
                Some(k) if marker_numbers(&text[j + 1..j + k]).is_some() => j += k + 1,
                _ => break,
            }
        }
        if b.get(j).is_none_or(|c| c.is_ascii_whitespace()) {
            return Some(j);
        }
    }
    None
}

/// Whether the line `before` ends is a list item's number so far (`5` of "5."): its full
/// stop ends no sentence.
fn is_list_number(before: &str) -> bool {
    let line = before.rsplit('\n').next().unwrap_or("").trim_start();
    !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit())
}

/// `answer`'s text with each `[n]` a Markdown link to the n-th source under `root`.
pub fn linked(answer: &Answer, sources: &[Citation], root: &Path) -> String {
    let mut text = answer.text.clone();
    for n in &answer.cited {
        let Some(c) = sources.get(n - 1) else { continue };
        let link = format!("[[{n}]]({}#L{})", root.join(&c.path).display(), c.start_line);
        text = text.replace(&format!("[{n}]"), &link);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invented_marker_is_dropped_and_lists_are_split() {
        let (t, cited, dropped) =
            keep_real_citations("It fuses ranks [2]. It is old [9]. See [1, 3].", 3);
        assert_eq!(t, "It fuses ranks [2]. It is old. See [1][3].");
        assert_eq!((cited, dropped), (vec![2, 1, 3], 1));
        let (t, cited, dropped) = keep_real_citations("v[i] = x[0] [0]", 3);
        assert_eq!(t, "v[i] = x[0]", "indexing is not a marker; [0] is no source");
        assert!(cited.is_empty() && dropped == 1);
    }

    #[test]
    fn an_answer_ends_on_a_whole_sentence() {
        assert_eq!(
            whole_sentences("It reads fuse.rs first. Then it"),
            Some("It reads fuse.rs first.")
        );
        assert_eq!(whole_sentences("Ranks are fused [1].[2] It"), Some("Ranks are fused [1].[2]"));
        assert_eq!(whole_sentences("Done! Really?\n"), Some("Done! Really?"));
        assert_eq!(whole_sentences("It processes the data by analyzing"), None);
        assert_eq!(
            whole_sentences("Changes:\n1. It reads fuse.rs first.\n2."),
            Some("Changes:\n1. It reads fuse.rs first."),
            "a list item's number ends no sentence"
        );
    }

    #[test]
    fn a_sentence_without_a_marker_is_tied_to_the_one_source_that_shares_its_names() {
        let src = |label: &str, text: &str| AnswerSource {
            citation: Citation {
                path: "a.rs".into(),
                start_line: 1,
                end_line: 2,
                commit: None,
                pr: None,
            },
            label: label.into(),
            text: text.into(),
        };
        let sources = [
            src("definition of `fuse`", "pub fn fuse(ranks: &[Rank]) -> Vec<Item>"),
            src("commit abc", "Weigh recent edits higher in fusion"),
        ];
        let (t, n) = attribute(
            "It calls fuse on the ranks. Recent edits weigh higher in fusion [2]. It is fast.",
            &sources,
        );
        assert_eq!(
            t,
            "It calls fuse on the ranks [1]†. Recent edits weigh higher in fusion [2]. It is fast."
        );
        assert_eq!(n, 1, "a marked sentence keeps its marker; one sharing nothing gets none");
    }

    #[test]
    fn a_word_every_source_holds_tells_none_apart() {
        let words = |text: &str| telling_words(text);
        let sources = [
            words("definition of `has_left` (method) in either_or_both"),
            words("uses `has_left` in either_or_both"),
        ];
        let said = words("The has_left method is defined in either_or_both.");
        assert_eq!(best_source(&said, &sources), Some(1), "only the first says method");
        let said = words("It defines has_left in either_or_both.");
        assert_eq!(best_source(&said, &sources), Some(1), "defines, definition: one word");
        let said = words("The has_left check is in either_or_both.");
        assert_eq!(best_source(&said, &sources), None, "both share the same names");
    }

    #[test]
    fn a_sentence_naming_a_commit_by_its_id_cites_that_commit() {
        let commit = |id: &str| AnswerSource {
            citation: Citation {
                path: "a.rs".into(),
                start_line: 1,
                end_line: 1,
                commit: Some(id.into()),
                pr: None,
            },
            label: format!("commit {id}"),
            text: "Remove deprecated code".into(),
        };
        let sources = [commit("31f46a3469aa"), commit("4bb03cd681bb")];
        let text = "It changed in commit [4bb03cd681]. It was old [1]. Commit 4bb03cd is 1234567.";
        assert_eq!(
            cite_named_commits(text, &sources),
            "It changed in commit 4bb03cd681 [2]. It was old [1]. Commit 4bb03cd is 1234567 [2]."
        );
    }

    #[test]
    fn markers_link_to_their_sources() {
        let c = |path: &str| Citation {
            path: path.into(),
            start_line: 7,
            end_line: 9,
            commit: None,
            pr: None,
        };
        let a = Answer {
            text: "Fuses [2].".into(),
            cited: vec![2],
            by_model: vec![2],
            in_prompt: 2,
            dropped: 0,
            attributed: 0,
            model: "m".into(),
        };
        let md = linked(&a, &[c("a.rs"), c("b.rs")], Path::new("/r"));
        assert_eq!(md, "Fuses [[2]](/r/b.rs#L7).");
    }
}
