//! Retrieval: for a document and a cursor, the context a colleague would look at —
//! definitions of the symbols around the cursor, similar code, recently edited
//! files, and the commits that shaped this file — ranked by reciprocal rank fusion
//! with per-source caps, cut to a budget, every item with a citation.

mod cursor;
mod words;

pub use cursor::{analyze_cursor, imported_names, line_start, nth_line, CursorContext};
pub use patois_types::{Citation, Item, Score, Source};
pub use words::{is_keyword, is_std_name};

use anyhow::Result;
use patois_index::{ChunkHit, Index, SymbolHit};

use std::collections::{BTreeMap, HashMap, HashSet};

/// A document the editor has open or recently changed.
#[derive(Debug, Clone)]
pub struct RecentDoc {
    pub path: String,
    /// Shared with the editor's copy: listing recent documents copies no text.
    pub text: std::sync::Arc<String>,
    /// 1-based line of the last edit.
    pub edit_line: u32,
}

/// How much context to return: `limit` units as counted by `count`.
pub struct Budget<'a> {
    pub limit: usize,
    pub count: &'a dyn Fn(&str) -> usize,
}

pub use patois_types::chars;

/// A request: the document's current (possibly unsaved) text and the cursor.
pub struct Request<'a> {
    /// Repository-relative path with `/` separators.
    pub path: &'a str,
    pub text: &'a str,
    /// Byte offset of the cursor in `text`.
    pub cursor: usize,
    pub recent: &'a [RecentDoc],
    pub budget: Budget<'a>,
}

/// Per-source caps and fusion weights.
#[derive(Debug, Clone)]
pub struct Options {
    pub max_definitions: usize,
    pub max_similar: usize,
    pub max_recent: usize,
    pub max_history: usize,
    pub rrf_k: f32,
    pub weights: [(Source, f32); 4],
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_definitions: 8,
            max_similar: 5,
            max_recent: 3,
            max_history: 4,
            rrf_k: 10.0,
            weights: [
                (Source::Definition, 1.6),
                (Source::Similar, 1.0),
                (Source::Recent, 0.7),
                (Source::History, 0.5),
            ],
        }
    }
}

/// What a retrieval returned, with the analysis it was based on.
#[derive(Debug)]
pub struct Retrieved {
    pub items: Vec<Item>,
    pub cursor: CursorContext,
}

const MAX_DEF_LINES: u32 = 40;
const MAX_METHODS: usize = 24;

/// Retrieves ranked, de-duplicated context for `req` within its budget.
pub fn retrieve(index: &Index, req: &Request, opts: &Options) -> Result<Retrieved> {
    let cx = analyze_cursor(req.path, req.text, req.cursor);
    let mut lists: Vec<(Source, Vec<Item>)> = vec![
        (Source::Definition, definitions(index, req, &cx, opts.max_definitions)?),
        (Source::Similar, similar(index, req, &cx, opts.max_similar)?),
        (Source::Recent, recent(req, opts.max_recent)),
        (Source::History, history(index, req, &cx, opts.max_history)?),
    ];
    for (source, items) in lists.iter_mut() {
        let w = opts.weights.iter().find(|(s, _)| s == source).map(|(_, w)| *w).unwrap_or(1.0);
        for (rank, it) in items.iter_mut().enumerate() {
            it.score.source_rank = rank;
            it.score.fused = w / (opts.rrf_k + rank as f32 + 1.0);
        }
    }
    let mut all: Vec<Item> = lists.into_iter().flat_map(|(_, v)| v).collect();
    all.sort_by(|a, b| b.score.fused.total_cmp(&a.score.fused));
    let mut out: Vec<Item> = Vec::new();
    let mut used = 0;
    for it in all {
        // A file range already covered by a better item adds nothing.
        let covered = out.iter().any(|o| {
            o.citation.path == it.citation.path
                && o.citation.commit.is_none()
                && it.citation.commit.is_none()
                && o.citation.start_line <= it.citation.start_line
                && it.citation.end_line <= o.citation.end_line
        });
        if covered {
            continue;
        }
        let cost = (req.budget.count)(&it.text) + (req.budget.count)(&it.citation.to_string());
        if used + cost > req.budget.limit {
            continue;
        }
        used += cost;
        out.push(it);
    }
    Ok(Retrieved { items: out, cursor: cx })
}

