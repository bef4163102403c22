//! What the text around the cursor refers to: identifiers by distance, the
//! enclosing definition, receiver types, and imported names.

use crate::{is_keyword, is_std_name, word_positions};
use patois_syntax::{outline, Analysis, Import, Lines, Symbol, SymbolKind, Tree};
use regex::Regex;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::OnceLock;

mod chains;
use chains::{binding_re, call_binding, chain_before, BOUND_LINES, CHAIN_LINES};

/// An identifier near the cursor, with why it matters.
#[derive(Debug, Clone)]
pub struct Ident {
    pub name: String,
    /// Lines between the identifier and the cursor (0 = the cursor line).
    pub distance: u32,
    /// Called (`name(`), a macro (`name!`), or used as a type (capitalised).
    pub called: bool,
    /// The path it is named through (`size_hint` in `size_hint::add`), if any.
    pub qualifier: Option<String>,
}

/// `let var = receiver.method(…)` or `let var = function(…)`: the type of `var`
/// is what `method` returns, which the index's signatures may tell.
#[derive(Debug, Clone, PartialEq)]
pub struct CallBinding {
    pub var: String,
    /// The variable or type the call chain starts from, if any.
    pub receiver: Option<String>,
    /// The last call of the chain that is not a standard-library method (`unwrap`, ...).
    pub method: String,
}

#[derive(Debug, Default)]
pub struct CursorContext {
    /// The document's language (registry name), `None` for plain text.
    pub language: Option<&'static str>,
    /// 1-based cursor line.
    pub line: u32,
    /// The innermost function/method around the cursor: (start_line, end_line).
    pub enclosing: Option<(u32, u32)>,
    /// That function's name.
    pub enclosing_name: Option<String>,
    /// The type the enclosing method belongs to (`self`, `this`, Go receivers).
    pub self_type: Option<String>,
    /// Identifiers in the enclosing function and the lines around the cursor, nearest first.
    pub idents: Vec<Ident>,
    /// Variables whose type is written nearby: `x: Store`, `x = Store::new()`, `new Store()`.
    pub var_types: HashMap<String, String>,
    /// Types that receive method calls near the cursor (from `var_types`, `self`).
    pub receivers: Vec<String>,
    /// Variables whose method calls near the cursor have no type written nearby,
    /// and variables bound in the few lines above the cursor: nearest first.
    /// Their types may be inferred from the index (`CursorContext::call_bindings`).
    pub untyped_vars: Vec<String>,
    /// The call chain the cursor continues (`a.b().c.|`, or a new line after
    /// `let x = a\n    .b()`): the start and the members after it, in order.
    pub chain: Option<(String, Vec<String>)>,
    /// The variable bound nearest above the cursor, within two lines.
    pub just_bound: Option<String>,
    /// Variables assigned the result of a call: `let r = searcher.segment_reader(0)`.
    pub call_bindings: Vec<CallBinding>,
    /// Imported names with the module path they come from.
    pub imports: Vec<(String, String)>,
    /// The cursor is in the file's imports: `Some(module)` inside `use module::{…}`,
    /// `Some("")` on an import line or a blank line next to one.
    pub import_site: Option<String>,
    /// At an import site: names the file uses but neither defines nor imports,
    /// the most used first — what the import being written most likely brings in.
    /// Macros end in `!` (`doc!`).
    pub unresolved: Vec<String>,
    /// The lines used for similarity search: up to 12 lines above the cursor plus its line's prefix.
    pub query_text: String,
    /// The line range the query came from, excluded from similar-code results.
    pub region: (u32, u32),
}

/// Unresolved names kept at an import site.
pub const MAX_UNRESOLVED: usize = 16;

