//! The vocabulary the crates share, with no dependencies of its own: context items and
//! their citations (retrieval → prompt → engine → editors), fill-in-the-middle templates
//! and token counting (prompt ↔ generation). A decoder that needs a `FimStyle` does not
//! pull in the index.

use serde::{Deserialize, Serialize};

/// Byte offset of the start of the line that holds byte `at` of `text` (the cursor's line).
pub fn line_start_at(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |i| i + 1)
}

/// Where an item came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Definition,
    Similar,
    Recent,
    History,
    /// The user's recent edits, as diff hunks.
    Edit,
    /// Tests that call the function at the cursor.
    Test,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Definition => "definition",
            Source::Similar => "similar",
            Source::Recent => "recent",
            Source::History => "history",
            Source::Edit => "edit",
            Source::Test => "test",
        }
    }
}

/// Where an item can be checked: a file's lines, and the commit for history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Citation {
    pub path: String,
    /// 1-based, inclusive.
    pub start_line: u32,
    pub end_line: u32,
    pub commit: Option<String>,
    pub pr: Option<u64>,
}

impl Citation {
    /// Lines `start_line..=end_line` of `path` as they are now (no commit).
    pub fn lines(path: &str, start_line: u32, end_line: u32) -> Citation {
        Citation { path: path.to_string(), start_line, end_line, commit: None, pr: None }
    }
}

impl std::fmt::Display for Citation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}-{}", self.path, self.start_line, self.end_line)?;
        if let Some(c) = &self.commit {
            write!(f, " @{}", &c[..c.len().min(10)])?;
        }
        if let Some(pr) = self.pr {
            write!(f, " (#{pr})")?;
        }
        Ok(())
    }
}

/// Why an item ranks where it does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// 0-based rank within its source.
    pub source_rank: usize,
    /// The source's own score (BM25 for similar code; a heuristic weight elsewhere).
    pub source_score: f32,
    /// The fused score: weight / (k + rank).
    pub fused: f32,
    /// What made the source pick it: `receiver type of db`, `imported from crate::store`, ...
    pub reason: String,
}

/// One piece of context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub source: Source,
    pub citation: Citation,
    /// A symbol name, commit summary, or file name.
    pub title: String,
    pub text: String,
    pub score: Score,
}

/// Where the document's two sides go in a fill-in-the-middle prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FimOrder {
    /// Prefix, suffix, middle: a keystroke changes the prefix, so the model reads the
    /// suffix after it again.
    #[default]
    PrefixFirst,
    /// Suffix, prefix, middle, written as the fill-in-the-middle paper's SPM mode (the
    /// middle tag before the prefix, which the middle continues): typing only appends to
    /// what the model has read.
    SuffixFirst,
}

/// Fill-in-the-middle templates of the model families patois knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FimStyle {
    /// Qwen2.5-Coder: `<|fim_prefix|>…<|fim_suffix|>…<|fim_middle|>`.
    Qwen,
    /// StarCoder / StarCoder2: `<fim_prefix>…<fim_suffix>…<fim_middle>`.
    StarCoder,
    /// CodeLlama: `<PRE> … <SUF>… <MID>`.
    CodeLlama,
    /// No FIM tokens: the prefix alone (the suffix is dropped).
    PrefixOnly,
}

impl FimStyle {
    /// The style whose special tokens the tokenizer has; `PrefixOnly` when none.
    pub fn detect(has_token: impl Fn(&str) -> bool) -> FimStyle {
        if has_token("<|fim_prefix|>") && has_token("<|fim_middle|>") {
            FimStyle::Qwen
        } else if has_token("<fim_prefix>") && has_token("<fim_middle>") {
            FimStyle::StarCoder
        } else if has_token("▁<PRE>") || has_token("<PRE>") {
            FimStyle::CodeLlama
        } else {
            FimStyle::PrefixOnly
        }
    }

    /// What [`FimStyle::render_in`] writes before the prefix.
    pub fn before_prefix(self, order: FimOrder, suffix: &str) -> String {
        match (order, self) {
            (_, FimStyle::PrefixOnly) => String::new(),
            (FimOrder::PrefixFirst, FimStyle::Qwen) => "<|fim_prefix|>".into(),
            (FimOrder::PrefixFirst, FimStyle::StarCoder) => "<fim_prefix>".into(),
            (FimOrder::PrefixFirst, FimStyle::CodeLlama) => "<PRE> ".into(),
            (FimOrder::SuffixFirst, FimStyle::Qwen) => {
                format!("<|fim_prefix|><|fim_suffix|>{suffix}<|fim_middle|>")
            }
            (FimOrder::SuffixFirst, FimStyle::StarCoder) => {
                format!("<fim_prefix><fim_suffix>{suffix}<fim_middle>")
            }
            (FimOrder::SuffixFirst, FimStyle::CodeLlama) => format!("<PRE> <SUF>{suffix} <MID> "),
        }
    }

