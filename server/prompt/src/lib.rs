//! Prompts: retrieved context rendered as comments with `Path:` citations, then
//! the document around the cursor in the model family's fill-in-the-middle
//! template, clipped to the model's context on token boundaries.

pub use patois_types::{Chars, FimOrder, FimStyle, Tokens};
use patois_types::{Citation, Item, Source};
use serde::{Deserialize, Serialize};

/// What a prompt is built from.
pub struct Input<'a> {
    /// Repository-relative path of the document.
    pub path: &'a str,
    /// Line comment marker of the document's language (`//`, `#`).
    pub comment: &'a str,
    pub prefix: &'a str,
    pub suffix: &'a str,
    /// Retrieved context, best first.
    pub items: &'a [Item],
}

/// Token limits for the parts of a prompt.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The whole prompt.
    pub total: usize,
    /// At most this much of `total` goes to the prefix.
    pub prefix: usize,
    /// At most this much to the suffix.
    pub suffix: usize,
    /// When the context is sized, the lines above the cursor's count as a multiple of this
    /// many tokens, or as all the prefix may hold once it is clipped (1: as they are): the
    /// next lines written then leave the same items in, and the prompt's start cached.
    pub above_step: usize,
    /// Where the suffix goes.
    pub order: FimOrder,
}

impl Limits {
    /// Splits a context window: prefix up to half, suffix up to a sixteenth (at most 64
    /// tokens: in prefix-suffix-middle order the suffix is computed again after every
    /// keystroke), context the rest.
    pub fn for_window(total: usize) -> Limits {
        let suffix = (total / 16).min(64);
        Limits { total, prefix: total / 2, suffix, above_step: 1, order: FimOrder::PrefixFirst }
    }
}

/// A built prompt and what it contains.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Prompt {
    pub text: String,
    /// The items that made it in, in prompt order.
    pub citations: Vec<Citation>,
    pub prefix_tokens: usize,
    pub suffix_tokens: usize,
    pub context_tokens: usize,
    /// Bytes of the document prefix dropped from the start to fit.
    pub prefix_clipped: usize,
    /// How much of `text` typing on the cursor's line leaves as it is: everything before
    /// that line (the context and the lines above), in bytes.
    pub stable: usize,
}

fn comment_block(comment: &str, text: &str) -> String {
    let mut out = String::new();
    for l in text.lines() {
        out.push_str(comment);
        if !l.is_empty() {
            out.push(' ');
            out.push_str(l);
        }
        out.push('\n');
    }
    out
}

/// The header line for an item: `Path: src/a.rs:3-9` plus the commit and PR for history.
pub fn header(it: &Item) -> String {
    let c = &it.citation;
    match (it.source, &c.commit) {
        (Source::History, Some(id)) => {
            let pr = c.pr.map(|p| format!(" (#{p})")).unwrap_or_default();
            format!("Commit {}{pr} touching {}: {}", &id[..id.len().min(10)], c.path, it.title)
        }
        (Source::Edit, _) => format!("Recent edit: {}:{} (edited)", c.path, c.start_line),
        _ => format!("Path: {}:{}-{}", c.path, c.start_line, c.end_line),
    }
}

/// Renders one context item as a comment block.
pub fn render_item(comment: &str, it: &Item) -> String {
    comment_block(comment, &format!("{}\n{}", header(it), it.text))
}

/// Tokens set aside for the cursor's line and the suffix when the context is sized (more
/// when they take more): while the user types on the line the same items fit, so the
/// prompt's start, and the model's cache of it, stay.
const LINE_RESERVE: usize = 64;

/// Lines per step of the prefix cut.
const CUT_STEP_LINES: usize = 16;

/// Where a clipped prefix starts: the first start of a line whose number is a multiple of
/// [`CUT_STEP_LINES`] at or after `min_cut` (else the first line start after it). While
/// the user types, the cut stays put for many lines, so the prompt's beginning, and the
/// model's cache of it, survive.
fn stable_cut(prefix: &str, min_cut: usize) -> usize {
    if min_cut == 0 {
        return 0;
    }
    let starts = std::iter::once(0).chain(prefix.match_indices('\n').map(|(i, _)| i + 1));
    let mut kept = starts.enumerate().skip_while(|(_, start)| *start < min_cut).peekable();
    let Some(&(_, first)) = kept.peek() else { return prefix.len() };
    // A step line within 2,000 bytes of the first possible cut, else that cut.
    kept.take_while(|(_, start)| start - first < 2000)
        .find(|(line, _)| line % CUT_STEP_LINES == 0)
        .map_or(first, |(_, start)| start)
}

