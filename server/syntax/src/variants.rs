//! Enum variants and the `match`es that must handle them: the variant a line declares in a
//! Rust `enum`, and the `match` expressions over that enum that list its variants one by
//! one (no catch-all arm) and lack an arm for it.

use crate::records::{
    ancestor, indent_at, line_start_of, node_at_line, text_of, visit, FieldInsert,
};
use crate::{language_for_path, parse};
use std::path::Path;
use tree_sitter::Node;

/// A variant declared in a Rust `enum`.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantDecl {
    pub enum_name: String,
    pub variant: String,
    /// What a pattern adds after the name to match any value of it: `""`, `(..)`, `{ .. }`.
    pub rest: &'static str,
    /// The variant declared just before it; `None` when it is the first.
    pub previous: Option<String>,
}

/// The variant that line `line` (1-based) of `text` declares, when it declares one.
pub fn variant_declared_at(path: &Path, text: &str, line: u32) -> Option<VariantDecl> {
    let lang = language_for_path(path).filter(|l| l.name == "rust")?;
    let tree = parse(lang, text)?;
    let node = node_at_line(&tree, text, line)?;
    let variant = ancestor(node, "enum_variant")?;
    let list = variant.parent().filter(|p| p.kind() == "enum_variant_list")?;
    let item = list.parent().filter(|p| p.kind() == "enum_item")?;
    let mut cursor = list.walk();
    let all: Vec<Node> =
        list.named_children(&mut cursor).filter(|c| c.kind() == "enum_variant").collect();
    let position = all.iter().position(|v| *v == variant)?;
    let name_of = |v: &Node| v.child_by_field_name("name").map(|n| text_of(n, text).to_string());
    let rest = match variant.child_by_field_name("body").map(|b| b.kind()) {
        Some("ordered_field_declaration_list") => "(..)",
        Some("field_declaration_list") => " { .. }",
        _ => "",
    };
    Some(VariantDecl {
        enum_name: text_of(item.child_by_field_name("name")?, text).to_string(),
        variant: name_of(&variant)?,
        rest,
        previous: position.checked_sub(1).and_then(|p| name_of(&all[p])),
    })
}

/// The `match` expressions in `text` whose arms name `decl`'s enum (`Enum::A`, or `Self::A`
/// inside its `impl`), have no catch-all arm (`_`, a binding) and no arm for the variant,
/// each with the arm to add: `Enum::New => todo!(),` on a line of its own after the
/// previous variant's arm, else after the last arm.
pub fn matches_lacking(path: &Path, text: &str, decl: &VariantDecl) -> Vec<FieldInsert> {
    let Some(lang) = language_for_path(path).filter(|l| l.name == "rust") else {
        return Vec::new();
    };
    let Some(tree) = parse(lang, text) else { return Vec::new() };
    let mut out = Vec::new();
    visit(&tree, &mut |node| {
        if node.kind() == "match_block" {
            out.extend(arm_to_add(node, text, decl));
        }
    });
    out
}

/// The qualifier the alternative `pattern` names `decl`'s enum with (`Kind`, `ast::Kind`,
/// `Self` inside `impl Kind`), when it names a variant of it.
fn qualifier<'a>(
    pattern: &'a str,
    node: Node<'_>,
    text: &str,
    decl: &VariantDecl,
) -> Option<&'a str> {
    let p = pattern.trim().trim_start_matches('&').trim_start_matches("ref ").trim();
    let path = p.split(['(', '{', ' ']).next()?;
    let (qual, _) = path.rsplit_once("::")?;
    let last = qual.rsplit("::").next()?;
    if last == decl.enum_name {
        return Some(qual);
    }
    let implemented = ancestor(node, "impl_item").and_then(|i| i.child_by_field_name("type"));
    let in_impl = implemented.is_some_and(|t| text_of(t, text) == decl.enum_name);
    (qual == "Self" && in_impl).then_some(qual)
}

/// The arm that `block` (a `match`'s arms) lacks, if it is a match over the enum that
/// handles variants one by one.
fn arm_to_add(block: Node<'_>, text: &str, decl: &VariantDecl) -> Option<FieldInsert> {
    let mut cursor = block.walk();
    let arms: Vec<Node> =
        block.named_children(&mut cursor).filter(|c| c.kind() == "match_arm").collect();
    let mut qual = None;
    let mut anchor = None;
    for arm in &arms {
        let pattern = arm.child_by_field_name("pattern")?;
        let written = text_of(pattern, text);
        let written = written.split(" if ").next().unwrap_or(written);
        for alternative in written.split('|') {
            // A catch-all, a binding, or a pattern not over the enum (a tuple): not ours.
            let q = qualifier(alternative, block, text, decl)?;
            qual = Some(q);
            let variant = alternative.trim().trim_start_matches('&').trim_start_matches("ref ");
            let variant = variant[q.len()..].trim_start_matches("::");
            let name = variant.split(['(', '{', ' ']).next().unwrap_or("");
            if name == decl.variant {
                return None;
            }
            if Some(name) == decl.previous.as_deref() {
                anchor = Some(*arm);
            }
        }
    }
    let anchor = anchor.or(arms.last().copied())?;
    let indent = indent_at(text, line_start_of(text, anchor.start_byte()));
    let end_line_start = line_start_of(text, anchor.end_byte());
    let arm = format!("{}::{}{} => todo!(),", qual?, decl.variant, decl.rest);
    Some(FieldInsert {
        line: anchor.end_position().row as u32 + 1,
        at: anchor.end_byte() - end_line_start,
        text: format!("\n{indent}{arm}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::applied;

    const KIND: &str = "pub enum Kind {\n    File,\n    Link(PathBuf),\n    Dir { depth: u8 },\n}\n\nfn name(k: &Kind) -> &str {\n    match k {\n        Kind::File => \"file\",\n        Kind::Dir { .. } => \"dir\",\n    }\n}\n\nfn is_file(k: &Kind) -> bool {\n    match k {\n        Kind::File => true,\n        _ => false,\n    }\n}\n\nfn pair(a: &Kind, b: &Kind) -> bool {\n    match (a, b) {\n        (Kind::File, Kind::File) => true,\n        (x, y) => x == y,\n    }\n}\n";

    #[test]
    fn a_variant_is_declared_on_its_line_with_its_shape() {
        let decl = variant_declared_at(Path::new("k.rs"), KIND, 3).unwrap();
        assert_eq!((decl.enum_name.as_str(), decl.variant.as_str()), ("Kind", "Link"));
        assert_eq!((decl.rest, decl.previous.as_deref()), ("(..)", Some("File")));
        let dir = variant_declared_at(Path::new("k.rs"), KIND, 4).unwrap();
        assert_eq!(dir.rest, " { .. }");
        assert_eq!(variant_declared_at(Path::new("k.rs"), KIND, 9), None, "an arm");
    }

    #[test]
    fn only_matches_listing_the_variants_get_the_arm_after_the_previous_one() {
        let decl = variant_declared_at(Path::new("k.rs"), KIND, 3).unwrap();
        let inserts = matches_lacking(Path::new("k.rs"), KIND, &decl);
        let made: Vec<String> = inserts.iter().map(|f| applied(KIND, f)).collect();
        assert_eq!(
            made,
            ["        Kind::File => \"file\",\n        Kind::Link(..) => todo!(),"],
            "a catch-all arm or a match over a tuple needs no arm"
        );
    }
}
