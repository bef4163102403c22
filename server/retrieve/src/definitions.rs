//! The definitions source: the symbols a colleague would look up at the cursor — names
//! the file uses without importing, the type of the expression being continued, receiver
//! and inferred types, nearby identifiers, imports — each found in the index and shown
//! with its signature (types with their methods).

use crate::cursor::CursorContext;
use crate::fusion::item;
use crate::similar::CoUsed;
use crate::Result;
use crate::{is_std_name, is_test_path, Citation, Item, Request, Source};
use patois_index::{Index, SymbolHit};
use patois_syntax::SymbolKind;
use std::collections::{BTreeMap, HashMap, HashSet};

const MAX_DEF_LINES: u32 = 40;
const MAX_METHODS: usize = 24;

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
            h.kind != SymbolKind::Impl
                && !h.kind.is_member()
                && (doc_is_test || !is_test_path(&h.path))
        })
        .max_by_key(|h| {
            let module_match = module.map(|m| module_match(&h.path, m)).unwrap_or(0);
            let same_dir = h.path.rsplit_once('/').map(|(d, _)| d).unwrap_or("") == dir;
            (module_match, same_dir, h.kind.is_type(), std::cmp::Reverse(h.path.len()))
        })
}

pub(crate) fn definitions(
    index: &Index,
    req: &Request,
    cx: &CursorContext,
    co_used: &[CoUsed],
    cap: usize,
) -> Result<Vec<Item>> {
    let mut lookups = Lookups::new();
    let types = inferred_types(index, cx, &mut lookups)?;
    let candidates = candidates(index, req, cx, co_used, &types, &mut lookups)?;
    let mut import_of: HashMap<&str, &str> =
        cx.imports.iter().map(|(n, m)| (n.as_str(), m.as_str())).collect();
    // A name used through a module path (`size_hint::add`) is looked for in that module; one
    // used through a type (`Store::open`) is that type's.
    let mut qualifying_types = Vec::new();
    let qualified = cx.idents.iter().map(|i| (&i.name, &i.qualifier));
    for (name, qualifier) in qualified.chain(co_used.iter().map(|u| (&u.name, &u.qualifier))) {
        match qualifier.as_deref() {
            Some(q) if q.starts_with(|c: char| c.is_ascii_uppercase()) => qualifying_types.push(q),
            Some(q) if !is_std_module(q) && !matches!(q, "crate" | "self" | "super") => {
                import_of.entry(name.as_str()).or_insert(q);
            }
            _ => {}
        }
    }
    // Types known near the cursor: a method name defined on one of them means that one.
    let known_types: HashSet<&str> = types
        .values()
        .chain(&cx.receivers)
        .chain(&cx.self_type)
        .map(String::as_str)
        .chain(qualifying_types)
        .collect();
    let mut seen_names = HashSet::new();
    let mut seen_defs = HashSet::new();
    let mut lines = HashMap::new();
    let mut out = Vec::new();
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
                h.path != req.path
                    && h.kind != SymbolKind::Module
                    && (!macro_use || h.kind == SymbolKind::Macro)
            })
            .collect();
        let own = hits.iter().find(|h| h.scope.as_deref().is_some_and(|s| known_types.contains(s)));
        let Some(def) =
            own.or_else(|| best_definition(&hits, import_of.get(name.as_str()).copied(), req.path))
        else {
            continue;
        };
        if seen_defs.insert((def.path.clone(), def.start_line)) {
            out.push(definition_item(index, &mut lines, def, why)?);
        }
    }
    Ok(out)
}

