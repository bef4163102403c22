//! Records and their literals: the field a line declares (a Rust struct's field, a Python
//! dataclass's field) and the Rust struct literals that do not set a given field yet.

use crate::{language_for_path, parse};
use std::path::Path;
use tree_sitter::{Node, Tree};

/// A field declared in a record type.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDecl {
    /// The record type's name.
    pub type_name: String,
    pub field: String,
    /// The field's declared type, as written (`Option<String>`).
    pub ty: String,
    pub kind: RecordKind,
    /// The field's place among the type's fields (0-based).
    pub position: usize,
    /// The type's fields, this one included.
    pub fields: usize,
    /// The field declared just before it; `None` when it is the first.
    pub previous: Option<String>,
    /// Whether a field of the type has a default value (Python), so that constructor calls
    /// may pass fewer arguments than there are fields.
    pub any_default: bool,
}

/// Where a record's fields are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// A Rust `struct` with named fields: set in struct literals (`Name { a, b: 1 }`).
    RustStruct,
    /// A Python `@dataclass`: set by calling the class, fields in order.
    Dataclass,
}

/// Where a literal lacking a field gets it: insert `text` at byte `at` of line `line`
/// (1-based, of the text searched).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldInsert {
    pub line: u32,
    pub at: usize,
    pub text: String,
}

pub(crate) fn text_of<'a>(node: Node<'_>, text: &'a str) -> &'a str {
    &text[node.byte_range()]
}

/// The field that line `line` (1-based) of `text` declares, when it declares one.
pub fn field_declared_at(path: &Path, text: &str, line: u32) -> Option<FieldDecl> {
    let lang = language_for_path(path)?;
    let tree = parse(lang, text)?;
    let node = node_at_line(&tree, text, line)?;
    match lang.name {
        "rust" => rust_field(node, text),
        "python" => dataclass_field(node, text),
        _ => None,
    }
}

/// The node at the first character of line `line` (1-based) of `text` past its
/// indentation.
pub(crate) fn node_at_line<'t>(tree: &'t Tree, text: &str, line: u32) -> Option<Node<'t>> {
    let start = crate::Lines::new(text).start(line, text);
    let rest = &text[start..];
    let at = start + rest.len() - rest.trim_start_matches([' ', '\t']).len();
    tree.root_node().descendant_for_byte_range(at, at)
}

/// The nearest ancestor of `node` (itself included) of `kind`.
pub(crate) fn ancestor<'t>(node: Node<'t>, kind: &str) -> Option<Node<'t>> {
    let mut n = Some(node);
    while let Some(x) = n {
        if x.kind() == kind {
            return Some(x);
        }
        n = x.parent();
    }
    None
}

fn rust_field(node: Node<'_>, text: &str) -> Option<FieldDecl> {
    let decl = ancestor(node, "field_declaration")?;
    let list = decl.parent().filter(|p| p.kind() == "field_declaration_list")?;
    let item = list.parent().filter(|p| p.kind() == "struct_item")?;
    let mut cursor = list.walk();
    let fields: Vec<Node> =
        list.named_children(&mut cursor).filter(|c| c.kind() == "field_declaration").collect();
    let position = fields.iter().position(|f| *f == decl)?;
    let name_of = |f: &Node| f.child_by_field_name("name").map(|n| text_of(n, text).to_string());
    Some(FieldDecl {
        type_name: text_of(item.child_by_field_name("name")?, text).to_string(),
        field: name_of(&decl)?,
        ty: decl.child_by_field_name("type").map_or("", |t| text_of(t, text)).to_string(),
        kind: RecordKind::RustStruct,
        position,
        fields: fields.len(),
        previous: position.checked_sub(1).and_then(|p| name_of(&fields[p])),
        any_default: false,
    })
}

/// A class body's annotated names (`name: T` or `name: T = v`), with whether each has a
/// value, and the annotation.
fn annotated_names<'t>(body: Node<'t>, text: &str) -> Vec<(Node<'t>, String, bool, String)> {
    let mut cursor = body.walk();
    let statements: Vec<Node> = body.named_children(&mut cursor).collect();
    statements
        .into_iter()
        .filter_map(|s| {
            let a = s.named_child(0).filter(|a| a.kind() == "assignment")?;
            let ty = text_of(a.child_by_field_name("type")?, text).to_string();
            let left = a.child_by_field_name("left").filter(|l| l.kind() == "identifier")?;
            let name = text_of(left, text).to_string();
            Some((s, name, a.child_by_field_name("right").is_some(), ty))
        })
        .collect()
}