fn item(
    source: Source,
    citation: Citation,
    title: String,
    text: String,
    source_score: f32,
    reason: String,
) -> Item {
    Item {
        source,
        citation,
        title,
        text,
        score: Score { source_rank: 0, source_score, fused: 0.0, reason },
    }
}

/// The text of `path` lines `start..=end` as the index has it (chunks cover the file).
fn indexed_lines(
    index: &Index,
    cache: &mut HashMap<String, BTreeMap<u32, String>>,
    path: &str,
    start: u32,
    end: u32,
) -> Result<String> {
    if !cache.contains_key(path) {
        let mut lines = BTreeMap::new();
        for c in index.chunks_in_file(path)? {
            for (i, l) in c.text.split('\n').enumerate() {
                let n = c.start_line + i as u32;
                if n <= c.end_line {
                    lines.entry(n).or_insert_with(|| l.to_string());
                }
            }
        }
        cache.insert(path.to_string(), lines);
    }
    let lines = &cache[path];
    Ok((start..=end)
        .map(|n| lines.get(&n).map(String::as_str).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n"))
}

/// Whether `word` occurs in `text` as a whole identifier (not inside a longer one).
pub fn contains_word(text: &str, word: &str) -> bool {
    word_positions(text, word).next().is_some()
}

/// Byte offsets where `word` occurs in `text` as a whole identifier.
pub fn word_positions<'t>(text: &'t str, word: &'t str) -> impl Iterator<Item = usize> + 't {
    text.match_indices(word).map(|(i, _)| i).filter(move |&i| {
        let before =
            text[..i].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let after = text[i + word.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        before && after
    })
}

/// Test code: definitions there are not offered to non-test code.
pub fn is_test_path(path: &str) -> bool {
    match patois_syntax::language_for_path(std::path::Path::new(path)) {
        Some(lang) => lang.tests.matches(path),
        None => path.split('/').rev().skip(1).any(|d| d == "tests" || d == "test"),
    }
}

fn is_type_kind(kind: &str) -> bool {
    matches!(kind, "struct" | "class" | "enum" | "interface" | "trait" | "type" | "union")
}

/// Definitions by name, each name asked of the index once per retrieval.
type Lookups = HashMap<String, Vec<SymbolHit>>;

fn named(index: &Index, lookups: &mut Lookups, name: &str) -> Result<Vec<SymbolHit>> {
    if let Some(hits) = lookups.get(name) {
        return Ok(hits.clone());
    }
    let hits = index.symbols_named(name, 16)?;
    lookups.insert(name.to_string(), hits.clone());
    Ok(hits)
}

/// How many parts of a module path (`crate::store::kv`, `a.b`, `./x/y`) name
/// folders or the file stem of `path`.
fn module_match(path: &str, module: &str) -> usize {
    let stem: Vec<&str> =
        path.trim_end_matches(|c| c != '.').trim_end_matches('.').split('/').collect();
    module
        .split(['.', '/', ':'])
        .filter(|p| !p.is_empty() && !matches!(*p, "crate" | "self" | "super"))
        .filter(|p| stem.contains(p))
        .count()
}

/// Picks among same-named definitions: the one whose path matches the import's
/// module, then the same folder as the document, then the shortest path.
fn best_definition<'h>(
    hits: &'h [SymbolHit],
    module: Option<&str>,
    doc_path: &str,
) -> Option<&'h SymbolHit> {
    let dir = doc_path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let doc_is_test = is_test_path(doc_path);
    hits.iter()
        .filter(|h| {
            h.kind != "impl"
                && h.kind != "field"
                && h.kind != "variant"
                && (doc_is_test || !is_test_path(&h.path))
        })
        .max_by_key(|h| {
            let module_match = module.map(|m| module_match(&h.path, m)).unwrap_or(0);
            let same_dir = h.path.rsplit_once('/').map(|(d, _)| d).unwrap_or("") == dir;
            (module_match, same_dir, is_type_kind(&h.kind), std::cmp::Reverse(h.path.len()))
        })
}

fn definitions(index: &Index, req: &Request, cx: &CursorContext, cap: usize) -> Result<Vec<Item>> {
    // Candidates in priority order: at an import site the names the file lacks;
    // the type of the variable just bound; receiver types; other inferred types;
    // identifiers by distance (called or capitalised first), imported names getting
    // their module as a hint; then the file's other imports.
    let import_of: HashMap<&str, &str> =
        cx.imports.iter().map(|(n, m)| (n.as_str(), m.as_str())).collect();
    let mut lookups = Lookups::new();
    let mut candidates: Vec<(String, String)> = Vec::new();
    // At an import, what the file uses without importing comes first, names
    // under the module being imported from (`use a::b::{…}`) before the others.
    if let Some(module) = &cx.import_site {
        let mut unresolved: Vec<(bool, &String)> = Vec::new();
        for name in &cx.unresolved {
            let in_module = !module.is_empty() && {
                let hits = named(index, &mut lookups, name.trim_end_matches('!'))?;
                best_definition(&hits, Some(module), req.path)
                    .is_some_and(|d| module_match(&d.path, module) > 0)
            };
            unresolved.push((in_module, name));
        }
        unresolved.sort_by_key(|(in_module, _)| !in_module);
        for (_, name) in unresolved {
            candidates.push((name.clone(), "used in this file but not imported".into()));
        }
    }
    // Variables without a written type: what the call that produced them returns,
    // earlier bindings first so that `let b = a.f(); let c = b.g();` chains.
    let mut types = cx.var_types.clone();
    for b in cx.call_bindings.iter().rev() {
        if types.contains_key(&b.var) {
            continue;
        }
        let receiver_type = b.receiver.as_deref().and_then(|r| match r {
            "self" | "this" => cx.self_type.clone(),
            r => types
                .get(r)
                .cloned()
                .or_else(|| r.starts_with(|c: char| c.is_ascii_uppercase()).then(|| r.to_string())),
        });
        if let Some(ty) = return_type(index, &mut lookups, &b.method, receiver_type.as_deref())? {
            types.insert(b.var.clone(), ty);
        }
    }
    // The type of the chain the cursor continues (`index.reader_builder().|`).
    if let Some((start, members)) = &cx.chain {
        let mut ty = match start.as_str() {
            "self" | "this" => cx.self_type.clone(),
            s => types
                .get(s)
                .cloned()
                .or_else(|| s.starts_with(|c: char| c.is_ascii_uppercase()).then(|| s.to_string())),
        };
        // Standard-library calls (`unwrap`, `clone`, `as_ref`) keep the type, near enough.
        for m in members.iter().filter(|m| !is_std_name(cx.language, m)) {
            ty = match ty {
                Some(t) => return_type(index, &mut lookups, m, Some(&t))?,
                None => None,
            };
        }
        if let (Some(t), Some(last)) = (ty, members.last()) {
            candidates.push((t, format!("type of the expression before the cursor (…{last})")));
        }
    }
    let mut inferred: Vec<(&String, (String, String))> = Vec::new();
    for var in &cx.untyped_vars {
        if let (Some(ty), Some(b)) =
            (types.get(var), cx.call_bindings.iter().find(|b| &b.var == var))
        {
            inferred.push((var, (ty.clone(), format!("type of {var} (returned by {})", b.method))));
        }
    }
    // A variable bound just above the cursor is what the next line most likely uses.
    if let Some(i) = inferred.iter().position(|(var, _)| cx.just_bound.as_ref() == Some(*var)) {
        candidates.push(inferred.remove(i).1);
    }
    for r in &cx.receivers {
        let why = if Some(r) == cx.self_type.as_ref() {
            "type of self"
        } else {
            "receiver of a method call near the cursor"
        };
        candidates.push((r.clone(), why.to_string()));
    }
    candidates.extend(inferred.into_iter().map(|(_, c)| c));
    for id in &cx.idents {
        let why = match import_of.get(id.name.as_str()) {
            Some(m) => format!("imported from {m}"),
            None => format!("used {} line(s) from the cursor", id.distance),
        };
        candidates.push((id.name.clone(), why));
    }
    // Then what the file imports but the nearby code does not use (yet).
    for (name, module) in &cx.imports {
        candidates.push((name.clone(), format!("imported from {module}")));
    }
    let mut seen_names = HashSet::new();
    let mut out = Vec::new();
    let mut cache = HashMap::new();
    let mut seen_defs = HashSet::new();
    // Types known near the cursor: a method name defined on one of them means that one.
    let known_types: HashSet<&str> =
        types.values().chain(&cx.receivers).chain(&cx.self_type).map(String::as_str).collect();
    for (name, why) in candidates {
        if out.len() >= cap {
            break;
        }
        if !seen_names.insert(name.clone()) {
            continue;
        }
        let imported_locally = import_of.get(name.as_str()).is_some_and(|m| !is_std_module(m));
        if is_std_name(cx.language, &name) && !imported_locally {
            continue;
        }
        // `name!` is a macro use: only macro definitions answer it.
        let (lookup, macro_use) = match name.strip_suffix('!') {
            Some(n) => (n, true),
            None => (name.as_str(), false),
        };
        let hits: Vec<SymbolHit> = named(index, &mut lookups, lookup)?
            .into_iter()
            .filter(|h| {
                h.path != req.path && h.kind != "module" && (!macro_use || h.kind == "macro")
            })
            .collect();
        let own = hits.iter().find(|h| h.scope.as_deref().is_some_and(|s| known_types.contains(s)));
        let Some(def) =
            own.or_else(|| best_definition(&hits, import_of.get(name.as_str()).copied(), req.path))
        else {
            continue;
        };
        if !seen_defs.insert((def.path.clone(), def.start_line)) {
            continue;
        }
        let mut text;
        let end_line;
        if is_type_kind(&def.kind) {
            end_line = def.end_line.min(def.start_line + MAX_DEF_LINES - 1);
            text = indexed_lines(index, &mut cache, &def.path, def.start_line, end_line)?;
            if let Some(doc) = &def.doc {
                text = format!("{doc}\n{text}");
            }
            let mut methods: Vec<SymbolHit> = index
                .symbols_in_scope(&def.name, 200)?
                .into_iter()
                .filter(|m| matches!(m.kind.as_str(), "method" | "function"))
                .collect();
            methods.sort_by(|a, b| (&a.path, a.start_line).cmp(&(&b.path, b.start_line)));
            if !methods.is_empty() {
                text.push_str("\n// methods:");
                for m in methods.iter().take(MAX_METHODS) {
                    text.push_str(&format!(
                        "\n{}  // {}:{}",
                        m.signature.replace('\n', " "),
                        m.path,
                        m.start_line
                    ));
                }
            }
        } else {
            end_line = def.end_line.min(def.start_line + MAX_DEF_LINES / 2 - 1);
            text = indexed_lines(index, &mut cache, &def.path, def.start_line, end_line)?;
            if let Some(doc) = &def.doc {
                text = format!("{doc}\n{text}");
            }
        }
        let title = match &def.scope {
            Some(s) if !is_type_kind(&def.kind) => format!("{s}::{}", def.name),
            _ => def.name.clone(),
        };
        out.push(item(
            Source::Definition,
            Citation {
                path: def.path.clone(),
                start_line: def.start_line,
                end_line,
                commit: None,
                pr: None,
            },
            format!("{} {title}", def.kind),
            text,
            1.0,
            why,
        ));
    }
    Ok(out)
}

fn is_std_module(module: &str) -> bool {
    let root = module.split([':', '.', '/']).next().unwrap_or("");
    matches!(root, "std" | "core" | "alloc")
}

/// The type a function or method returns (or a field has), from its signature in
/// the index: the first named type after the parameters that is not a wrapper
/// (`Result<Foo>` is `Foo`).
/// With a receiver type, its own method wins; without, all definitions must agree.
fn return_type(
    index: &Index,
    lookups: &mut Lookups,
    method: &str,
    receiver: Option<&str>,
) -> Result<Option<String>> {
    let hits = named(index, lookups, method)?;
    let returned = |h: &SymbolHit| -> Option<String> {
        // A field's type follows its `:`.
        let ret = if h.kind == "field" {
            h.signature.split_once(':')?.1
        } else {
            returns_part(&h.signature, method)?
        };
        let mut names = ret
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with(|c: char| c.is_ascii_uppercase()) && w.len() > 1);
        let name = names.find(|w| !WRAPPERS.contains(w))?;
        if name == "Self" {
            return h.scope.clone();
        }
        Some(name.to_string())
    };
    let methods: Vec<&SymbolHit> = hits
        .iter()
        .filter(|h| matches!(h.kind.as_str(), "function" | "method" | "field"))
        .collect();
    if let Some(own) = receiver.and_then(|r| methods.iter().find(|h| h.scope.as_deref() == Some(r)))
    {
        return Ok(returned(own));
    }
    let types: HashSet<Option<String>> = methods.iter().map(|h| returned(h)).collect();
    Ok(if types.len() == 1 { types.into_iter().next().flatten() } else { None })
}

