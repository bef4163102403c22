use patois_syntax::{analyze, languages, ChunkLimits, Symbol, SymbolKind};
use std::path::Path;

fn find<'a>(syms: &'a [Symbol], name: &str) -> &'a Symbol {
    syms.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no symbol {name} in {syms:#?}"))
}

#[test]
fn every_registered_language_compiles_its_queries() {
    let names: Vec<_> = languages().iter().map(|l| l.name).collect();
    assert_eq!(names, ["rust", "python", "typescript", "tsx", "javascript", "go"]);
}

#[test]
fn every_definition_capture_names_a_symbol_kind() {
    for lang in languages() {
        for cap in lang.query.capture_names() {
            if let Some(kind) = cap.strip_prefix("definition.") {
                assert!(
                    SymbolKind::named(kind).is_some(),
                    "@{cap} in {}'s tags.scm is not a SymbolKind",
                    lang.name
                );
            }
        }
    }
}

#[test]
fn rust_symbols_scopes_docs_imports_chunks() {
    let src = r#"use crate::store::{Store, Key as K};

/// A point.
/// Two lines of docs.
#[derive(Debug)]
pub struct Point { x: i32 }

impl Point {
    /// Makes one.
    pub fn new(x: i32) -> Self {
        Point { x }
    }
}

fn free() {}
"#;
    let a = analyze(Path::new("src/a.rs"), src, &ChunkLimits::default());
    assert_eq!(a.language, Some("rust"));
    let p = find(&a.symbols, "Point");
    assert_eq!(p.kind, SymbolKind::Struct);
    assert_eq!(p.doc.as_deref(), Some("/// A point.\n/// Two lines of docs."));
    assert_eq!((p.start_line, p.end_line), (6, 6));
    let new = find(&a.symbols, "new");
    assert_eq!(new.kind, SymbolKind::Method);
    assert_eq!(new.scope.as_deref(), Some("Point"));
    assert_eq!(new.signature, "pub fn new(x: i32) -> Self");
    assert_eq!(new.doc.as_deref(), Some("/// Makes one."));
    assert_eq!(find(&a.symbols, "free").kind, SymbolKind::Function);
    assert!(a.symbols.iter().any(|s| s.kind == SymbolKind::Impl && s.name == "Point"));
    assert_eq!(a.imports[0].text, "crate::store::{Store, Key as K}");
    let kinds: Vec<_> = a.chunks.iter().map(|c| (c.kind.as_str(), c.start_line)).collect();
    assert!(kinds.contains(&("impl_item", 8)), "{kinds:?}");
    assert!(kinds.contains(&("function_item", 15)), "{kinds:?}");
}

#[test]
fn big_impl_is_split_into_its_methods() {
    let mut src = String::from("struct S;\nimpl S {\n");
    for i in 0..40 {
        src.push_str(&format!(
            "    fn method_{i}(&self) -> u32 {{\n        let v = {i};\n        v * 2 + 1\n    }}\n"
        ));
    }
    src.push_str("}\n");
    let limits = ChunkLimits { max_bytes: 500, window_lines: 40 };
    let a = analyze(Path::new("s.rs"), &src, &limits);
    let methods: Vec<_> = a.chunks.iter().filter(|c| c.kind == "function_item").collect();
    assert_eq!(methods.len(), 40);
    assert_eq!(methods[3].name.as_deref(), Some("method_3"));
    assert!(a.chunks.iter().all(|c| c.text.len() <= 500), "every chunk within the limit");
}

#[test]
fn python_classes_methods_docstrings_imports() {
    let src = "import os.path\nfrom pkg.store import Store as S\n\nLIMIT = 3\n\nclass Cache:\n    \"\"\"Keeps things.\"\"\"\n\n    def get(self, key):\n        return key\n\ndef helper():\n    pass\n";
    let a = analyze(Path::new("m.py"), src, &ChunkLimits::default());
    let c = find(&a.symbols, "Cache");
    assert_eq!(c.kind, SymbolKind::Class);
    assert_eq!(c.doc.as_deref(), Some("\"\"\"Keeps things.\"\"\""));
    let g = find(&a.symbols, "get");
    assert_eq!(g.scope.as_deref(), Some("Cache"));
    assert_eq!(g.signature, "def get(self, key)");
    assert_eq!(find(&a.symbols, "LIMIT").kind, SymbolKind::Constant);
    let imports: Vec<_> = a.imports.iter().map(|i| i.text.as_str()).collect();
    assert!(
        imports.contains(&"os.path")
            && imports.contains(&"pkg.store")
            && imports.contains(&"Store"),
        "{imports:?}"
    );
    assert!(a.chunks.iter().any(|c| c.kind == "class_definition" && c.start_line == 6));
}