fn dataclass_field(node: Node<'_>, text: &str) -> Option<FieldDecl> {
    let statement = ancestor(node, "expression_statement")?;
    let body = statement.parent().filter(|p| p.kind() == "block")?;
    let class = body.parent().filter(|p| p.kind() == "class_definition")?;
    let decorated = class.parent().filter(|p| p.kind() == "decorated_definition")?;
    let mut cursor = decorated.walk();
    let is_dataclass = decorated
        .named_children(&mut cursor)
        .any(|d| d.kind() == "decorator" && text_of(d, text).contains("dataclass"));
    if !is_dataclass {
        return None;
    }
    let fields = annotated_names(body, text);
    let position = fields.iter().position(|f| f.0 == statement)?;
    Some(FieldDecl {
        type_name: text_of(class.child_by_field_name("name")?, text).to_string(),
        field: fields[position].1.clone(),
        ty: fields[position].3.clone(),
        kind: RecordKind::Dataclass,
        position,
        fields: fields.len(),
        previous: position.checked_sub(1).map(|p| fields[p].1.clone()),
        any_default: fields.iter().any(|f| f.2),
    })
}

/// The Rust struct literals of `decl`'s type in `text` that neither set its field nor take
/// the rest from another value (`..base`), each with the insertion that sets it: `field`
/// when a binding of that name precedes the literal in its function, else the empty value
/// of its type (`empty_value`);
/// in declaration order (after the previous field's initializer, or before the first when
/// the field is the first; else at the end), on a line of its own when the literal spreads
/// over lines. `Self { .. }` counts inside `impl Type`.
pub fn literals_lacking(path: &Path, text: &str, decl: &FieldDecl) -> Vec<FieldInsert> {
    let Some(lang) = language_for_path(path).filter(|l| l.name == "rust") else {
        return Vec::new();
    };
    let Some(tree) = parse(lang, text) else { return Vec::new() };
    let mut out = Vec::new();
    visit(&tree, &mut |node| {
        if node.kind() != "struct_expression" || !names(node, text, &decl.type_name) {
            return;
        }
        if let Some(insert) = insertion(node, text, decl) {
            out.push(insert);
        }
    });
    out
}

/// Calls `f` on every node of `tree`, in order.
pub(crate) fn visit<'t>(tree: &'t Tree, f: &mut dyn FnMut(Node<'t>)) {
    let mut cursor = tree.walk();
    loop {
        f(cursor.node());
        if cursor.goto_first_child() || cursor.goto_next_sibling() {
            continue;
        }
        loop {
            if !cursor.goto_parent() {
                return;
            }
            if cursor.goto_next_sibling() {
                break;
            }
        }
    }
}

/// Whether the struct expression `node` builds a `type_name` (by name, by path ending in
/// it, or as `Self` inside its `impl`).
fn names(node: Node<'_>, text: &str, type_name: &str) -> bool {
    let Some(name) = node.child_by_field_name("name") else { return false };
    let written = text_of(name, text);
    let last = written.rsplit("::").next().unwrap_or(written);
    let last = last.split('<').next().unwrap_or(last).trim();
    if last == type_name {
        return true;
    }
    if last != "Self" {
        return false;
    }
    let implemented = ancestor(node, "impl_item").and_then(|i| i.child_by_field_name("type"));
    implemented.is_some_and(|t| {
        let t = text_of(t, text);
        t.split('<').next().unwrap_or(t).trim() == type_name
    })
}

/// What a new field of type `ty` is set to where a literal lacks it: the type's empty or
/// off value as people write it (`None`, `false`, `0`, `Vec::new()`), else `todo!()` (a
/// type whose value cannot be told from its name).
fn empty_value(ty: &str) -> String {
    let ty = ty.trim();
    let base = ty.split('<').next().unwrap_or(ty).trim();
    let base = base.rsplit("::").next().unwrap_or(base);
    let generic = ty.contains('<');
    match base {
        "Option" if generic => "None".into(),
        "bool" => "false".into(),
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" | "i8" | "i16" | "i32" | "i64" | "i128"
        | "isize" => "0".into(),
        "f32" | "f64" => "0.0".into(),
        "String" | "Vec" | "VecDeque" | "HashMap" | "HashSet" | "BTreeMap" | "BTreeSet" => {
            format!("{base}::new()")
        }
        _ => "todo!()".into(),
    }
}

