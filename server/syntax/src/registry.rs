//! The language registry, read from `grammars/registry.toml`.

use serde::Deserialize;
use std::collections::HashSet;
use std::path::Path;
use std::sync::OnceLock;
use tree_sitter::Query;

const REGISTRY: &str = include_str!("../../../grammars/registry.toml");

/// A language patois can parse, with its compiled queries.
pub struct Language {
    pub name: &'static str,
    pub extensions: Vec<String>,
    pub line_comment: &'static str,
    pub ts: tree_sitter::Language,
    /// `tags.scm` and `chunks.scm` compiled as one query, so a file is traversed once.
    pub query: Query,
    /// From `language.toml`: words that are never a name the repository defines.
    pub keywords: HashSet<String>,
    /// From `language.toml`: names the standard library defines.
    pub std_names: HashSet<String>,
    /// From `language.toml`: what makes a path a test file.
    pub tests: TestPaths,
    /// From `language.toml`: where patois treats the language differently.
    pub rules: Rules,
}

/// How a language reads, where patois treats languages differently (`[rules]` in its
/// `language.toml`, where each is explained). All false for text in no known language.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    pub semicolons: bool,
    pub macros: bool,
    pub scoped_functions_are_methods: bool,
    pub use_trees: bool,
    pub docstrings: bool,
}

/// The rules of the language named `name` (a registry name); all false for none.
pub fn rules_of(name: Option<&str>) -> Rules {
    name.and_then(language_named).map(|l| l.rules).unwrap_or_default()
}

/// What makes a path a test file in a language.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TestPaths {
    pub dirs: Vec<String>,
    pub name_prefixes: Vec<String>,
    pub name_suffixes: Vec<String>,
    pub name_contains: Vec<String>,
}

impl TestPaths {
    /// Whether `path` (`/`-separated, relative to the repository) is a test file.
    pub fn matches(&self, path: &str) -> bool {
        let mut parts: Vec<&str> = path.split('/').collect();
        let name = parts.pop().unwrap_or(path);
        parts.iter().any(|d| self.dirs.iter().any(|t| t == d))
            || self.name_prefixes.iter().any(|p| name.starts_with(p.as_str()))
            || self.name_suffixes.iter().any(|p| name.ends_with(p.as_str()))
            || self.name_contains.iter().any(|p| name.contains(p.as_str()))
    }
}

/// `grammars/<queries>/language.toml`.
#[derive(Deserialize)]
struct LanguageData {
    keywords: HashSet<String>,
    std_names: HashSet<String>,
    tests: TestPaths,
    rules: Rules,
}

impl std::fmt::Debug for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Language").field("name", &self.name).finish()
    }
}

#[derive(Deserialize)]
struct RegistryFile {
    language: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    name: String,
    grammar: String,
    extensions: Vec<String>,
    queries: String,
    line_comment: String,
}

fn grammar(name: &str) -> tree_sitter::Language {
    match name {
        "rust" => tree_sitter_rust::LANGUAGE.into(),
        "python" => tree_sitter_python::LANGUAGE.into(),
        "typescript" => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
        "tsx" => tree_sitter_typescript::LANGUAGE_TSX.into(),
        "javascript" => tree_sitter_javascript::LANGUAGE.into(),
        "go" => tree_sitter_go::LANGUAGE.into(),
        other => panic!("grammars/registry.toml names grammar `{other}`, which is not linked into patois-syntax"),
    }
}

fn query_source(folder: &str, kind: &str) -> &'static str {
    match (folder, kind) {
        ("rust", "tags") => include_str!("../../../grammars/rust/tags.scm"),
        ("rust", "chunks") => include_str!("../../../grammars/rust/chunks.scm"),
        ("python", "tags") => include_str!("../../../grammars/python/tags.scm"),
        ("python", "chunks") => include_str!("../../../grammars/python/chunks.scm"),
        ("typescript", "tags") => include_str!("../../../grammars/typescript/tags.scm"),
        ("typescript", "chunks") => include_str!("../../../grammars/typescript/chunks.scm"),
        ("javascript", "tags") => include_str!("../../../grammars/javascript/tags.scm"),
        ("javascript", "chunks") => include_str!("../../../grammars/javascript/chunks.scm"),
        ("go", "tags") => include_str!("../../../grammars/go/tags.scm"),
        ("go", "chunks") => include_str!("../../../grammars/go/chunks.scm"),
        _ => panic!("grammars/{folder}/{kind}.scm is not embedded in patois-syntax"),
    }
}

fn language_data(folder: &str) -> LanguageData {
    let text = match folder {
        "rust" => include_str!("../../../grammars/rust/language.toml"),
        "python" => include_str!("../../../grammars/python/language.toml"),
        "typescript" => include_str!("../../../grammars/typescript/language.toml"),
        "javascript" => include_str!("../../../grammars/javascript/language.toml"),
        "go" => include_str!("../../../grammars/go/language.toml"),
        _ => panic!("grammars/{folder}/language.toml is not embedded in patois-syntax"),
    };
    toml::from_str(text)
        .unwrap_or_else(|e| panic!("grammars/{folder}/language.toml is not valid: {e}"))
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// All registered languages. The queries are compiled once; a query that does not
/// compile against its grammar is a build defect, caught by this crate's tests.
pub fn languages() -> &'static [Language] {
    static LANGS: OnceLock<Vec<Language>> = OnceLock::new();
    LANGS.get_or_init(|| {
        let file: RegistryFile =
            toml::from_str(REGISTRY).expect("grammars/registry.toml is valid TOML");
        file.language
            .into_iter()
            .map(|e| {
                let ts = grammar(&e.grammar);
                for kind in ["tags", "chunks"] {
                    if let Err(err) = Query::new(&ts, query_source(&e.queries, kind)) {
                        panic!(
                            "grammars/{}/{kind}.scm does not compile for {}: {err}",
                            e.queries, e.name
                        );
                    }
                }
                let source = format!(
                    "{}\n{}",
                    query_source(&e.queries, "tags"),
                    query_source(&e.queries, "chunks")
                );
                let query = Query::new(&ts, &source).expect("each part compiled alone");
                let data = language_data(&e.queries);
                Language {
                    keywords: data.keywords,
                    std_names: data.std_names,
                    tests: data.tests,
                    rules: data.rules,
                    query,
                    name: leak(e.name),
                    extensions: e.extensions,
                    line_comment: leak(e.line_comment),
                    ts,
                }
            })
            .collect()
    })
}

/// The language of a file, from its extension.
pub fn language_for_path(path: &Path) -> Option<&'static Language> {
    let ext = path.extension()?.to_str()?;
    languages().iter().find(|l| l.extensions.iter().any(|e| e == ext))
}

/// A language by its registry name.
pub fn language_named(name: &str) -> Option<&'static Language> {
    languages().iter().find(|l| l.name == name)
}
