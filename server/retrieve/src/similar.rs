//! The similar-code source: BM25 over the index's chunks, queried with the lines above
//! the cursor; the cursor's own region is left out.

use crate::cursor::CursorContext;
use crate::fusion::item;
use crate::Result;
use crate::{contains_word, is_keyword, is_std_name, Citation, Item, Request, Source};
use patois_index::{ChunkHit, Index};

pub(crate) fn similar(
    index: &Index,
    req: &Request,
    cx: &CursorContext,
    cap: usize,
) -> Result<Vec<Item>> {
    let keep = |h: &ChunkHit| outside_region(req, cx, h);
    Ok(index
        .search_chunks(&cx.query_text, cap, &keep)?
        .into_iter()
        .map(|h| chunk_item(Source::Similar, h, "BM25 over the lines above the cursor".into()))
        .collect())
}

/// Whether chunk `h` lies outside the region the cursor is completing (which is never
/// offered back as context).
pub(crate) fn outside_region(req: &Request, cx: &CursorContext, h: &ChunkHit) -> bool {
    let (rs, re) = cx.region;
    h.path != req.path || h.end_line < rs || h.start_line > re
}

/// An indexed chunk as a source's item, cited by its lines.
pub(crate) fn chunk_item(source: Source, h: ChunkHit, reason: String) -> Item {
    let title = h.name.clone().unwrap_or_else(|| h.kind.clone());
    let citation = Citation {
        path: h.path,
        start_line: h.start_line,
        end_line: h.end_line,
        commit: None,
        pr: None,
    };
    item(source, citation, title, h.text, h.score, reason)
}

/// A name that code similar to the cursor's calls (`name(`, `name!(`, `module::name(`) and
/// the document does not mention yet: what the user may be about to call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CoUsed {
    /// `name`, or `name!` for a macro.
    pub name: String,
    pub qualifier: Option<String>,
    /// Where the similar code is.
    pub at: String,
}

fn call_re() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"(?:([A-Za-z_][A-Za-z0-9_]*)::)?([A-Za-z_][A-Za-z0-9_]*)(!)?\s*\(")
            .unwrap()
    })
}

/// The names the first `from` similar items call that `doc` does not mention, at most `max`.
pub(crate) fn co_used(
    similar: &[Item],
    doc: &str,
    lang: Option<&str>,
    from: usize,
    max: usize,
) -> Vec<CoUsed> {
    let mut out: Vec<CoUsed> = Vec::new();
    for it in similar.iter().take(from) {
        for c in call_re().captures_iter(&it.text) {
            if out.len() >= max {
                return out;
            }
            let whole = c.get(0).unwrap();
            let name = &c[2];
            let is_macro = c.get(3).is_some();
            let before = &it.text[..whole.start()];
            let method = before.ends_with('.');
            // `fn name(` defines, it does not call.
            let defines = ["fn", "def", "func", "function"]
                .iter()
                .any(|k| before.trim_end().ends_with(k) && before.ends_with(char::is_whitespace));
            if method
                || defines
                || name.len() < 3
                || is_keyword(lang, name)
                || (is_std_name(lang, name) && c.get(1).is_none())
                || contains_word(doc, name)
            {
                continue;
            }
            let name = if is_macro { format!("{name}!") } else { name.to_string() };
            if out.iter().any(|u| u.name == name) {
                continue;
            }
            out.push(CoUsed {
                name,
                qualifier: c.get(1).map(|q| q.as_str().to_string()),
                at: it.citation.to_string(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::co_used;
    use crate::{Citation, Item, Score, Source};

    fn similar(text: &str) -> Item {
        Item {
            source: Source::Similar,
            citation: Citation {
                path: "src/a.rs".into(),
                start_line: 3,
                end_line: 9,
                commit: None,
                pr: None,
            },
            title: String::new(),
            text: text.into(),
            score: Score { source_rank: 0, source_score: 1.0, fused: 0.0, reason: String::new() },
        }
    }

    #[test]
    fn what_similar_code_calls_and_the_document_lacks() {
        let text =
            "fn fmt(&self, f: &mut Formatter) -> Result {\n    debug_fmt_fields!(A, x);\n    \
                    let n = size_hint::add(self.a, 1);\n    self.go(n);\n    helper(n)\n}\n";
        let doc = "impl Debug for B {\n    fn fmt(&self, f: &mut Formatter) -> Result {\n    \
                   helper(2)\n";
        let got = co_used(&[similar(text)], doc, Some("rust"), 3, 6);
        let names: Vec<_> = got.iter().map(|u| (u.name.as_str(), u.qualifier.as_deref())).collect();
        // Not `fmt` (defined there), not `go` (a method), not `helper` (the document has it).
        assert_eq!(names, [("debug_fmt_fields!", None), ("add", Some("size_hint"))]);
        assert_eq!(got[0].at, "src/a.rs:3-9");
    }
}