/// The insertion that makes the literal `node` set `decl`'s field, unless it sets it
/// already or takes the rest from a base.
fn insertion(node: Node<'_>, text: &str, decl: &FieldDecl) -> Option<FieldInsert> {
    let field = decl.field.as_str();
    let body = node.child_by_field_name("body")?;
    let mut cursor = body.walk();
    let set: Vec<Node> =
        body.named_children(&mut cursor).filter(|c| c.kind() != "comment").collect();
    if set.is_empty() {
        return None; // `Name {}`: a unit-like use, left alone
    }
    let mut names = Vec::new();
    for init in &set {
        let name = match init.kind() {
            "base_field_initializer" => return None,
            "field_initializer" => init.child_by_field_name("field").map(|f| text_of(f, text)),
            _ => Some(text_of(*init, text)),
        };
        if name == Some(field) {
            return None;
        }
        names.push(name);
    }
    let value = match bound_before(node, text, field) {
        true => field.to_string(),
        false => format!("{field}: {}", empty_value(&decl.ty)),
    };
    let one_line = body.start_position().row == body.end_position().row;
    // After the previous field's initializer (the last when it has none); first if first.
    let last = set.len() - 1;
    let after =
        decl.previous.as_deref().map(|p| names.iter().position(|n| *n == Some(p)).unwrap_or(last));
    match after {
        Some(i) => Some(insert_after(set[i], body, text, &value, one_line)),
        None => Some(insert_before(*set.first()?, text, &value, one_line)),
    }
}

/// Byte offset of the start of the line holding byte `at`.
pub(crate) fn line_start_of(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |i| i + 1)
}

pub(crate) fn indent_at(text: &str, line_start: usize) -> String {
    text[line_start..].chars().take_while(|c| *c == ' ' || *c == '\t').collect()
}

/// `value` set after the initializer `init` (and its comma).
fn insert_after(
    init: Node<'_>,
    body: Node<'_>,
    text: &str,
    value: &str,
    one_line: bool,
) -> FieldInsert {
    let start = line_start_of(text, init.end_byte());
    let (line, end) = (init.end_position().row as u32 + 1, init.end_byte() - start);
    if one_line {
        // `Name { a, b }` becomes `Name { a, field, b }` or `Name { a, b, field }`.
        return FieldInsert { line, at: end, text: format!(", {value}") };
    }
    let indent = indent_at(text, line_start_of(text, init.start_byte()));
    let rest = &text[init.end_byte()..body.end_byte()];
    match rest.trim_start().starts_with(',') {
        true => {
            let comma = rest.find(',').unwrap_or(0);
            FieldInsert { line, at: end + comma + 1, text: format!("\n{indent}{value},") }
        }
        false => FieldInsert { line, at: end, text: format!(",\n{indent}{value}") },
    }
}

/// `value` set before the first initializer `first`.
fn insert_before(first: Node<'_>, text: &str, value: &str, one_line: bool) -> FieldInsert {
    let start = line_start_of(text, first.start_byte());
    let (line, at) = (first.start_position().row as u32 + 1, first.start_byte() - start);
    match one_line {
        true => FieldInsert { line, at, text: format!("{value}, ") },
        false => FieldInsert { line, at, text: format!("{value},\n{}", indent_at(text, start)) },
    }
}

/// Whether a name `field` is bound (a parameter, a `let`) in the function around `node`,
/// before it.
fn bound_before(node: Node<'_>, text: &str, field: &str) -> bool {
    let Some(function) = ancestor(node, "function_item") else { return false };
    let before = &text[function.start_byte()..node.start_byte()];
    let bound = |at: usize| {
        let head = before[..at].trim_end();
        let tail = before[at + field.len()..].trim_start();
        head.ends_with("let")
            || head.ends_with("mut")
            || tail.starts_with(':') && !tail.starts_with("::")
    };
    crate::word_positions(before, field).any(bound)
}

