//! Symbol definitions and imports from the `tags.scm` queries.

use crate::{Language, Lines};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use tree_sitter::{Node, StreamingIterator, Tree};

/// A symbol definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Symbol {
    pub name: String,
    pub kind: SymbolKind,
    /// Name of the enclosing definition (type of an impl block, class, Go receiver).
    pub scope: Option<String>,
    /// 1-based, inclusive.
    pub start_line: u32,
    pub end_line: u32,
    pub start_byte: usize,
    pub end_byte: usize,
    /// The header of the definition: everything before its body.
    pub signature: String,
    /// The doc comment (or Python docstring), markers kept.
    pub doc: Option<String>,
}

/// What a definition defines: the suffix of its `@definition.<kind>` capture in the
/// grammars' `tags.scm` (a capture naming another kind is a defect the tests catch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SymbolKind {
    Function,
    Method,
    Macro,
    Struct,
    Class,
    Enum,
    Union,
    Interface,
    Trait,
    Type,
    Impl,
    Module,
    Field,
    Variant,
    Constant,
    Variable,
}

impl SymbolKind {
    pub const ALL: [SymbolKind; 16] = [
        SymbolKind::Function,
        SymbolKind::Method,
        SymbolKind::Macro,
        SymbolKind::Struct,
        SymbolKind::Class,
        SymbolKind::Enum,
        SymbolKind::Union,
        SymbolKind::Interface,
        SymbolKind::Trait,
        SymbolKind::Type,
        SymbolKind::Impl,
        SymbolKind::Module,
        SymbolKind::Field,
        SymbolKind::Variant,
        SymbolKind::Constant,
        SymbolKind::Variable,
    ];

    /// The name in `tags.scm` and in the index.
    pub fn as_str(self) -> &'static str {
        match self {
            SymbolKind::Function => "function",
            SymbolKind::Method => "method",
            SymbolKind::Macro => "macro",
            SymbolKind::Struct => "struct",
            SymbolKind::Class => "class",
            SymbolKind::Enum => "enum",
            SymbolKind::Union => "union",
            SymbolKind::Interface => "interface",
            SymbolKind::Trait => "trait",
            SymbolKind::Type => "type",
            SymbolKind::Impl => "impl",
            SymbolKind::Module => "module",
            SymbolKind::Field => "field",
            SymbolKind::Variant => "variant",
            SymbolKind::Constant => "constant",
            SymbolKind::Variable => "variable",
        }
    }

    /// The kind named `name` (`as_str`'s inverse).
    pub fn named(name: &str) -> Option<SymbolKind> {
        SymbolKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// A function or a method: something called.
    pub fn is_callable(self) -> bool {
        matches!(self, SymbolKind::Function | SymbolKind::Method)
    }

    /// A type: what a value, a receiver or a return value can be.
    pub fn is_type(self) -> bool {
        use SymbolKind::*;
        matches!(self, Struct | Class | Enum | Union | Interface | Trait | Type)
    }

    /// A part of another definition (a field, an enum variant), not a definition to show
    /// on its own.
    pub fn is_member(self) -> bool {
        matches!(self, SymbolKind::Field | SymbolKind::Variant)
    }
}

impl std::fmt::Display for SymbolKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An import: a module path or an imported name, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Import {
    pub text: String,
    pub line: u32,
}

const MAX_SIGNATURE: usize = 400;

/// Runs the language's query once: symbols, imports, and the nodes `chunks.scm` marks.
pub(crate) fn extract<'t>(
    lang: &Language,
    tree: &'t Tree,
    text: &str,
) -> (Vec<Symbol>, Vec<Import>, Vec<Node<'t>>) {
    let q = &lang.query;
    let names = q.capture_names();
    let mut cursor = tree_sitter::QueryCursor::new();
    let mut matches = cursor.matches(q, tree.root_node(), text.as_bytes());
    let lines = Lines::new(text);
    let mut defs: Vec<(Symbol, Option<String>)> = Vec::new();
    let mut seen: HashSet<(usize, usize, bool)> = HashSet::new();
    let mut imports = Vec::new();
    let mut chunk_nodes = Vec::new();
    while let Some(m) = matches.next() {
        let mut def: Option<(Node, SymbolKind)> = None;
        let mut name = None;
        let mut scope = None;
        for c in m.captures() {
            let cap = names[c.index as usize];
            if let Some(kind) = cap.strip_prefix("definition.") {
                def = SymbolKind::named(kind).map(|k| (c.node, k));
            } else if cap == "name" {
                name = Some(c.node);
            } else if cap == "scope" {
                scope = Some(node_text(c.node, text).to_string());
            } else if cap == "chunk" {
                chunk_nodes.push(c.node);
            } else if cap == "import" {
                let t = node_text(c.node, text).trim_matches(|ch| ch == '"' || ch == '`');
                imports.push((
                    c.node.start_byte(),
                    Import { text: t.to_string(), line: lines.line(c.node.start_byte()) },
                ));
            }
        }
        if let (Some((node, kind)), Some(name)) = (def, name) {
            // Rust methods match both `function` and `method` patterns; keep one per node.
            if !seen.insert((node.start_byte(), node.end_byte(), kind == SymbolKind::Impl)) {
                continue;
            }
            defs.push((
                Symbol {
                    name: node_text(name, text).to_string(),
                    kind,
                    scope: None,
                    start_line: lines.line(node.start_byte()),
                    end_line: lines.last_line(node.start_byte(), node.end_byte()),
                    start_byte: node.start_byte(),
                    end_byte: node.end_byte(),
                    signature: signature(node, text),
                    doc: doc_comment(lang, node, text),
                },
                scope,
            ));
        }
    }
    let defs = with_scopes(lang, defs);
    imports.sort_by_key(|(b, _)| *b);
    imports.dedup_by(|a, b| a.0 == b.0);
    (defs, imports.into_iter().map(|(_, i)| i).collect(), chunk_nodes)
}

