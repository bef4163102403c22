//! The model's text as the ghost text shows it, and what is left of a completion once the
//! user typed its beginning.

/// The completion up to a line opening a markdown code fence: a chat-tuned model sometimes
/// starts writing prose about the code, and a fence is never code.
fn before_fence(text: &str) -> &str {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with("```") {
            return text[..at].trim_end_matches(['\n', '\r']);
        }
        at += line.len();
    }
    text
}

/// The completion with its first line's leading whitespace removed, and as much from the
/// lines after it: the cursor follows the indentation the editor (or the user) already put
/// on the line, and a model that indents again would insert it twice.
fn drop_extra_indent(text: &str) -> String {
    let extra = text.len() - text.trim_start_matches([' ', '\t']).len();
    if extra == 0 {
        return text.to_string();
    }
    let mut lines = text.split('\n');
    let mut out = lines.next().unwrap_or("")[extra..].to_string();
    for l in lines {
        let ws = l.len() - l.trim_start_matches([' ', '\t']).len();
        out.push('\n');
        out.push_str(&l[ws.min(extra)..]);
    }
    out
}

/// The model's text as the ghost text shows it: without a second indentation when the
/// user typed only indentation, and without prose after a markdown fence.
pub(super) fn tidy(text: String, typed_indent_only: bool) -> String {
    let text = if typed_indent_only { drop_extra_indent(&text) } else { text };
    before_fence(&text).to_string()
}

/// What remains of `completion` (made at `was_prefix`|`was_suffix`) once the document reads
/// `prefix`|`suffix`: the user typed its beginning. `None` when they typed something else,
/// nothing, or all of it.
pub(super) fn rest_after_typing<'a>(
    was_prefix: &str,
    was_suffix: &str,
    completion: &'a str,
    prefix: &str,
    suffix: &str,
) -> Option<&'a str> {
    if was_suffix != suffix {
        return None;
    }
    let typed = prefix.strip_prefix(was_prefix).filter(|t| !t.is_empty())?;
    completion.strip_prefix(typed).filter(|rest| !rest.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::{before_fence, drop_extra_indent, rest_after_typing};

    #[test]
    fn a_markdown_fence_ends_the_completion() {
        assert_eq!(before_fence("```"), "");
        assert_eq!(before_fence("x();\n```\nprose"), "x();");
        assert_eq!(before_fence("/// ```\n/// x();"), "/// ```\n/// x();", "a doc example stays");
        assert_eq!(before_fence("a\nb"), "a\nb");
    }

    #[test]
    fn a_completion_after_typed_indentation_is_not_indented_again() {
        assert_eq!(drop_extra_indent("    x = 1;"), "x = 1;");
        assert_eq!(drop_extra_indent("x = 1;"), "x = 1;");
        // The block keeps its shape, shifted left by the first line's extra indentation.
        assert_eq!(drop_extra_indent("  if a {\n      b();\n  }"), "if a {\n    b();\n}");
        assert_eq!(drop_extra_indent("    a\nb"), "a\nb");
    }

    #[test]
    fn typing_the_ghost_text_leaves_its_rest() {
        let (p, s, c) = ("let x = ", "\n}", "store.get(key);");
        assert_eq!(rest_after_typing(p, s, c, "let x = st", s), Some("ore.get(key);"));
        assert_eq!(rest_after_typing(p, s, c, "let x = sx", s), None, "typed something else");
        assert_eq!(rest_after_typing(p, s, c, p, s), None, "typed nothing");
        assert_eq!(rest_after_typing(p, s, c, "let x = store.get(key);", s), None, "typed it all");
        assert_eq!(rest_after_typing(p, s, c, "let x = st", "\n}\n"), None, "the suffix changed");
        assert_eq!(rest_after_typing(p, s, c, "let y = st", s), None, "edited before the cursor");
    }
}