/// The names to look up, best first, each with why: at an import site the names the file
/// lacks; the type of the expression the cursor continues; the type of the variable just
/// bound; receiver types; other inferred types; identifiers by distance (imported ones
/// with their module as a hint); then the file's other imports.
fn candidates(
    index: &Index,
    req: &Request,
    cx: &CursorContext,
    co_used: &[CoUsed],
    types: &HashMap<String, String>,
    lookups: &mut Lookups,
) -> Result<Vec<(String, String)>> {
    let mut candidates = import_site_candidates(index, req, cx, lookups)?;
    if let Some(c) = chain_candidate(index, cx, types, lookups)? {
        candidates.push(c);
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
    let import_of: HashMap<&str, &str> =
        cx.imports.iter().map(|(n, m)| (n.as_str(), m.as_str())).collect();
    for id in &cx.idents {
        let why = match import_of.get(id.name.as_str()) {
            Some(m) => format!("imported from {m}"),
            None => format!("used {} line(s) from the cursor", id.distance),
        };
        candidates.push((id.name.clone(), why));
    }
    // What code like this calls, then what the file imports but does not use nearby (yet).
    for u in co_used {
        candidates.push((u.name.clone(), format!("called by similar code at {}", u.at)));
    }
    for (name, module) in &cx.imports {
        candidates.push((name.clone(), format!("imported from {module}")));
    }
    Ok(candidates)
}

/// At an import, what the file uses without importing, names under the module being
/// imported from (`use a::b::{…}`) before the others.
fn import_site_candidates(
    index: &Index,
    req: &Request,
    cx: &CursorContext,
    lookups: &mut Lookups,
) -> Result<Vec<(String, String)>> {
    let Some(module) = &cx.import_site else { return Ok(Vec::new()) };
    let mut unresolved: Vec<(bool, &String)> = Vec::new();
    for name in &cx.unresolved {
        let in_module = !module.is_empty() && {
            let hits = named(index, lookups, name.trim_end_matches('!'))?;
            best_definition(&hits, Some(module), req.path)
                .is_some_and(|d| module_match(&d.path, module) > 0)
        };
        unresolved.push((in_module, name));
    }
    unresolved.sort_by_key(|(in_module, _)| !in_module);
    Ok(unresolved
        .into_iter()
        .map(|(_, name)| (name.clone(), "used in this file but not imported".into()))
        .collect())
}

/// The written types of variables, plus those of variables bound to a call: what the
/// call returns, earlier bindings first so that `let b = a.f(); let c = b.g();` chains.
fn inferred_types(
    index: &Index,
    cx: &CursorContext,
    lookups: &mut Lookups,
) -> Result<HashMap<String, String>> {
    let mut types = cx.var_types.clone();
    for b in cx.call_bindings.iter().rev() {
        if types.contains_key(&b.var) {
            continue;
        }
        let receiver_type = b.receiver.as_deref().and_then(|r| type_of(r, cx, &types));
        if let Some(ty) = return_type(index, lookups, &b.method, receiver_type.as_deref())? {
            types.insert(b.var.clone(), ty);
        }
    }
    Ok(types)
}

/// The type of a variable, `self`/`this`, or a capitalised name (itself a type).
fn type_of(name: &str, cx: &CursorContext, types: &HashMap<String, String>) -> Option<String> {
    match name {
        "self" | "this" => cx.self_type.clone(),
        n => types
            .get(n)
            .cloned()
            .or_else(|| n.starts_with(|c: char| c.is_ascii_uppercase()).then(|| n.to_string())),
    }
}

/// The type of the chain the cursor continues (`index.reader_builder().|`).
fn chain_candidate(
    index: &Index,
    cx: &CursorContext,
    types: &HashMap<String, String>,
    lookups: &mut Lookups,
) -> Result<Option<(String, String)>> {
    let Some((start, members)) = &cx.chain else { return Ok(None) };
    let mut ty = type_of(start, cx, types);
    // Standard-library calls (`unwrap`, `clone`, `as_ref`) keep the type, near enough.
    for m in members.iter().filter(|m| !is_std_name(cx.language, m)) {
        ty = match ty {
            Some(t) => return_type(index, lookups, m, Some(&t))?,
            None => None,
        };
    }
    Ok(match (ty, members.last()) {
        (Some(t), Some(last)) => {
            Some((t, format!("type of the expression before the cursor (…{last})")))
        }
        _ => None,
    })
}

/// A definition as context: its lines (a type's also list its methods' signatures).
fn definition_item(
    index: &Index,
    lines: &mut HashMap<String, BTreeMap<u32, String>>,
    def: &SymbolHit,
    why: String,
) -> Result<Item> {
    let max_lines = if def.kind.is_type() { MAX_DEF_LINES } else { MAX_DEF_LINES / 2 };
    let end_line = def.end_line.min(def.start_line + max_lines - 1);
    let mut text = indexed_lines(index, lines, &def.path, def.start_line, end_line)?;
    if let Some(doc) = &def.doc {
        text = format!("{doc}\n{text}");
    }
    if def.kind.is_type() {
        let mut methods: Vec<SymbolHit> = index
            .symbols_in_scope(&def.name, 200)?
            .into_iter()
            .filter(|m| m.kind.is_callable())
            .collect();
        methods.sort_by(|a, b| (&a.path, a.start_line).cmp(&(&b.path, b.start_line)));
        if !methods.is_empty() {
            text.push_str("\n// methods:");
            for m in methods.iter().take(MAX_METHODS) {
                let signature = m.signature.replace('\n', " ");
                text.push_str(&format!("\n{signature}  // {}:{}", m.path, m.start_line));
            }
        }
    }
    let title = match &def.scope {
        Some(s) if !def.kind.is_type() => format!("{s}::{}", def.name),
        _ => def.name.clone(),
    };
    let citation = Citation {
        path: def.path.clone(),
        start_line: def.start_line,
        end_line,
        commit: None,
        pr: None,
    };
    Ok(item(Source::Definition, citation, format!("{} {title}", def.kind), text, 1.0, why))
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
        let ret = if h.kind == SymbolKind::Field {
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
    let methods: Vec<&SymbolHit> =
        hits.iter().filter(|h| h.kind.is_callable() || h.kind == SymbolKind::Field).collect();
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
