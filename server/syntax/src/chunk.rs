//! Chunks: pieces of a file cut at syntax boundaries.

use crate::{Lines, Symbol};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use tree_sitter::{Node, Tree};

/// A piece of a file, cut at syntax boundaries where the language is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// 1-based, inclusive.
    pub start_line: u32,
    pub end_line: u32,
    pub start_byte: usize,
    pub end_byte: usize,
    /// Node kind of the chunk (`function_item`, ...), `lines` for a line window,
    /// `gap` for top-level code between definitions.
    pub kind: String,
    /// Name of the definition the chunk is, when it is one.
    pub name: Option<String>,
    pub text: String,
}

/// Size limits for chunks.
#[derive(Debug, Clone, Copy)]
pub struct ChunkLimits {
    /// A chunk larger than this is split at nested chunk nodes, else into line windows.
    pub max_bytes: usize,
    /// Lines per window when no syntax is available.
    pub window_lines: usize,
}

impl Default for ChunkLimits {
    fn default() -> Self {
        ChunkLimits { max_bytes: 3000, window_lines: 40 }
    }
}

/// Cuts a parsed file into chunks at `marked` (the `@chunk` nodes) and gaps between them.
pub(crate) fn chunks(
    tree: &Tree,
    text: &str,
    symbols: &[Symbol],
    marked: &[Node],
    limits: &ChunkLimits,
) -> Vec<Chunk> {
    let mut chunk_nodes = HashSet::new();
    // Chunk nodes and every ancestor of one: the nodes that must be cut into.
    let mut holders = HashSet::new();
    for &node in marked {
        chunk_nodes.insert(node.id());
        let mut n = Some(node);
        while let Some(x) = n {
            if !holders.insert(x.id()) {
                break;
            }
            n = x.parent();
        }
    }
    let mut out = Vec::new();
    let lines = Lines::new(text);
    let mut c = Cutter {
        text,
        lines: &lines,
        chunk_nodes: &chunk_nodes,
        holders: &holders,
        symbols,
        limits,
        out: &mut out,
    };
    c.children(tree.root_node());
    out.sort_by_key(|c| c.start_byte);
    out
}

struct Cutter<'a> {
    text: &'a str,
    lines: &'a Lines,
    chunk_nodes: &'a HashSet<usize>,
    holders: &'a HashSet<usize>,
    symbols: &'a [Symbol],
    limits: &'a ChunkLimits,
    out: &'a mut Vec<Chunk>,
}

impl Cutter<'_> {
    /// Cuts the children of `node`: chunk nodes become chunks (split if big);
    /// runs of other children are glued into `gap` chunks up to the size limit.
    fn children(&mut self, node: Node) {
        let mut gap: Option<(usize, usize)> = None;
        let mut walker = node.walk();
        for child in node.children(&mut walker) {
            if self.contains_chunk(child) {
                self.flush_gap(&mut gap);
                self.node(child);
            } else {
                let (s, e) = (child.start_byte(), child.end_byte());
                match gap {
                    Some((gs, _)) if e - gs <= self.limits.max_bytes => gap = Some((gs, e)),
                    Some(_) => {
                        self.flush_gap(&mut gap);
                        gap = Some((s, e));
                    }
                    None => gap = Some((s, e)),
                }
            }
        }
        self.flush_gap(&mut gap);
    }

    fn contains_chunk(&self, node: Node) -> bool {
        self.holders.contains(&node.id())
    }

    fn node(&mut self, node: Node) {
        let size = node.end_byte() - node.start_byte();
        let is_chunk = self.chunk_nodes.contains(&node.id());
        if is_chunk && size <= self.limits.max_bytes {
            self.emit(node.start_byte(), node.end_byte(), node.kind());
            return;
        }
        let mut w = node.walk();
        let has_nested = node.children(&mut w).any(|c| self.contains_chunk(c));
        if has_nested {
            self.children(node);
        } else if is_chunk || size > self.limits.max_bytes {
            // A big leaf definition: line windows over it.
            let start = node.start_byte();
            let name = self.name_at(start, node.end_byte());
            for mut c in line_windows(&self.text[start..node.end_byte()], start, self.limits) {
                let base = self.lines.line(start) - 1;
                c.start_line += base;
                c.end_line += base;
                c.kind = node.kind().to_string();
                c.name = name.clone();
                self.out.push(c);
            }
        } else {
            self.emit(node.start_byte(), node.end_byte(), "gap");
        }
    }

    fn flush_gap(&mut self, gap: &mut Option<(usize, usize)>) {
        if let Some((s, e)) = gap.take() {
            if !self.text[s..e].trim().is_empty() {
                if e - s > self.limits.max_bytes {
                    let base = self.lines.line(s) - 1;
                    for mut c in line_windows(&self.text[s..e], s, self.limits) {
                        c.start_line += base;
                        c.end_line += base;
                        c.kind = "gap".into();
                        self.out.push(c);
                    }
                } else {
                    self.emit(s, e, "gap");
                }
            }
        }
    }

    fn name_at(&self, start: usize, end: usize) -> Option<String> {
        self.symbols
            .iter()
            .filter(|s| s.start_byte >= start && s.end_byte <= end)
            .max_by_key(|s| s.end_byte - s.start_byte)
            .map(|s| s.name.clone())
    }

    fn emit(&mut self, start: usize, end: usize, kind: &str) {
        self.out.push(Chunk {
            start_line: self.lines.line(start),
            end_line: self.lines.last_line(start, end),
            start_byte: start,
            end_byte: end,
            kind: kind.to_string(),
            name: self.name_at(start, end),
            text: self.text[start..end].to_string(),
        });
    }
}

/// Line windows over `text` (whose first byte is at `offset` in its file), each at
/// most `window_lines` lines and about `max_bytes` bytes. Line numbers are relative
/// to `text`, 1-based.
pub fn line_windows(text: &str, offset: usize, limits: &ChunkLimits) -> Vec<Chunk> {
    let mut out = Vec::new();
    let mut start = 0usize;
    let mut line = 1u32;
    while start < text.len() {
        let mut end = start;
        let mut lines = 0;
        while end < text.len() && lines < limits.window_lines {
            let next = text[end..].find('\n').map(|i| end + i + 1).unwrap_or(text.len());
            if end > start && next - start > limits.max_bytes {
                break;
            }
            end = next;
            lines += 1;
        }
        let piece = &text[start..end];
        if !piece.trim().is_empty() {
            out.push(Chunk {
                start_line: line,
                end_line: line + lines as u32 - 1,
                start_byte: offset + start,
                end_byte: offset + end,
                kind: "lines".into(),
                name: None,
                text: piece.to_string(),
            });
        }
        line += lines as u32;
        start = end;
    }
    out
}