/// Bytes per token assumed when only one end of a long text is tokenized: code averages 3
/// to 4, so that end holds the tokens wanted unless the text is unusual, and then the
/// whole text is tokenized. A document of thousands of lines is not tokenized whole for
/// every keystroke.
const BYTES_PER_TOKEN: usize = 8;

/// Token offsets (in `text`) of at least its last `want` tokens, or of all of it.
fn tail_offsets(tok: &dyn Tokens, text: &str, want: usize) -> Vec<(usize, usize)> {
    let mut from =
        text.floor_char_boundary(text.len().saturating_sub(want.saturating_mul(BYTES_PER_TOKEN)));
    // From a line start: the text is tokenized as it is in the whole.
    match text[from..].find('\n') {
        Some(i) if from > 0 => from += i + 1,
        _ => from = 0,
    }
    let offsets = tok.offsets(&text[from..]);
    if from > 0 && offsets.len() < want {
        return tok.offsets(text);
    }
    offsets.into_iter().map(|(a, b)| (a + from, b + from)).collect()
}

/// Token offsets of at least the first `want` tokens of `text`, or of all of it.
fn head_offsets(tok: &dyn Tokens, text: &str, want: usize) -> Vec<(usize, usize)> {
    let to = text.floor_char_boundary(want.saturating_mul(BYTES_PER_TOKEN));
    let Some(end) = text.get(to..).and_then(|rest| rest.find('\n')).map(|i| to + i + 1) else {
        return tok.offsets(text);
    };
    let offsets = tok.offsets(&text[..end]);
    if offsets.len() < want {
        return tok.offsets(text);
    }
    offsets
}

