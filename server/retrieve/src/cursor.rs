//! What the text around the cursor refers to: identifiers by distance, the
//! enclosing definition, receiver types, and imported names.

use crate::is_std_name;
use patois_syntax::{outline, Import, Lines, Symbol, Tree};
use regex::Regex;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::OnceLock;

/// An identifier near the cursor, with why it matters.
#[derive(Debug, Clone)]
pub struct Ident {
    pub name: String,
    /// Lines between the identifier and the cursor (0 = the cursor line).
    pub distance: u32,
    /// Called (`name(`) or used as a type (capitalised).
    pub called: bool,

}

#[derive(Debug, Default)]
pub struct CursorContext {
    /// The document's language (registry name), `None` for plain text.
    pub language: Option<&'static str>,
    /// 1-based cursor line.
    pub line: u32,
    /// The innermost function/method around the cursor: (start_line, end_line).
    pub enclosing: Option<(u32, u32)>,
    /// The type the enclosing method belongs to (`self`, `this`, Go receivers).
    pub self_type: Option<String>,
    /// Identifiers in the enclosing function and the lines around the cursor, nearest first.
    pub idents: Vec<Ident>,
    /// Variables whose type is written nearby: `x: Store`, `x = Store::new()`, `new Store()`.
    pub var_types: HashMap<String, String>,
    /// Types that receive method calls near the cursor (from `var_types`, `self`).
    pub receivers: Vec<String>,
    /// Imported names with the module path they come from.
    pub imports: Vec<(String, String)>,
    /// The cursor is in the file's imports: `Some(module)` inside `use module::{…}`,
    /// `Some("")` on an import line or a blank line next to one.
    pub import_site: Option<String>,
    /// At an import site: names the file uses but neither defines nor imports,
    /// the most used first — what the import being written most likely brings in.
    pub unresolved: Vec<String>,
    /// The lines used for similarity search: up to 12 lines above the cursor plus its line's prefix.
    pub query_text: String,
    /// The line range the query came from, excluded from similar-code results.
    pub region: (u32, u32),
}

/// Unresolved names kept at an import site.
pub const MAX_UNRESOLVED: usize = 16;

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for", "if",
    "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self", "Self", "static",
    "struct", "super", "trait", "true", "type", "unsafe", "use", "where", "while", "dyn", "def", "class", "import",
    "from", "pass", "None", "True", "False", "and", "or", "not", "is", "lambda", "with", "yield", "try", "except",
    "finally", "raise", "elif", "global", "function", "var", "this", "new", "export", "default", "interface",
    "extends", "implements", "null", "undefined", "typeof", "instanceof", "catch", "throw", "package", "func", "go",
    "defer", "chan", "select", "case", "switch", "range", "map", "nil", "string", "int", "bool", "u8", "u16", "u32",
    "u64", "usize", "i8", "i16", "i32", "i64", "isize", "f32", "f64", "str", "char", "Some", "Ok", "Err", "Option",
    "Result", "Vec", "String", "Box", "number", "boolean", "void", "any", "of", "do", "err", "error",
];

fn var_type_res() -> &'static [Regex] {
    static RES: OnceLock<Vec<Regex>> = OnceLock::new();
    RES.get_or_init(|| {
        [
            // Rust / TS / Python annotations: `x: &mut Store`, `x: crate::a::Store`, `x: Store<T>`.
            r"\b([a-z_]\w*)\s*:\s*&?(?:mut\s+)?(?:\w+(?:::|\.))*([A-Z]\w*)",
            // Constructors: `let x = Store::new(`, `x = Store(`, `x := &Store{`, `x = new Store(`.
            r"\b([a-z_]\w*)\s*:?=\s*&?(?:new\s+)?(?:\w+(?:::|\.))*([A-Z]\w*)\s*(?:::|\(|\{)",
            // Go params and vars: `(s *Store)`, `var s Store`.
            r"[(,]\s*([a-z_]\w*)\s+\*?(?:\w+\.)?([A-Z]\w*)",
            r"\bvar\s+([a-z_]\w*)\s+\*?(?:\w+\.)?([A-Z]\w*)",
        ]
        .iter()
        .map(|r| Regex::new(r).unwrap())
        .collect()
    })
}

fn ident_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"[A-Za-z_][A-Za-z0-9_]*").unwrap())
}