    /// Wraps `prefix` and `suffix` in the template, prefix first.
    pub fn render(self, prefix: &str, suffix: &str) -> String {
        self.render_in(FimOrder::PrefixFirst, prefix, suffix)
    }

    /// What follows the prefix in `order`: the suffix and the middle marker prefix first,
    /// nothing suffix first (the middle continues the prefix directly; for Qwen this layout
    /// was chosen by the quality benchmark).
    pub fn after_prefix(self, order: FimOrder, suffix: &str) -> String {
        match (order, self) {
            (_, FimStyle::PrefixOnly) | (FimOrder::SuffixFirst, _) => String::new(),
            (FimOrder::PrefixFirst, FimStyle::Qwen) => {
                format!("<|fim_suffix|>{suffix}<|fim_middle|>")
            }
            (FimOrder::PrefixFirst, FimStyle::StarCoder) => {
                format!("<fim_suffix>{suffix}<fim_middle>")
            }
            (FimOrder::PrefixFirst, FimStyle::CodeLlama) => format!(" <SUF>{suffix} <MID>"),
        }
    }

    /// Wraps `prefix` and `suffix` in the template, in `order`.
    pub fn render_in(self, order: FimOrder, prefix: &str, suffix: &str) -> String {
        let before = self.before_prefix(order, suffix);
        let after = self.after_prefix(order, suffix);
        format!("{before}{prefix}{after}")
    }

    /// Tokens that end a middle.
    pub fn stop_tokens(self) -> &'static [&'static str] {
        match self {
            FimStyle::Qwen => &[
                "<|endoftext|>",
                "<|fim_pad|>",
                "<|file_sep|>",
                "<|im_end|>",
                "<|fim_prefix|>",
                "<|fim_suffix|>",
            ],
            FimStyle::StarCoder => &["<|endoftext|>", "<file_sep>", "<fim_prefix>", "<fim_suffix>"],
            FimStyle::CodeLlama => &["<EOT>", "</s>"],
            FimStyle::PrefixOnly => &["<|endoftext|>", "</s>"],
        }
    }
}

/// Token positions of a text: the byte range of each token, in order.
pub trait Tokens {
    fn offsets(&self, text: &str) -> Vec<(usize, usize)>;
    fn count(&self, text: &str) -> usize {
        self.offsets(text).len()
    }
}

/// One token per character, for when no tokenizer is loaded.
pub struct Chars;
impl Tokens for Chars {
    fn offsets(&self, text: &str) -> Vec<(usize, usize)> {
        text.char_indices().map(|(i, c)| (i, i + c.len_utf8())).collect()
    }
}

/// Budget in characters, for when no tokenizer is loaded.
pub fn chars(s: &str) -> usize {
    s.chars().count()
}

/// 1 - Levenshtein distance / longer length, on characters.
pub fn edit_similarity(a: &str, b: &str) -> f64 {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            cur[j] = (prev[j] + 1)
                .min(cur[j - 1] + 1)
                .min(prev[j - 1] + (a[i - 1] != b[j - 1]) as usize);
        }
        prev = cur;
    }
    1.0 - prev[b.len()] as f64 / a.len().max(b.len()) as f64
}

#[cfg(test)]
mod tests {
    #[test]
    fn edit_similarity() {
        assert_eq!(super::edit_similarity("abc", "abc"), 1.0);
        assert_eq!(super::edit_similarity("abc", "abd"), 1.0 - 1.0 / 3.0);
        assert_eq!(super::edit_similarity("", "ab"), 0.0);
    }

    #[test]
    fn line_start_at() {
        let text = "ab\ncd\n";
        assert_eq!(super::line_start_at(text, 1), 0);
        assert_eq!(super::line_start_at(text, 3), 3, "just after a newline: that line's start");
        assert_eq!(super::line_start_at(text, 5), 3);
        assert_eq!(super::line_start_at(text, text.len()), text.len());
    }
}