#[test]
fn typescript_and_tsx() {
    let src = "import { Store } from './store';\n\n// Shapes.\nexport interface Shape { area(): number }\n\nexport class Circle implements Shape {\n  area(): number { return 3; }\n}\n\nexport const make = (r: number) => new Circle();\ntype Id = string;\n";
    for path in ["a.ts", "a.tsx"] {
        let a = analyze(Path::new(path), src, &ChunkLimits::default());
        assert_eq!(find(&a.symbols, "Shape").kind, SymbolKind::Interface);
        assert_eq!(find(&a.symbols, "Shape").doc.as_deref(), Some("// Shapes."));
        assert_eq!(find(&a.symbols, "area").scope.as_deref(), Some("Shape"));
        assert_eq!(find(&a.symbols, "Circle").kind, SymbolKind::Class);
        assert_eq!(find(&a.symbols, "make").kind, SymbolKind::Function);
        assert_eq!(find(&a.symbols, "Id").kind, SymbolKind::Type);
        let imports: Vec<_> = a.imports.iter().map(|i| i.text.as_str()).collect();
        assert_eq!(imports, ["Store", "./store"]);
    }
}

#[test]
fn javascript() {
    let src = "import { load } from \"./io.js\";\nclass Repo {\n  open(p) { return p; }\n}\nfunction main() {}\nconst run = async () => {};\n";
    let a = analyze(Path::new("a.mjs"), src, &ChunkLimits::default());
    assert_eq!(find(&a.symbols, "open").scope.as_deref(), Some("Repo"));
    assert_eq!(find(&a.symbols, "main").kind, SymbolKind::Function);
    assert_eq!(find(&a.symbols, "run").kind, SymbolKind::Function);
    let imports: Vec<_> = a.imports.iter().map(|i| i.text.as_str()).collect();
    assert_eq!(imports, ["load", "./io.js"]);
}

#[test]
fn javascript_commonjs_exports_prototype_methods_and_requires() {
    let src = "var Route = require('./route');\nexports.init = function (app) {\n  return app;\n};\nres.send = function send(body) {\n  return this;\n};\nmodule.exports = createApp;\nvar n = 1;\n";
    let a = analyze(Path::new("lib/app.js"), src, &ChunkLimits::default());
    let init = find(&a.symbols, "init");
    assert_eq!((init.kind, init.start_line, init.end_line), (SymbolKind::Function, 2, 4));
    let send = find(&a.symbols, "send");
    assert_eq!((send.kind, send.scope.as_deref()), (SymbolKind::Method, Some("res")));
    assert!(a.symbols.iter().all(|s| s.name != "exports"), "{:#?}", a.symbols);
    let imports: Vec<_> = a.imports.iter().map(|i| i.text.as_str()).collect();
    assert_eq!(imports, ["Route", "./route"]);
    assert!(a.chunks.iter().any(|c| c.kind == "expression_statement"), "{:#?}", a.chunks);
}

#[test]
fn go_methods_get_their_receiver_as_scope() {
    let src = "package store\n\nimport \"fmt\"\n\n// Store keeps values.\ntype Store struct {\n\tm map[string]int\n}\n\nfunc (s *Store) Get(k string) int {\n\treturn s.m[k]\n}\n\nfunc New() *Store { return nil }\n";
    let a = analyze(Path::new("s.go"), src, &ChunkLimits::default());
    let s = find(&a.symbols, "Store");
    assert_eq!(s.kind, SymbolKind::Struct);
    assert_eq!(s.doc.as_deref(), Some("// Store keeps values."));
    let g = find(&a.symbols, "Get");
    assert_eq!((g.kind, g.scope.as_deref()), (SymbolKind::Method, Some("Store")));
    assert_eq!(find(&a.symbols, "New").kind, SymbolKind::Function);
    assert_eq!(a.imports[0].text, "fmt");
}