fn local_binding_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?:\blet\s+(?:mut\s+)?|\bfor\s+|\bvar\s+|\bconst\s+|[(,]\s*(?:mut\s+)?)([a-z_]\w*)\b|\b([a-z_]\w*)\s*:=").unwrap()
    })
}

fn typing_member_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\b([A-Za-z_]\w*)\s*(?:\.|->|::)\s*\w*$").unwrap())
}

fn method_call_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\b([A-Za-z_]\w*)\s*(?:\.|->)\s*[A-Za-z_]\w*").unwrap())
}

/// Names an import brings in, with its module path.
pub fn imported_names(lang: Option<&str>, import: &str) -> Vec<(String, String)> {
    let import = import.trim();
    match lang {
        Some("rust") => {
            // `a::b::{C, D as E, f::G}` or `a::b::C` or `a::b::C as D`.
            let (base, list) = match import.find('{') {
                Some(i) => (import[..i].trim_end_matches("::"), import[i + 1..].trim_end_matches('}').to_string()),
                None => match import.rfind("::") {
                    Some(i) => (&import[..i], import[i + 2..].to_string()),
                    None => ("", import.to_string()),
                },
            };
            list.split(',')
                .filter_map(|item| {
                    let item = item.trim();
                    let path_name = item.split(" as ").next()?.trim();
                    let name = path_name.rsplit("::").next()?.trim();
                    let module = match path_name.rfind("::") {
                        Some(i) => format!("{base}::{}", &path_name[..i]),
                        None => base.to_string(),
                    };
                    (!name.is_empty() && name != "self" && name != "*").then(|| (name.to_string(), module))
                })
                .collect()
        }
        // Python and JS/TS name imports are captured name by name; module paths separately.
        _ => {
            let name = import.rsplit(['.', '/']).next().unwrap_or(import);
            vec![(name.to_string(), import.to_string())]
        }
    }
}