/// The definitions in source order, each with its scope: the one the query captured, else
/// the innermost earlier definition whose range contains it.
fn with_scopes(lang: &Language, mut defs: Vec<(Symbol, Option<String>)>) -> Vec<Symbol> {
    defs.sort_by_key(|(d, _)| (d.start_byte, std::cmp::Reverse(d.end_byte)));
    let mut stack: Vec<usize> = Vec::new();
    for i in 0..defs.len() {
        while let Some(&top) = stack.last() {
            if defs[top].0.end_byte >= defs[i].0.end_byte
                && defs[top].0.start_byte <= defs[i].0.start_byte
            {
                break;
            }
            stack.pop();
        }
        let explicit = defs[i].1.take();
        let enclosing = stack.last().map(|&t| defs[t].0.name.clone());
        defs[i].0.scope = explicit.or(enclosing);
        stack.push(i);
    }
    let mut defs: Vec<Symbol> = defs.into_iter().map(|(d, _)| d).collect();
    if lang.rules.scoped_functions_are_methods {
        for d in defs.iter_mut() {
            if d.kind == SymbolKind::Function && d.scope.is_some() {
                d.kind = SymbolKind::Method;
            }
        }
    }
    defs
}

fn node_text<'a>(node: Node, text: &'a str) -> &'a str {
    &text[node.byte_range()]
}

fn signature(node: Node, text: &str) -> String {
    let end = node.child_by_field_name("body").map(|b| b.start_byte()).unwrap_or(node.end_byte());
    let sig = text[node.start_byte()..end].trim_end();
    let sig = &sig[..sig.floor_char_boundary(MAX_SIGNATURE)];
    sig.trim_end_matches(':').trim_end().to_string()
}

fn is_comment(node: Node) -> bool {
    node.kind().contains("comment")
}

/// Comments directly above a definition (skipping attributes and decorators),
/// or the docstring of a Python function or class.
fn doc_comment(lang: &Language, node: Node, text: &str) -> Option<String> {
    if lang.rules.docstrings {
        let body = node.child_by_field_name("body")?;
        let first = body.named_child(0)?;
        if first.kind() == "expression_statement"
            && first.named_child(0).is_some_and(|s| s.kind() == "string")
        {
            return Some(node_text(first, text).to_string());
        }
        return None;
    }
    // Definitions wrapped by a declarator/export carry their comments on the wrapper.
    let mut anchor = node;
    while let Some(p) = anchor.parent() {
        if matches!(
            p.kind(),
            "export_statement"
                | "lexical_declaration"
                | "variable_declaration"
                | "type_declaration"
                | "const_declaration"
                | "var_declaration"
        ) && p.start_byte() <= anchor.start_byte()
            && p.named_child(0).is_some_and(|c| {
                c.start_byte() == anchor.start_byte() || p.kind() != "export_statement"
            })
            && anchor.start_position().row == p.start_position().row
        {
            anchor = p;
        } else {
            break;
        }
    }
    let mut parts = Vec::new();
    let mut expected_row = anchor.start_position().row;
    let mut sib = anchor.prev_sibling();
    while let Some(s) = sib {
        if s.kind() == "attribute_item" || s.kind() == "decorator" {
            expected_row = s.start_position().row;
        } else if is_comment(s) && s.end_position().row + 1 >= expected_row {
            parts.push(node_text(s, text).trim_end().to_string());
            expected_row = s.start_position().row;
        } else {
            break;
        }
        sib = s.prev_sibling();
    }
    if parts.is_empty() {
        return None;
    }
    parts.reverse();
    Some(parts.join("\n"))
}