/// What follows a function's parameter list in its signature, without `->`/`:`:
/// `-> Result<Foo> where …` (Rust, Python), `: Foo` (TypeScript), `(*Foo, error)` (Go).
fn returns_part<'s>(signature: &'s str, name: &str) -> Option<&'s str> {
    let at = signature.match_indices(name).map(|(i, _)| i + name.len()).find(|&i| {
        let rest = signature[i..].trim_start();
        rest.starts_with('(') || rest.starts_with('<')
    })?;
    // The parameter list: the first `(` after the name to its matching `)`.
    let open = at + signature[at..].find('(')?;
    let mut depth = 0;
    let close = signature[open..].char_indices().find_map(|(i, c)| {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        (depth == 0).then_some(open + i)
    })?;
    let ret = signature[close + 1..].trim_start();
    let ret = ret.strip_prefix("->").or_else(|| ret.strip_prefix(':')).unwrap_or(ret);
    Some(ret.split(" where").next().unwrap_or(ret).trim())
}

/// Types that wrap the one a function really returns.
const WRAPPERS: &[&str] = &[
    "Result",
    "Option",
    "Box",
    "Arc",
    "Rc",
    "Vec",
    "Cow",
    "Ref",
    "RefMut",
    "MutexGuard",
    "RwLockReadGuard",
    "RwLockWriteGuard",
    "Pin",
    "Future",
    "Promise",
    "List",
    "Optional",
    "Iterator",
    "IntoIterator",
    "Some",
    "Ok",
];

