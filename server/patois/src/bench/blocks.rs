//! Blocks for `bench typing --blocks`: runs of consecutive lines one commit added to one
//! file, typed one after the other in the same open document, as a person writes new code
//! (Enter between lines, the editor indenting the next one).

use super::complete::added_code;
use anyhow::Result;
use patois_retrieve::line_start;
use patois_vcs::Repo;

/// Blocks shorter than this are not typed; longer ones are typed up to [`MAX_LINES`].
const MIN_LINES: usize = 3;
const MAX_LINES: usize = 8;

/// About how many lines a block has, for how many to take.
const BLOCK_LINES: usize = 4;

/// A run of added lines and the file it goes into.
pub(crate) struct Block {
    pub path: String,
    /// The file as the commit left it without the block's lines, but for one line holding
    /// the first line's indentation, where typing starts.
    pub text: String,
    /// The 0-based row of that line.
    pub row: u32,
    /// Each line: the indentation the editor gives it, and the text the person types.
    pub lines: Vec<(String, String)>,
}

impl Block {
    /// Where the first line's text goes: a byte offset in `text`.
    pub fn cursor(&self) -> usize {
        patois_retrieve::line_start(&self.text, self.row + 1) + self.lines[0].0.len()
    }

    /// The block as the editor would show it written from [`Block::cursor`]: the first
    /// line without its indentation, the others with theirs.
    pub fn written(&self) -> String {
        let mut out = self.lines[0].1.clone();
        for (indent, text) in &self.lines[1..] {
            out.push('\n');
            if !text.is_empty() {
                out.push_str(indent);
                out.push_str(text);
            }
        }
        out
    }

    /// Whether no line is indented less than the first: the block does not close the body
    /// it starts in.
    pub fn stays_inside(&self) -> bool {
        let first = self.lines[0].0.len();
        self.lines.iter().all(|(indent, text)| text.is_empty() || indent.len() >= first)
    }

    /// Lines the person types (blank ones are an Enter only).
    pub fn typed_lines(&self) -> usize {
        self.lines.iter().filter(|(_, t)| !t.is_empty()).count()
    }
}

/// Splits runs of consecutive line numbers out of `lines` (1-based numbers, in order).
fn runs(lines: &[(u32, String)]) -> Vec<&[(u32, String)]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=lines.len() {
        if i == lines.len() || lines[i].0 != lines[i - 1].0 + 1 {
            out.push(&lines[start..i]);
            start = i;
        }
    }
    out
}

/// The block `run` of `text` makes (its first `max_lines` lines), when it is worth typing.
fn block_of(path: &str, text: &str, run: &[(u32, String)], max_lines: usize) -> Option<Block> {
    let mut run = &run[..run.len().min(max_lines)];
    while run.last().is_some_and(|(_, l)| l.trim().is_empty()) {
        run = &run[..run.len() - 1];
    }
    let (first, last) = (run.first()?.0, run.last()?.0);
    if run.len() < MIN_LINES || run[0].1.trim().is_empty() {
        return None;
    }
    let lines: Vec<(String, String)> = run
        .iter()
        .map(|(_, l)| {
            let content = l.trim_start();
            (l[..l.len() - content.len()].to_string(), content.trim_end().to_string())
        })
        .collect();
    let start = line_start(text, first);
    let end = line_start(text, last + 1);
    if end <= start || end > text.len() {
        return None;
    }
    let after = if end == text.len() && !text.ends_with('\n') { "" } else { "\n" };
    let doc = format!("{}{}{after}{}", &text[..start], lines[0].0, &text[end..]);
    Some(Block { path: path.to_string(), text: doc, row: first - 1, lines })
}

/// Every block the commits of `range` added, each cut to `max_lines` lines, in order.
pub(crate) fn all_blocks(repo: &Repo, range: &[String], max_lines: usize) -> Result<Vec<Block>> {
    let mut all = Vec::new();
    for (_, added, text) in added_code(repo, range)? {
        let found = runs(&added.lines)
            .into_iter()
            .filter_map(|r| block_of(&added.path, &text, r, max_lines));
        all.extend(found);
    }
    Ok(all)
}

/// Blocks the commits of `range` added, about `max_lines` typed lines of them spread
/// evenly over the commits, in order.
pub(crate) fn mine_blocks(repo: &Repo, range: &[String], max_lines: usize) -> Result<Vec<Block>> {
    let all = all_blocks(repo, range, MAX_LINES)?;
    let total: usize = all.iter().map(Block::typed_lines).sum();
    let wanted = max_lines.div_ceil(BLOCK_LINES).max(1);
    let step = (all.len() as f64 / wanted as f64).max(1.0);
    let keep: std::collections::HashSet<usize> =
        (0..wanted.min(all.len())).map(|i| (i as f64 * step) as usize).collect();
    let mut picked = Vec::new();
    let mut lines = 0;
    for (i, b) in all.into_iter().enumerate() {
        if keep.contains(&i) && lines < max_lines.min(total) {
            lines += b.typed_lines();
            picked.push(b);
        }
    }
    Ok(picked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_added_lines_becomes_one_block_typed_from_its_indentation() {
        let text = "fn a() {\n    let x = 1;\n    let y = 2;\n    x + y\n}\nfn b() {}\n";
        let added: Vec<(u32, String)> =
            [(2, "    let x = 1;"), (3, "    let y = 2;"), (4, "    x + y")]
                .into_iter()
                .map(|(n, l)| (n, l.to_string()))
                .chain([(6, "fn b() {}".to_string())])
                .collect();
        let rs = runs(&added);
        assert_eq!(rs.len(), 2);
        let b = block_of("a.rs", text, rs[0], MAX_LINES).unwrap();
        assert_eq!(b.text, "fn a() {\n    \n}\nfn b() {}\n");
        assert_eq!(b.row, 1);
        assert_eq!(b.lines[2], ("    ".to_string(), "x + y".to_string()));
        assert_eq!(&b.text[b.cursor()..], "\n}\nfn b() {}\n");
        assert_eq!(b.written(), "let x = 1;\n    let y = 2;\n    x + y");
        assert!(b.stays_inside());
        let closing = [(2, "    x"), (3, "}"), (4, "fn c() {")].map(|(n, l)| (n, l.to_string()));
        assert!(!block_of("a.rs", text, &closing, MAX_LINES).unwrap().stays_inside());
        assert!(block_of("a.rs", text, rs[1], MAX_LINES).is_none(), "one line is not a block");
    }
}
