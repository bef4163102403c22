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

/// Lines above the cursor read for the document's indentation step.
const STEP_LINES: usize = 200;

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The step of the document's indentation in spaces: the greatest common divisor of the
/// indentation widths of the last [`STEP_LINES`] lines of `prefix`; 0 when none is indented
/// with spaces.
fn indent_step(prefix: &str) -> usize {
    let widths = prefix.lines().rev().take(STEP_LINES).filter(|l| !l.trim().is_empty());
    widths.map(|l| l.len() - l.trim_start_matches(' ').len()).fold(0, gcd)
}

/// The completion with its first line's leading whitespace removed, and as much from the
/// lines after it when the model shifted the whole block: the cursor follows the
/// indentation the editor (or the user) already put on the line, and a model that indents
/// again would insert it twice. Often only the first token carries a space more and the
/// lines after it stand where they belong: the lines after the first are shifted only when
/// that leaves more of them on the document's indentation `step` (0: unknown).
fn drop_extra_indent(text: &str, step: usize) -> String {
    let extra = text.len() - text.trim_start_matches([' ', '\t']).len();
    if extra == 0 {
        return text.to_string();
    }
    let mut lines = text.split('\n');
    let mut out = lines.next().unwrap_or("")[extra..].to_string();
    let rest: Vec<&str> = lines.collect();
    let width = |l: &str| l.len() - l.trim_start_matches([' ', '\t']).len();
    let on_step = |shift: usize| {
        let fits = |l: &&&str| !l.trim().is_empty() && (width(l) - width(l).min(shift)) % step == 0;
        rest.iter().filter(fits).count()
    };
    let shift = if step >= 2 && on_step(0) > on_step(extra) { 0 } else { extra };
    for l in rest {
        out.push('\n');
        out.push_str(&l[width(l).min(shift)..]);
    }
    out
}

/// The model's text as the ghost text shows it: without a second indentation when the
/// user typed only indentation (`above`: the document above the cursor's line then; see
/// [`drop_extra_indent`]), and without prose after a markdown fence.
pub(super) fn tidy(text: String, above: Option<&str>) -> String {
    let text = match above {
        Some(above) if text.starts_with([' ', '\t']) => {
            drop_extra_indent(&text, indent_step(above))
        }
        _ => text,
    };
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
    use super::{before_fence, drop_extra_indent, indent_step, rest_after_typing};

    #[test]
    fn a_markdown_fence_ends_the_completion() {
        assert_eq!(before_fence("```"), "");
        assert_eq!(before_fence("x();\n```\nprose"), "x();");
        assert_eq!(before_fence("/// ```\n/// x();"), "/// ```\n/// x();", "a doc example stays");
        assert_eq!(before_fence("a\nb"), "a\nb");
    }

    #[test]
    fn a_completion_after_typed_indentation_is_not_indented_again() {
        assert_eq!(drop_extra_indent("    x = 1;", 4), "x = 1;");
        assert_eq!(drop_extra_indent("x = 1;", 4), "x = 1;");
        // The block keeps its shape, shifted left by the first line's extra indentation.
        assert_eq!(drop_extra_indent("  if a {\n      b();\n  }", 4), "if a {\n    b();\n}");
        assert_eq!(drop_extra_indent("  if a {\n      b();\n  }", 0), "if a {\n    b();\n}");
        assert_eq!(drop_extra_indent("    a\nb", 4), "a\nb");
        // One space more on the first token only: the lines after it are where they belong.
        let one = " zip(\n            a,\n        )";
        assert_eq!(drop_extra_indent(one, 4), "zip(\n            a,\n        )");
        let shifted = " let r = 1;\n         r";
        assert_eq!(drop_extra_indent(shifted, 4), "let r = 1;\n        r");
    }

    #[test]
    fn the_indentation_step_is_what_the_lines_above_share() {
        assert_eq!(indent_step("fn a() {\n    if b {\n        c();\n    }\n    "), 4);
        assert_eq!(indent_step("def a():\n  if b:\n    c()\n"), 2);
        assert_eq!(indent_step("a\n\tb\n"), 0, "tabs only");
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