fn similar(index: &Index, req: &Request, cx: &CursorContext, cap: usize) -> Result<Vec<Item>> {
    let (rs, re) = cx.region;
    let keep = |h: &ChunkHit| h.path != req.path || h.end_line < rs || h.start_line > re;
    Ok(index
        .search_chunks(&cx.query_text, cap, &keep)?
        .into_iter()
        .map(|h| {
            let title = h.name.clone().unwrap_or_else(|| h.kind.clone());
            item(
                Source::Similar,
                Citation {
                    path: h.path,
                    start_line: h.start_line,
                    end_line: h.end_line,
                    commit: None,
                    pr: None,
                },
                title,
                h.text,
                h.score,
                "BM25 over the lines above the cursor".into(),
            )
        })
        .collect())
}

fn recent(req: &Request, cap: usize) -> Vec<Item> {
    req.recent
        .iter()
        .filter(|d| d.path != req.path)
        .take(cap)
        .map(|d| {
            let total = d.text.lines().count().max(1) as u32;
            let start = d.edit_line.saturating_sub(10).max(1);
            let end = (d.edit_line + 10).min(total);
            let text = (start..=end).map(|n| nth_line(&d.text, n)).collect::<Vec<_>>().join("\n");
            item(
                Source::Recent,
                Citation {
                    path: d.path.clone(),
                    start_line: start,
                    end_line: end,
                    commit: None,
                    pr: None,
                },
                d.path.clone(),
                text,
                1.0,
                format!("edited recently (line {})", d.edit_line),
            )
        })
        .collect()
}