#[test]
fn unknown_language_falls_back_to_line_windows() {
    let text: String = (1..=100).map(|i| format!("line {i}\n")).collect();
    let a = analyze(Path::new("notes.txt"), &text, &ChunkLimits::default());
    assert_eq!(a.language, None);
    assert!(a.symbols.is_empty());
    let ranges: Vec<_> = a.chunks.iter().map(|c| (c.start_line, c.end_line)).collect();
    assert_eq!(ranges, [(1, 40), (41, 80), (81, 100)]);
    assert!(a.chunks[2].text.starts_with("line 81\n"));
}

#[test]
fn line_table_starts_and_texts() {
    let t = "ab\n\ncd\nlast";
    let l = patois_syntax::Lines::new(t);
    assert_eq!(
        (l.start(1, t), l.start(2, t), l.start(3, t), l.start(4, t), l.start(9, t)),
        (0, 3, 4, 7, 11)
    );
    assert_eq!(
        (l.text(1, t), l.text(2, t), l.text(3, t), l.text(4, t), l.text(9, t)),
        ("ab", "", "cd", "last", "")
    );
    assert_eq!(l.line(5), 3);
}

#[test]
fn code_versus_comments_strings_and_attributes() {
    let src =
        "#[test]\nfn run() {\n    // call store here\n    let s = \"store\";\n    store(s);\n}\n";
    let tree = patois_syntax::parse(patois_syntax::language_named("rust").unwrap(), src).unwrap();
    let at = |needle: &str, nth: usize| src.match_indices(needle).nth(nth).unwrap().0;
    let code = |start: usize, len: usize| patois_syntax::is_code(&tree, start, start + len);
    assert!(!code(at("test", 0), 4), "attribute");
    assert!(!code(at("store", 0), 5), "comment");
    assert!(!code(at("store", 1), 5), "string");
    assert!(code(at("store", 2), 5), "call");
    assert!(code(at("run", 0), 3));
}

#[test]
fn outline_reparses_edits_incrementally_with_the_same_result() {
    let path = Path::new("src/outline_edit.rs");
    let v1 = "use crate::a::B;\n\nfn one() {}\n\nstruct Two;\n";
    let v2 = "use crate::a::B;\n\nfn one() { é }\n\nfn inserted() {}\n\nstruct Two;\n";
    let v3 = "fn three() {}\n";
    for text in [v1, v2, v3, v1] {
        let got = patois_syntax::outline(path, text);
        let cold = analyze(Path::new("src/other_path.rs"), text, &ChunkLimits::default());
        assert_eq!(got.symbols, cold.symbols, "{text}");
        assert_eq!(got.imports, cold.imports);
        assert_eq!(
            got.tree.unwrap().root_node().to_sexp(),
            cold.tree.unwrap().root_node().to_sexp()
        );
    }
}

#[test]
fn references_exclude_bindings_module_segments_and_primitives() {
    let src = "fn f(text: &str) {\n    let add = |w: &mut Writer| store::put(w);\n    let n = helper(text);\n}\n";
    let tree = patois_syntax::parse(patois_syntax::language_named("rust").unwrap(), src).unwrap();
    let reference = |needle: &str| {
        let at = src.find(needle).unwrap();
        patois_syntax::is_reference(&tree, src, at, at + needle.len())
    };
    assert!(!reference("add"), "let binding");
    assert!(!reference("text"), "parameter");
    assert!(!reference("str"), "primitive type");
    assert!(!reference("store"), "module segment");
    assert!(reference("Writer"));
    assert!(reference("put"));
    assert!(reference("helper"));
}

#[test]
fn python_references_exclude_parameters_keywords_and_assignment_targets() {
    let src = "def handle(self, r, **kwargs):\n    a, b = split_pair(r)\n    return Metadata(scheme=a, extra=helper(b))\n";
    let tree = patois_syntax::parse(patois_syntax::language_named("python").unwrap(), src).unwrap();
    // The identifier `name` where it starts `context`.
    let reference = |context: &str, name: &str| {
        let at = src.find(context).unwrap();
        patois_syntax::is_reference(&tree, src, at, at + name.len())
    };
    assert!(!reference("r, **", "r"), "parameter");
    assert!(!reference("kwargs", "kwargs"), "**kwargs");
    assert!(!reference("a, b =", "a"), "assignment target");
    assert!(!reference("b = split", "b"), "assignment target");
    assert!(!reference("scheme", "scheme"), "keyword argument name");
    assert!(reference("r)\n", "r"), "argument");
    assert!(reference("split_pair", "split_pair"));
    assert!(reference("Metadata", "Metadata"));
    assert!(reference("helper", "helper"));
}