pub fn analyze_cursor(path: &str, text: &str, cursor: usize) -> CursorContext {
    let cursor = cursor.min(text.len());
    let lines = Lines::new(text);
    let line = lines.line(cursor);
    let analysis = outline(Path::new(path), text);
    let enclosing: Option<&Symbol> = analysis
        .symbols
        .iter()
        .filter(|s| matches!(s.kind.as_str(), "function" | "method") && s.start_byte <= cursor && cursor <= s.end_byte)
        .min_by_key(|s| s.end_byte - s.start_byte);
    // Only types give `self` a meaning: a function in `mod tests` has no self type.
    let is_type_scope = |name: &str| {
        analysis.symbols.iter().any(|s| s.name == name && matches!(s.kind.as_str(), "impl" | "class" | "struct" | "interface" | "trait" | "enum"))
    };
    let self_type = enclosing.and_then(|s| s.scope.clone()).filter(|s| is_type_scope(s)).or_else(|| {
        // Inside a type's body but not in a method (a field being typed, say).
        analysis
            .symbols
            .iter()
            .filter(|s| matches!(s.kind.as_str(), "impl" | "class" | "struct" | "interface") && s.start_byte <= cursor && cursor <= s.end_byte)
            .min_by_key(|s| s.end_byte - s.start_byte)
            .map(|s| s.name.clone())
    });

    // The scanned region: the enclosing function (or 30 lines above) and what
    // follows the cursor in it (at least 3 lines, at most 60).
    let region_start = enclosing.map(|s| s.start_line).unwrap_or(line.saturating_sub(30)).max(1);
    let region_end = enclosing.map(|s| s.end_line).unwrap_or(0).clamp(line + 3, line + 60).min(lines_count(text));
    let line_text = |n: u32| lines.text(n, text);
    let mut idents: Vec<Ident> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for n in region_start..=region_end {
        let mut l = line_text(n);
        if n == line {
            // On the cursor line only what precedes the cursor counts.
            let col = cursor - lines.start(n, text);
            l = &l[..col.min(l.len())];
        }
        let distance = n.abs_diff(line);
        for m in ident_re().find_iter(l) {
            let name = m.as_str();
            if name.len() < 2 || KEYWORDS.contains(&name) || name.chars().all(|c| c.is_ascii_digit() || c == '_') {
                continue;
            }
            let called = l[m.end()..].trim_start().starts_with('(') || name.starts_with(|c: char| c.is_ascii_uppercase());
            let after_dot = l[..m.start()].ends_with('.');
            // `x.field` is a field access, not a definition to look up.
            if !called && after_dot {
                continue;
            }
            match index.get(name) {
                Some(&i) => {
                    let e = &mut idents[i];
                    e.distance = e.distance.min(distance);
                    e.called |= called;
                }
                None => {
                    index.insert(name.to_string(), idents.len());
                    idents.push(Ident { name: name.to_string(), distance, called });
                }
            }
        }
    }
    idents.sort_by_key(|i| (i.distance, !i.called));

    let region_text: String = (region_start..=line).map(|n| line_text(n)).collect::<Vec<_>>().join("\n");
    let mut var_types = HashMap::new();
    for re in var_type_res() {
        for c in re.captures_iter(&region_text) {
            var_types.entry(c[1].to_string()).or_insert_with(|| c[2].to_string());
        }
    }
    // Names bound in the region (params, lets, loop variables) are locals, not definitions.
    let mut locals: Vec<String> = var_types.keys().cloned().collect();
    for c in local_binding_re().captures_iter(&region_text) {
        if let Some(m) = c.get(1).or(c.get(2)) {
            locals.push(m.as_str().to_string());
        }
    }
    // A called name after `(` or `,` is a function passed or called, not a binding.
    idents.retain(|i| i.called || !locals.contains(&i.name));
    let mut receivers: Vec<String> = Vec::new();
    let near = (line.saturating_sub(12).max(region_start)..=line).map(|n| line_text(n)).collect::<Vec<_>>().join("\n");
    let mut calls: Vec<(usize, String)> = method_call_re().captures_iter(&near).map(|c| (c.get(0).unwrap().start(), c[1].to_string())).collect();
    calls.reverse(); // nearest to the cursor first
    // The receiver being typed at the cursor (`store.|`, `Store::|`) comes first of all.
    let before = &text[lines.start(line, text)..cursor];
    if let Some(c) = typing_member_re().captures(before) {
        calls.insert(0, (0, c[1].to_string()));
    }
    for (_, var) in calls {
        let ty = match var.as_str() {
            "self" | "this" => self_type.clone(),
            v => var_types.get(v).cloned().or_else(|| v.starts_with(|c: char| c.is_ascii_uppercase()).then(|| v.to_string())),
        };
        if let Some(ty) = ty {
            if !receivers.contains(&ty) {
                receivers.push(ty);
            }
        }
    }
    if let Some(t) = &self_type {
        if !receivers.contains(t) {
            receivers.push(t.clone());
        }
    }

    let imports: Vec<(String, String)> = analysis.imports.iter().flat_map(|i| imported_names(analysis.language, &i.text)).collect();
    let import_site = import_site(&analysis.imports, line, &text[lines.start(line, text)..cursor]);
    let unresolved = match (&import_site, &analysis.tree) {
        (Some(_), Some(tree)) => unresolved_names(text, tree, analysis.language, &analysis.symbols, &imports, MAX_UNRESOLVED),
        _ => Vec::new(),
    };
    let q_start = line.saturating_sub(12).max(1);
    let mut query_text = (q_start..line).map(|n| line_text(n)).collect::<Vec<_>>().join("\n");
    query_text.push('\n');
    query_text.push_str(&text[lines.start(line, text)..cursor]);
    CursorContext {
        language: analysis.language,
        line,
        enclosing: enclosing.map(|s| (s.start_line, s.end_line)),
        self_type,
        idents,
        var_types,
        receivers,
        imports,
        import_site,
        unresolved,
        query_text,
        region: (enclosing.map(|s| s.start_line).unwrap_or(q_start).min(q_start), enclosing.map(|s| s.end_line).unwrap_or(line).max(line)),
    }
}