fn var_type_res() -> &'static [Regex] {
    static RES: OnceLock<Vec<Regex>> = OnceLock::new();
    RES.get_or_init(|| {
        [
            // Rust / TS / Python annotations: `x: &mut Store`, `x: crate::a::Store`, `x: Store<T>`,
            // through wrappers: `x: Box<dyn Store>`, `x: Option<Arc<Store>>`.
            r"\b([a-z_]\w*)\s*:\s*&?(?:mut\s+)?(?:(?:Box|Arc|Rc|Option|RefCell|Mutex|RwLock|Optional)\s*[<\[]\s*&?)*(?:dyn\s+|impl\s+)?(?:\w+(?:::|\.))*([A-Z]\w*)",
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
    if !patois_syntax::rules_of(lang).use_trees {
        // Python and JS/TS name imports are captured name by name; module paths separately.
        let name = import.rsplit(['.', '/']).next().unwrap_or(import);
        return vec![(name.to_string(), import.to_string())];
    }
    // `a::b::{C, D as E, f::G}` or `a::b::C` or `a::b::C as D`.
    let (base, list) = match import.find('{') {
        Some(i) => {
            (import[..i].trim_end_matches("::"), import[i + 1..].trim_end_matches('}').to_string())
        }
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

/// Analyses the code around `cursor` (a byte offset in `text`, the document at `path`):
/// what is being typed and which names and types a colleague would look up.
pub fn analyze_cursor(path: &str, text: &str, cursor: usize) -> CursorContext {
    let cursor = cursor.min(text.len());
    let lines = Lines::new(text);
    let line = lines.line(cursor);
    let analysis = outline(Path::new(path), text);
    let enclosing = enclosing_function(&analysis, cursor);
    let self_type = self_type(&analysis, enclosing, cursor);
    // The scanned region: the enclosing function (or 30 lines above) and what
    // follows the cursor in it (at least 3 lines, at most 60).
    let region_start = enclosing.map(|s| s.start_line).unwrap_or(line.saturating_sub(30)).max(1);
    let region_end = enclosing
        .map(|s| s.end_line)
        .unwrap_or(0)
        .clamp(line + 3, line + 60)
        .min(lines_count(text));
    let scan =
        Scan { text, lines: &lines, cursor, line, language: analysis.language, region_start };
    let mut idents = scan.idents(region_end);
    let region_text: String =
        (region_start..=line).map(|n| scan.line_text(n)).collect::<Vec<_>>().join("\n");
    let var_types = written_types(&region_text);
    // Names bound in the region (params, lets, loop variables) are locals, not definitions;
    // a called name after `(` or `,` is a function passed or called, not a binding.
    let locals = locals(&region_text, &var_types);
    idents.retain(|i| i.called || !locals.contains(&i.name));
    let (receivers, mut untyped_vars) = scan.receivers(&var_types, self_type.as_ref());
    let just_bound = scan.recent_bindings(&mut untyped_vars);
    let call_bindings = scan.call_bindings();
    let chain_from = lines.start(line.saturating_sub(CHAIN_LINES).max(region_start), text);
    let semicolons = patois_syntax::rules_of(analysis.language).semicolons;
    let chain = chain_before(&text[chain_from..cursor], semicolons, analysis.language);
    let imports: Vec<(String, String)> =
        analysis.imports.iter().flat_map(|i| imported_names(analysis.language, &i.text)).collect();
    let before_cursor = &text[lines.start(line, text)..cursor];
    let import_site = import_site(&analysis.imports, line, before_cursor);
    let unresolved = match (&import_site, &analysis.tree) {
        (Some(_), Some(tree)) => unresolved_names(text, tree, line, &analysis, MAX_UNRESOLVED),
        _ => Vec::new(),
    };
    let q_start = line.saturating_sub(12).max(1);
    let mut query_text = (q_start..line).map(|n| scan.line_text(n)).collect::<Vec<_>>().join("\n");
    query_text.push('\n');
    query_text.push_str(before_cursor);
    CursorContext {
        language: analysis.language,
        line,
        enclosing: enclosing.map(|s| (s.start_line, s.end_line)),
        enclosing_name: enclosing.map(|s| s.name.clone()),
        self_type,
        idents,
        var_types,
        receivers,
        untyped_vars,
        chain,
        just_bound,
        call_bindings,
        imports,
        import_site,
        unresolved,
        query_text,
        region: (
            enclosing.map(|s| s.start_line).unwrap_or(q_start).min(q_start),
            enclosing.map(|s| s.end_line).unwrap_or(line).max(line),
        ),
    }
}

/// The innermost function or method around the cursor.
fn enclosing_function(analysis: &Analysis, cursor: usize) -> Option<&Symbol> {
    analysis
        .symbols
        .iter()
        .filter(|s| s.kind.is_callable() && s.start_byte <= cursor && cursor <= s.end_byte)
        .min_by_key(|s| s.end_byte - s.start_byte)
}

/// The type `self`/`this` means at the cursor: the enclosing method's type, else the type
/// whose body the cursor is in (a field being typed, say). Only types give `self` a
/// meaning: a function in `mod tests` has none.
fn self_type(analysis: &Analysis, enclosing: Option<&Symbol>, cursor: usize) -> Option<String> {
    let is_type_scope = |name: &str| {
        analysis.symbols.iter().any(|s| {
            use SymbolKind::*;
            s.name == name && matches!(s.kind, Impl | Class | Struct | Interface | Trait | Enum)
        })
    };
    enclosing.and_then(|s| s.scope.clone()).filter(|s| is_type_scope(s)).or_else(|| {
        analysis
            .symbols
            .iter()
            .filter(|s| {
                use SymbolKind::*;
                matches!(s.kind, Impl | Class | Struct | Interface)
                    && s.start_byte <= cursor
                    && cursor <= s.end_byte
            })
            .min_by_key(|s| s.end_byte - s.start_byte)
            .map(|s| s.name.clone())
    })
}

/// Variables with a written type in `region` (annotations, constructors).
fn written_types(region: &str) -> HashMap<String, String> {
    let mut var_types = HashMap::new();
    for re in var_type_res() {
        for c in re.captures_iter(region) {
            var_types.entry(c[1].to_string()).or_insert_with(|| c[2].to_string());
        }
    }
    var_types
}

/// Names bound in `region`: typed variables, parameters, lets, loop variables.
fn locals(region: &str, var_types: &HashMap<String, String>) -> Vec<String> {
    let mut locals: Vec<String> = var_types.keys().cloned().collect();
    for c in local_binding_re().captures_iter(region) {
        if let Some(m) = c.get(1).or(c.get(2)) {
            locals.push(m.as_str().to_string());
        }
    }
    locals
}

/// The lines around the cursor, as the analysis steps read them.
struct Scan<'t> {
    text: &'t str,
    lines: &'t Lines,
    cursor: usize,
    /// The cursor's line (1-based).
    line: u32,
    language: Option<&'static str>,
    /// The first line of the scanned region.
    region_start: u32,
}

impl<'t> Scan<'t> {
    fn line_text(&self, n: u32) -> &'t str {
        self.lines.text(n, self.text)
    }

    /// Identifiers from the region's start to `region_end`, nearest to the cursor (and
    /// called or capitalised) first. On the cursor line only what precedes it counts.
    fn idents(&self, region_end: u32) -> Vec<Ident> {
        let mut idents: Vec<Ident> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let macros = patois_syntax::rules_of(self.language).macros;
        for n in self.region_start..=region_end {
            let mut l = self.line_text(n);
            if n == self.line {
                let col = self.cursor - self.lines.start(n, self.text);
                l = &l[..col.min(l.len())];
            }
            let distance = n.abs_diff(self.line);
            for m in ident_re().find_iter(l) {
                let name = m.as_str();
                if name.len() < 2
                    || is_keyword(self.language, name)
                    || name.chars().all(|c| c.is_ascii_digit() || c == '_')
                {
                    continue;
                }
                let after = &l[m.end()..];
                // `name!(…)` is a macro: looked up among macros as `name!`.
                let macro_use = macros && after.starts_with('!') && !after.starts_with("!=");
                let name = if macro_use { &l[m.start()..=m.end()] } else { name };
                let called = macro_use
                    || after.trim_start().starts_with('(')
                    || name.starts_with(|c: char| c.is_ascii_uppercase());
                let qualifier = l[..m.start()]
                    .strip_suffix("::")
                    .and_then(|q| ident_re().find_iter(q).last().filter(|p| p.end() == q.len()))
                    .map(|p| p.as_str().to_string());
                // `x.field` is a field access, not a definition to look up.
                if !called && l[..m.start()].ends_with('.') {
                    continue;
                }
                match index.get(name) {
                    Some(&i) => {
                        let e = &mut idents[i];
                        e.distance = e.distance.min(distance);
                        e.called |= called;
                        if e.qualifier.is_none() {
                            e.qualifier = qualifier;
                        }
                    }
                    None => {
                        index.insert(name.to_string(), idents.len());
                        idents.push(Ident { name: name.to_string(), distance, called, qualifier });
                    }
                }
            }
        }
        idents.sort_by_key(|i| (i.distance, !i.called));
        idents
    }

    /// The types of method-call receivers near the cursor (the one being typed first,
    /// then nearest first, then `self`'s), and the receivers whose type is unknown.
    fn receivers(
        &self,
        var_types: &HashMap<String, String>,
        self_type: Option<&String>,
    ) -> (Vec<String>, Vec<String>) {
        let near = (self.line.saturating_sub(12).max(self.region_start)..=self.line)
            .map(|n| self.line_text(n))
            .collect::<Vec<_>>()
            .join("\n");
        let mut calls: Vec<String> =
            method_call_re().captures_iter(&near).map(|c| c[1].to_string()).collect();
        calls.reverse(); // nearest to the cursor first
                         // The receiver being typed at the cursor (`store.|`, `Store::|`) comes first of all.
        let before = &self.text[self.lines.start(self.line, self.text)..self.cursor];
        if let Some(c) = typing_member_re().captures(before) {
            calls.insert(0, c[1].to_string());
        }
        let mut receivers: Vec<String> = Vec::new();
        let mut untyped_vars: Vec<String> = Vec::new();
        for var in calls {
            if !var_types.contains_key(&var)
                && var.starts_with(|c: char| c.is_ascii_lowercase())
                && var != "self"
                && var != "this"
                && !untyped_vars.contains(&var)
            {
                untyped_vars.push(var.clone());
            }
            let ty = match var.as_str() {
                "self" | "this" => self_type.cloned(),
                v => var_types.get(v).cloned().or_else(|| {
                    v.starts_with(|c: char| c.is_ascii_uppercase()).then(|| v.to_string())
                }),
            };
            if let Some(ty) = ty.filter(|t| !receivers.contains(t)) {
                receivers.push(ty);
            }
        }
        if let Some(t) = self_type.filter(|t| !receivers.contains(t)) {
            receivers.push(t.clone());
        }
        (receivers, untyped_vars)
    }

    /// Variables bound just above the cursor (added to `untyped_vars`); the one bound
    /// within two lines is what the next line most likely uses.
    fn recent_bindings(&self, untyped_vars: &mut Vec<String>) -> Option<String> {
        let mut just_bound = None;
        let from = self.line.saturating_sub(BOUND_LINES).max(self.region_start);
        for n in (from..self.line).rev() {
            let assigned = binding_re().captures(self.line_text(n)).map(|c| c[1].to_string());
            let bound = local_binding_re()
                .captures_iter(self.line_text(n))
                .filter_map(|c| c.get(1).or(c.get(2)))
                .map(|m| m.as_str().to_string());
            for var in assigned.into_iter().chain(bound) {
                if just_bound.is_none() && self.line - n <= 2 {
                    just_bound = Some(var.clone());
                }
                if !untyped_vars.contains(&var) {
                    untyped_vars.push(var);
                }
            }
        }
        just_bound
    }

    /// Variables bound to a call in the region above the cursor, nearest first.
    fn call_bindings(&self) -> Vec<CallBinding> {
        let mut call_bindings: Vec<CallBinding> = Vec::new();
        for n in (self.region_start..self.line).rev() {
            if let Some(b) = call_binding(self.line_text(n), self.language) {
                if !call_bindings.iter().any(|c| c.var == b.var) {
                    call_bindings.push(b);
                }
            }
        }
        call_bindings
    }
}

/// Whether the cursor line is part of the imports (see `CursorContext::import_site`).
fn import_site(imports: &[Import], line: u32, before_cursor: &str) -> Option<String> {
    let span = |i: &Import| (i.line, i.line + i.text.matches('\n').count() as u32);
    if let Some(i) = imports.iter().find(|i| (span(i).0..=span(i).1).contains(&line)) {
        // Inside `a::b::{…}` the module is `a::b`; on `a::b::C` it is `a::b`.
        let head = i.text.split('{').next().unwrap_or("");
        let module = head.trim_end().trim_end_matches("::");
        let module = if i.text.contains('{') {
            module
        } else {
            module.rsplit_once("::").map(|(m, _)| m).unwrap_or("")
        };
        return Some(module.to_string());
    }
    let t = before_cursor.trim_start();
    let starts_import =
        ["use ", "pub use ", "import ", "from "].iter().any(|k| t.starts_with(k)) || t.is_empty();
    let next_to_import = imports.iter().any(|i| span(i).1 + 1 == line || span(i).0 == line + 1);
    (starts_import && next_to_import).then(String::new)
}

/// Names used in code that look importable (types, free-function calls,
/// macros) but are neither defined in the file nor imported. Only the module the
/// cursor is in counts: a `mod tests { use …; }` has its own imports.
fn unresolved_names(
    text: &str,
    tree: &Tree,
    line: u32,
    analysis: &Analysis,
    max: usize,
) -> Vec<String> {
    let lang = analysis.language;
    let symbols = &analysis.symbols;
    let lines = Lines::new(text);
    let modules: Vec<(u32, u32)> = symbols
        .iter()
        .filter(|s| s.kind == SymbolKind::Module && s.end_line > s.start_line)
        .map(|s| (s.start_line, s.end_line))
        .collect();
    let scope_of = |n: u32| {
        modules.iter().filter(|(a, b)| *a <= n && n <= *b).min_by_key(|(a, b)| b - a).copied()
    };
    let scope = scope_of(line);
    let imports: Vec<(String, String)> = analysis
        .imports
        .iter()
        .filter(|i| scope_of(i.line) == scope)
        .flat_map(|i| imported_names(lang, &i.text))
        .collect();
    let mut counts: HashMap<&str, (usize, usize)> = HashMap::new();
    for m in ident_re().find_iter(text) {
        let name = m.as_str();
        let rest = text[m.end()..].trim_start();
        let importable = name.starts_with(|c: char| c.is_ascii_uppercase())
            || rest.starts_with('(')
            || rest.starts_with('!');
        let before = &text[..m.start()];
        if !importable || name.len() < 2 || before.ends_with('.') || before.ends_with("::") {
            continue;
        }
        if is_keyword(lang, name)
            || is_std_name(lang, name)
            || scope_of(lines.line(m.start())) != scope
        {
            continue;
        }
        // A macro (`doc!`) is looked up among macros only: `Name!` marks it.
        let name = if rest.starts_with('!') && !rest.starts_with("!=") {
            &text[m.start()..m.end() + (text[m.end()..].len() - rest.len()) + 1]
        } else {
            name
        };
        let e = counts.entry(name).or_insert((0, m.start()));
        e.0 += 1;
    }
    // Defined, imported, or bound locally (`let add = |…|`, parameters) somewhere in the file.
    let mut known: HashSet<&str> = symbols
        .iter()
        .map(|s| s.name.as_str())
        .chain(imports.iter().map(|(n, _)| n.as_str()))
        .collect();
    known.extend(
        local_binding_re()
            .captures_iter(text)
            .filter_map(|c| c.get(1).or(c.get(2)))
            .map(|m| m.as_str()),
    );
    let mut names: Vec<(&str, (usize, usize))> =
        counts.into_iter().filter(|(n, _)| !known.contains(n.trim_end_matches('!'))).collect();
    names.sort_by_key(|(_, (count, first))| (std::cmp::Reverse(*count), *first));
    // Comments and strings mention names too; only code counts.
    names
        .into_iter()
        .filter(|(n, (_, first))| {
            let n = n.trim_end_matches('!');
            let uses = word_positions(&text[*first..], n).map(|i| first + i);
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

/// The cursor in `text` (clamped to the text, on a character boundary) and the byte
/// offsets where its line starts and ends (before the newline).
pub(crate) fn cursor_line(text: &str, cursor: usize) -> (usize, usize, usize) {
    let cursor = text.floor_char_boundary(cursor.min(text.len()));
    let start = patois_types::line_start_at(text, cursor);
    let end = text[cursor..].find('\n').map_or(text.len(), |i| cursor + i);
    (cursor, start, end)
}

/// The text of 1-based line `n`, without its newline.
pub fn nth_line(text: &str, n: u32) -> &str {
    let s = line_start(text, n);
    let e = text[s..].find('\n').map(|i| s + i).unwrap_or(text.len());
    &text[s..e]
}

#[cfg(test)]
mod tests;