fn history(index: &Index, req: &Request, cx: &CursorContext, cap: usize) -> Result<Vec<Item>> {
    let mut ids: Vec<(String, String)> = Vec::new();
    // The commits that last changed the enclosing function come first.
    if let Some((s, e)) = cx.enclosing {
        if let Ok(Some(repo)) = patois_vcs::Repo::discover(index.root()) {
            if let Ok(blamed) = repo.blame_lines(req.path, Some(req.text), (s, e)) {
                for id in blamed {
                    ids.push((id, format!("last changed lines {s}-{e} (the enclosing function)")));
                }
            }
        }
    }
    for c in index.commits_touching(req.path, cap)? {
        ids.push((c.id, "touched this file".into()));
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (id, why) in ids {
        if out.len() >= cap || !seen.insert(id.clone()) {
            continue;
        }
        let Some(c) = index.commit(&id)? else { continue };
        let mut text = format!(
            "commit {} by {}\n{}",
            &c.id[..c.id.len().min(10)],
            c.author,
            c.message.trim_end()
        );
        if let Some(pr) = c.pr.and_then(|n| index.pr(n).ok().flatten()) {
            text.push_str(&format!(
                "\n\nPR #{}: {}\n{}",
                pr.number,
                pr.title,
                truncate(&pr.text, 600)
            ));
        }
        let changed = c
            .files
            .iter()
            .find(|f| f.path == req.path)
            .map(|f| format!(" (+{} -{})", f.added, f.removed))
            .unwrap_or_default();
        out.push(item(
            Source::History,
            Citation {
                path: req.path.to_string(),
                start_line: cx.enclosing.map(|e| e.0).unwrap_or(1),
                end_line: cx.enclosing.map(|e| e.1).unwrap_or(1),
                commit: Some(c.id.clone()),
                pr: c.pr,
            },
            format!("{}{changed}", c.summary),
            text,
            c.time as f32,
            why,
        ));
    }
    Ok(out)
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

#[cfg(test)]
mod tests {
    use super::returns_part;

    #[test]
    fn return_types_in_four_languages() {
        assert_eq!(returns_part("pub fn reader(&self, f: impl Fn(u32) -> u8) -> crate::Result<Reader> where T: Send", "reader"), Some("crate::Result<Reader>"));
        assert_eq!(returns_part("def reader(self, n: int) -> Reader", "reader"), Some("Reader"));
        assert_eq!(
            returns_part("reader(opts: Opts): Promise<Reader>", "reader"),
            Some("Promise<Reader>")
        );
        assert_eq!(
            returns_part("func (s *Store) Reader(n int) (*Reader, error)", "Reader"),
            Some("(*Reader, error)")
        );
        assert_eq!(
            returns_part("fn first<T>(xs: &[T]) -> Option<&T>", "first"),
            Some("Option<&T>")
        );
        assert_eq!(returns_part("fn other() -> u8", "reader"), None);
    }
}