/// Whether the cursor line is part of the imports (see `CursorContext::import_site`).
fn import_site(imports: &[Import], line: u32, before_cursor: &str) -> Option<String> {
    let span = |i: &Import| (i.line, i.line + i.text.matches('\n').count() as u32);
    if let Some(i) = imports.iter().find(|i| (span(i).0..=span(i).1).contains(&line)) {
        // Inside `a::b::{…}` the module is `a::b`; on `a::b::C` it is `a::b`.
        let head = i.text.split('{').next().unwrap_or("");
        let module = head.trim_end().trim_end_matches("::");
        let module = if i.text.contains('{') { module } else { module.rsplit_once("::").map(|(m, _)| m).unwrap_or("") };
        return Some(module.to_string());
    }
    let t = before_cursor.trim_start();
    let starts_import = ["use ", "pub use ", "import ", "from "].iter().any(|k| t.starts_with(k)) || t.is_empty();
    let next_to_import = imports.iter().any(|i| span(i).1 + 1 == line || span(i).0 == line + 1);
    (starts_import && next_to_import).then(String::new)
}

/// Names used in code that look importable (types,
/// free-function calls, macros) but are neither defined in the file nor imported.
fn unresolved_names(
    text: &str,
    tree: &Tree,
    lang: Option<&str>,
    symbols: &[Symbol],
    imports: &[(String, String)],
    max: usize,
) -> Vec<String> {
    let mut counts: HashMap<&str, (usize, usize)> = HashMap::new();
    for m in ident_re().find_iter(text) {
        let name = m.as_str();
        let rest = text[m.end()..].trim_start();
        let importable = name.starts_with(|c: char| c.is_ascii_uppercase()) || rest.starts_with('(') || rest.starts_with('!');
        let before = &text[..m.start()];
        if !importable || name.len() < 2 || before.ends_with('.') || before.ends_with("::") {
            continue;
        }
        if KEYWORDS.contains(&name) || is_std_name(lang, name) {
            continue;
        }
        let e = counts.entry(name).or_insert((0, m.start()));
        e.0 += 1;
    }
    let known: HashSet<&str> = symbols.iter().map(|s| s.name.as_str()).chain(imports.iter().map(|(n, _)| n.as_str())).collect();
    let mut names: Vec<(&str, (usize, usize))> = counts.into_iter().filter(|(n, _)| !known.contains(n)).collect();
    names.sort_by_key(|(_, (count, first))| (std::cmp::Reverse(*count), *first));
    // Comments and strings mention names too; only code counts.
    names
        .into_iter()
        .filter(|(n, (_, first))| {
            let uses = text[*first..].match_indices(n).map(|(i, _)| first + i);
            uses.take(4).any(|at| patois_syntax::is_code(tree, at, at + n.len()))
        })
        .take(max)
        .map(|(n, _)| n.to_string())
        .collect()
}

fn lines_count(text: &str) -> u32 {
    text.lines().count().max(1) as u32
}

/// Byte offset where 1-based line `n` starts.
pub fn line_start(text: &str, n: u32) -> usize {
    if n <= 1 {
        return 0;
    }
    text.match_indices('\n').nth(n as usize - 2).map(|(i, _)| i + 1).unwrap_or(text.len())
}

/// The text of 1-based line `n`, without its newline.
pub fn nth_line(text: &str, n: u32) -> &str {
    let s = line_start(text, n);
    let e = text[s..].find('\n').map(|i| s + i).unwrap_or(text.len());
    &text[s..e]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_imports() {
        let got = imported_names(Some("rust"), "crate::store::{Store, Key as K, kv::Pair}");
        assert_eq!(
            got,
            [
                ("Store".into(), "crate::store".into()),
                ("Key".into(), "crate::store".into()),
                ("Pair".into(), "crate::store::kv".into())
            ]
        );
        assert_eq!(imported_names(Some("rust"), "std::fs"), [("fs".to_string(), "std".to_string())]);
    }

    #[test]
    fn receivers_from_annotations_constructors_and_self() {
        let src = "impl Engine {\n    fn run(&self, db: &mut Ledger) {\n        let cache = Cache::new();\n        db.post();\n        cache.get();\n        self.\n    }\n}\n";
        let cursor = src.find("self.\n").unwrap() + 5;
        let c = analyze_cursor("a.rs", src, cursor);
        assert_eq!(c.self_type.as_deref(), Some("Engine"));
        assert_eq!(c.var_types.get("db").map(String::as_str), Some("Ledger"));
        assert_eq!(c.var_types.get("cache").map(String::as_str), Some("Cache"));
        assert_eq!(c.receivers, ["Engine", "Cache", "Ledger"]);
        assert_eq!(c.enclosing, Some((2, 7)));
        assert!(c.idents.iter().any(|i| i.name == "post"));
    }
}