/// `text` with `insert` made, the line it is on (tests).
#[cfg(test)]
pub(crate) fn applied(text: &str, insert: &FieldInsert) -> String {
    let line = text.lines().nth(insert.line as usize - 1).unwrap_or_default();
    format!("{}{}{}", &line[..insert.at], insert.text, &line[insert.at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORE: &str = "pub struct Store {\n    root: PathBuf,\n    strict: bool,\n}\n\nimpl Store {\n    pub fn new(root: PathBuf) -> Self {\n        Self {\n            root,\n        }\n    }\n}\n\nfn open(strict: bool) -> Store {\n    let s = Store { root: PathBuf::new() };\n    let t = Store { ..Default::default() };\n    let u = other::Store { root: x, strict };\n    s\n}\n";

    #[test]
    fn a_struct_field_is_declared_on_its_line() {
        let decl = field_declared_at(Path::new("a.rs"), STORE, 3).unwrap();
        assert_eq!((decl.type_name.as_str(), decl.field.as_str()), ("Store", "strict"));
        assert_eq!((decl.position, decl.fields, decl.kind), (1, 2, RecordKind::RustStruct));
        assert_eq!(decl.previous.as_deref(), Some("root"));
        assert_eq!(field_declared_at(Path::new("a.rs"), STORE, 7), None, "a method");
        assert_eq!(field_declared_at(Path::new("a.rs"), STORE, 1), None, "the struct's name");
    }

    #[test]
    fn literals_without_the_field_get_it_in_their_own_layout() {
        let decl = field_declared_at(Path::new("a.rs"), STORE, 3).unwrap();
        let inserts = literals_lacking(Path::new("a.rs"), STORE, &decl);
        let made: Vec<String> = inserts.iter().map(|f| applied(STORE, f)).collect();
        assert_eq!(
            made,
            [
                "            root,\n            strict: false,",
                "    let s = Store { root: PathBuf::new(), strict };",
            ],
            "`Self` in `impl Store` counts; `..Default::default()` and one setting it do not"
        );
    }

    #[test]
    fn the_field_goes_where_its_declaration_order_puts_it() {
        let made = |text: &str, line: u32| -> Vec<String> {
            let decl = field_declared_at(Path::new("a.rs"), text, line).unwrap();
            let inserts = literals_lacking(Path::new("a.rs"), text, &decl);
            inserts.iter().map(|f| applied(text, f)).collect()
        };
        let uses = "\nfn f() -> Cfg {\n    Cfg {\n        a: 1,\n        b: 2,\n    }\n}\n\nfn g() -> Cfg {\n    Cfg { a: 1, b: 2 }\n}\n\nfn h() -> Cfg {\n    Cfg {}\n}\n";
        let first = format!("struct Cfg {{\n    name: String,\n    a: u8,\n    b: u8,\n}}\n{uses}");
        assert_eq!(
            made(&first, 2),
            [
                "        name: String::new(),\n        a: 1,",
                "    Cfg { name: String::new(), a: 1, b: 2 }"
            ]
        );
        let middle = format!("struct Cfg {{\n    a: u8,\n    name: Kind,\n    b: u8,\n}}\n{uses}");
        assert_eq!(
            made(&middle, 3),
            ["        a: 1,\n        name: todo!(),", "    Cfg { a: 1, name: todo!(), b: 2 }"]
        );
    }

    #[test]
    fn a_new_field_gets_its_types_empty_value() {
        assert_eq!(empty_value("Option<Arc<str>>"), "None");
        assert_eq!(empty_value("std::option::Option<u8>"), "None");
        assert_eq!(empty_value("bool"), "false");
        assert_eq!(empty_value("usize"), "0");
        assert_eq!(empty_value("f64"), "0.0");
        assert_eq!(empty_value("Vec<PathBuf>"), "Vec::new()");
        assert_eq!(empty_value("std::collections::HashMap<String, u32>"), "HashMap::new()");
        assert_eq!(empty_value("Option"), "todo!()", "a type of that name, not std's");
        assert_eq!(empty_value("Arc<Handle>"), "todo!()");
        assert_eq!(empty_value("Duration"), "todo!()");
    }

    #[test]
    fn a_dataclass_field_knows_its_place_and_the_defaults() {
        let py = "from dataclasses import dataclass\n\n@dataclass\nclass Point:\n    x: int\n    label: str\n    y: int = 0\n\nclass Plain:\n    x: int\n";
        let decl = field_declared_at(Path::new("p.py"), py, 6).unwrap();
        assert_eq!((decl.type_name.as_str(), decl.field.as_str()), ("Point", "label"));
        assert_eq!((decl.position, decl.fields, decl.any_default), (1, 3, true));
        assert_eq!(decl.previous.as_deref(), Some("x"));
        assert_eq!(decl.kind, RecordKind::Dataclass);
        assert_eq!(field_declared_at(Path::new("p.py"), py, 10), None, "not a dataclass");
    }
}