/// Builds the prompt: the suffix head and prefix tail are cut on token boundaries
/// (the prefix at a line start where possible), context items are added whole, best
/// first, while they fit.
pub fn build(style: FimStyle, input: &Input, limits: Limits, tok: &dyn Tokens) -> Prompt {
    let head = comment_block(input.comment, &format!("Path: {}", input.path));
    let overhead = tok.count(&style.render_in(limits.order, "", "")) + tok.count(&head);
    let room = limits.total.saturating_sub(overhead);
    // Suffix: its first tokens.
    let suffix = if style == FimStyle::PrefixOnly { "" } else { input.suffix };
    let s_want = limits.suffix.min(room / 4);
    let s_off = head_offsets(tok, suffix, s_want + 1);
    let s_keep = s_off.len().min(s_want);
    let suffix = if s_keep == s_off.len() {
        suffix
    } else {
        &suffix[..s_off.get(s_keep.wrapping_sub(1)).map(|o| o.1).unwrap_or(0)]
    };
    // Prefix: its last tokens, starting at a line boundary when one is near.
    let p_want =
        limits.prefix.max(room.saturating_sub(s_keep) / 2).min(room.saturating_sub(s_keep));
    let p_off = tail_offsets(tok, input.prefix, p_want + 1);
    let p_keep = p_off.len().min(p_want);
    let min_cut = if p_keep == p_off.len() { 0 } else { p_off[p_off.len() - p_keep].0 };
    let cut = stable_cut(input.prefix, min_cut);
    let prefix = &input.prefix[cut..];
    let prefix_tokens = tok.count(prefix);
    let suffix_tokens = tok.count(suffix);
    // The context gets what the lines above leave, less a reserve for the cursor's line
    // and the suffix: typing on the line does not change which items fit.
    let line_start = patois_types::line_start_at(prefix, prefix.len());
    let line_tokens = tok.count(&prefix[line_start..]);
    let volatile = (line_tokens + suffix_tokens).max(LINE_RESERVE);
    let above = prefix_tokens.saturating_sub(line_tokens);
    let above = match cut {
        0 => above.next_multiple_of(limits.above_step.max(1)).min(p_want).max(above),
        _ => p_want.max(above),
    };
    let mut left = room.saturating_sub(above + volatile);
    let mut context = String::new();
    let mut citations = Vec::new();
    let mut context_tokens = 0;
    for it in input.items {
        let block = render_item(input.comment, it);
        let n = tok.count(&block);
        if n > left {
            continue;
        }
        left -= n;
        context_tokens += n;
        context.push_str(&block);
        citations.push(it.citation.clone());
    }
    let before = style.before_prefix(limits.order, suffix).len();
    let stable = before + context.len() + head.len() + line_start;
    let text = style.render_in(limits.order, &format!("{context}{head}{prefix}"), suffix);
    Prompt {
        text,
        citations,
        prefix_tokens,
        suffix_tokens,
        context_tokens,
        prefix_clipped: cut,
        stable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use patois_types::Score;

    fn item(path: &str, text: &str) -> Item {
        Item {
            source: Source::Definition,
            citation: Citation {
                path: path.into(),
                start_line: 3,
                end_line: 4,
                commit: None,
                pr: None,
            },
            title: "struct Store".into(),
            text: text.into(),
            score: Score { source_rank: 0, source_score: 1.0, fused: 0.1, reason: String::new() },
        }
    }

    #[test]
    fn templates_per_family() {
        assert_eq!(FimStyle::Qwen.render("a", "b"), "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>");
        assert_eq!(FimStyle::StarCoder.render("a", "b"), "<fim_prefix>a<fim_suffix>b<fim_middle>");
        assert_eq!(FimStyle::CodeLlama.render("a", "b"), "<PRE> a <SUF>b <MID>");
        let spm = |style: FimStyle| style.render_in(FimOrder::SuffixFirst, "a", "b");
        assert_eq!(spm(FimStyle::Qwen), "<|fim_prefix|><|fim_suffix|>b<|fim_middle|>a");
        assert_eq!(spm(FimStyle::StarCoder), "<fim_prefix><fim_suffix>b<fim_middle>a");
        assert_eq!(spm(FimStyle::CodeLlama), "<PRE> <SUF>b <MID> a");
        assert_eq!(
            FimStyle::detect(|t| t == "<|fim_prefix|>" || t == "<|fim_middle|>"),
            FimStyle::Qwen
        );
        assert_eq!(FimStyle::detect(|t| t.starts_with("<fim_")), FimStyle::StarCoder);
        assert_eq!(FimStyle::detect(|t| t == "▁<PRE>"), FimStyle::CodeLlama);
        assert_eq!(FimStyle::detect(|_| false), FimStyle::PrefixOnly);
    }

    #[test]
    fn context_is_cited_in_comments_before_the_document() {
        let items = [item("src/store.rs", "pub struct Store;\nimpl Store {}")];
        let input = Input {
            path: "src/main.rs",
            comment: "//",
            prefix: "fn main() {\n    let s = ",
            suffix: "\n}\n",
            items: &items,
        };
        let p = build(FimStyle::Qwen, &input, Limits::for_window(4096), &Chars);
        assert_eq!(
            p.text,
            "<|fim_prefix|>// Path: src/store.rs:3-4\n// pub struct Store;\n// impl Store {}\n// Path: src/main.rs\nfn main() {\n    let s = <|fim_suffix|>\n}\n<|fim_middle|>"
        );
        assert_eq!(p.citations.len(), 1);
    }

    #[test]
    fn the_stable_part_ends_where_the_cursor_line_begins_in_every_style_and_order() {
        let items = [item("src/store.rs", "pub struct Store;")];
        let styles = [FimStyle::Qwen, FimStyle::StarCoder, FimStyle::CodeLlama];
        for (style, order) in styles.iter().flat_map(|s| ORDERS.map(|o| (*s, o))) {
            let at = |prefix| {
                let input =
                    Input { path: "m.rs", comment: "//", prefix, suffix: "\n}", items: &items };
                build(style, &input, Limits { order, ..Limits::for_window(4096) }, &Chars)
            };
            let p = at("fn main() {\n    let s = ");
            let why = format!("{style:?} {order:?}: {:?}", p.text);
            assert!(p.text[..p.stable].ends_with("fn main() {\n"), "{why}");
            assert!(p.text.contains("\n}"), "{why}: the suffix is in");
            let typed_on = at("fn main() {\n    let s = Store");
            assert_eq!(typed_on.text[..typed_on.stable], p.text[..p.stable], "{why}");
        }
    }

    const ORDERS: [FimOrder; 2] = [FimOrder::PrefixFirst, FimOrder::SuffixFirst];

    /// How much of `b` starts as `a` does, in bytes.
    fn shared(a: &str, b: &str) -> usize {
        a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
    }

    #[test]
    fn suffix_first_a_keystroke_changes_only_the_end_of_the_prompt() {
        let at = |order, prefix| {
            let suffix = "\n    s.flush();\n}\n";
            let input = Input { path: "m.rs", comment: "//", prefix, suffix, items: &[] };
            build(FimStyle::Qwen, &input, Limits { order, ..Limits::for_window(4096) }, &Chars)
        };
        let (before, after) = ("fn main() {\n    let s = St", "fn main() {\n    let s = Sto");
        let suffix_first = [at(FimOrder::SuffixFirst, before), at(FimOrder::SuffixFirst, after)];
        assert_eq!(
            suffix_first[0].text,
            "<|fim_prefix|><|fim_suffix|>\n    s.flush();\n}\n<|fim_middle|>// Path: m.rs\nfn main() {\n    let s = St"
        );
        let kept = shared(&suffix_first[0].text, &suffix_first[1].text);
        assert_eq!(&suffix_first[1].text[kept..], "o", "typing appends");
        let prefix_first = [at(FimOrder::PrefixFirst, before), at(FimOrder::PrefixFirst, after)];
        let kept = shared(&prefix_first[0].text, &prefix_first[1].text);
        assert!(prefix_first[1].text[kept..].contains("s.flush()"), "the suffix is read again");
    }

    #[test]
    fn typing_on_the_cursor_line_keeps_the_same_context() {
        // Many small items: without the reserve each typed character could push one out.
        let texts: Vec<String> = (0..40).map(|i| format!("fn item_{i:02}() {{}}")).collect();
        let items: Vec<Item> = texts.iter().map(|t| item("src/items.rs", t)).collect();
        let above: String = (0..8).map(|i| format!("let v{i} = {i};\n")).collect();
        let at = |typed: &str| {
            let prefix = format!("{above}    let s = {typed}");
            let input = Input {
                path: "m.rs",
                comment: "//",
                prefix: &prefix,
                suffix: "\n}",
                items: &items,
            };
            build(
                FimStyle::Qwen,
                &input,
                Limits {
                    total: 700,
                    prefix: 350,
                    suffix: 16,
                    above_step: 1,
                    order: FimOrder::PrefixFirst,
                },
                &Chars,
            )
        };
        let first = at("");
        assert!(!first.citations.is_empty() && first.citations.len() < items.len());
        for n in 1..40 {
            let p = at(&"x".repeat(n));
            assert_eq!(p.text[..p.stable], first.text[..first.stable], "after {n} characters");
        }
    }

    #[test]
    fn writing_the_next_lines_keeps_the_same_context_when_counted_in_steps() {
        let texts: Vec<String> = (0..60).map(|i| format!("fn item_{i:02}() {{}}")).collect();
        let items: Vec<Item> = texts.iter().map(|t| item("src/items.rs", t)).collect();
        let with_lines = |lines: usize, above_step| {
            let prefix: String = (0..lines).map(|i| format!("let v{i:03} = {i};\n")).collect();
            let input =
                Input { path: "m.rs", comment: "//", prefix: &prefix, suffix: "}", items: &items };
            let limits = Limits {
                total: 1200,
                prefix: 600,
                suffix: 16,
                above_step,
                order: FimOrder::PrefixFirst,
            };
            build(FimStyle::Qwen, &input, limits, &Chars).citations
        };
        // Short prefixes (in steps), then clipped ones (as much as the prefix may hold).
        for lines in [3, 60] {
            let first = with_lines(lines, 128);
            assert!(!first.is_empty() && first.len() < items.len());
            for more in 1..6 {
                assert_eq!(with_lines(lines + more, 128), first, "{lines} + {more} lines");
            }
        }
        assert_ne!(with_lines(3, 1), with_lines(8, 1), "counted as they are, they change");
    }

    #[test]
    fn clipping_keeps_the_prefix_tail_and_suffix_head_within_the_limit() {
        let prefix: String = (0..200).map(|i| format!("line {i}\n")).collect();
        let suffix: String = (0..200).map(|i| format!("after {i}\n")).collect();
        let items = [item("a.rs", &"x".repeat(300)), item("b.rs", "short")];
        let input =
            Input { path: "m.rs", comment: "//", prefix: &prefix, suffix: &suffix, items: &items };
        let limits = Limits {
            total: 400,
            prefix: 200,
            suffix: 50,
            above_step: 1,
            order: FimOrder::PrefixFirst,
        };
        let p = build(FimStyle::StarCoder, &input, limits, &Chars);
        assert!(Chars.count(&p.text) <= 400, "{}", Chars.count(&p.text));
        assert!(
            p.text.contains("line 199\n<fim_suffix>after 0\n"),
            "prefix tail and suffix head kept"
        );
        let kept_prefix = &p.text
            [p.text.find("// Path: m.rs\n").unwrap() + 14..p.text.find("<fim_suffix>").unwrap()];
        assert!(kept_prefix.starts_with("line "), "cut at a line start: {kept_prefix:?}");
        assert!(
            p.citations.iter().all(|c| c.path == "b.rs"),
            "the big item does not fit, the small one does"
        );
        assert!(p.prefix_clipped > 0);
    }

    /// Characters as tokens, counting the bytes it was given.
    struct Counting(std::cell::Cell<usize>);
    impl Tokens for Counting {
        fn offsets(&self, text: &str) -> Vec<(usize, usize)> {
            self.0.set(self.0.get() + text.len());
            Chars.offsets(text)
        }
    }

    #[test]
    fn a_long_document_is_tokenized_only_near_the_cursor_for_the_same_prompt() {
        let prefix: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
        let suffix: String = (0..20_000).map(|i| format!("after {i}\n")).collect();
        let input =
            |prefix| Input { path: "m.rs", comment: "//", prefix, suffix: &suffix, items: &[] };
        let counting = Counting(std::cell::Cell::new(0));
        let p = build(FimStyle::Qwen, &input(&prefix), Limits::for_window(512), &counting);
        let seen = counting.0.get();
        assert!(seen < 20_000, "tokenized {seen} bytes of {}", prefix.len() + suffix.len());
        // The same prompt as from the document's last 4,000 lines (a multiple of the cut step).
        let tail = &prefix[prefix.find("line 16000\n").unwrap()..];
        let q = build(FimStyle::Qwen, &input(tail), Limits::for_window(512), &Chars);
        assert_eq!(p.text, q.text);
        assert!(p.text.contains("line 19999\n<|fim_suffix|>after 0\n"));
    }

    #[test]
    fn a_long_document_of_wide_characters_is_cut_between_characters() {
        for pad in 0..3 {
            let text = format!("{}{}\n", "a".repeat(pad), "é".repeat(30_000));
            let doc = format!("{text}{text}");
            let input =
                Input { path: "m.rs", comment: "//", prefix: &doc, suffix: &doc, items: &[] };
            let p = build(FimStyle::Qwen, &input, Limits::for_window(512), &Chars);
            assert!(p.text.len() < doc.len(), "cut at {pad}");
            let n = tail_offsets(&Chars, &doc, 100).len();
            assert!(n >= 100, "at least the tokens wanted: {n}");
        }
    }

    #[test]
    fn the_prefix_cut_moves_in_steps_of_lines_so_the_prompt_start_is_stable() {
        let prefix: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let start_of = |n: usize| prefix.match_indices('\n').nth(n - 1).unwrap().0 + 1;
        assert_eq!(stable_cut(&prefix, 0), 0);
        assert_eq!(stable_cut(&prefix, start_of(20)), start_of(32));
        assert_eq!(stable_cut(&prefix, start_of(25) + 3), start_of(32), "same cut a few lines on");
        assert_eq!(stable_cut(&prefix, start_of(33)), start_of(48));
        assert_eq!(stable_cut(&prefix, start_of(99) + 2), prefix.len(), "nothing left to keep");
    }
}
