//! Signature changes: a function's definition whose parameter list gained or lost one
//! parameter, and the calls of that function that the same change applies to (the new
//! parameter's name passed where it was added, the argument dropped where one was removed).
//! Text only: a definition on one line or spread over lines (one parameter a line) is
//! read; calls are read one line at a time, so a call spread over lines is left alone.

use super::LineEdit;
use patois_retrieve::{word_positions, EditHunk};

/// What happened to a function's parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamChange {
    /// A parameter was inserted at this position; callers pass `argument` there.
    Added { at: usize, argument: String },
    /// The parameter at this position was removed; callers drop that argument.
    Removed { at: usize, name: String },
}

/// A function whose parameter list changed by one parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct SignatureChange {
    pub name: String,
    /// Parameters the callers passed before (a method's receiver not counted).
    pub old_arity: usize,
    pub change: ParamChange,
}

/// Keywords that introduce a function definition in the indexed languages.
const DEFINING: [&str; 4] = ["fn", "def", "func", "function"];

/// Byte spans of the top-level comma-separated pieces of `text[open+1..close]`, trimmed;
/// an empty last piece (a trailing comma) is not one.
fn pieces(text: &str, open: usize, close: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, open + 1);
    let push = |s: usize, e: usize, out: &mut Vec<(usize, usize)>| {
        let piece = &text[s..e];
        let lead = piece.len() - piece.trim_start().len();
        if !piece.trim().is_empty() {
            out.push((s + lead, s + lead + piece.trim().len()));
        }
    };
    for (i, c) in outside_strings(text, open + 1, close) {
        match c {
            '(' | '[' | '{' | '<' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            '>' if !text[..i].ends_with('-') && !text[..i].ends_with('=') => depth -= 1,
            ',' if depth == 0 => {
                push(start, i, &mut out);
                start = i + 1;
            }
            _ => {}
        }
    }
    push(start, close, &mut out);
    out
}

/// The byte of the `)` that closes the `(` at `open`, on the same line.
fn closing(text: &str, open: usize) -> Option<usize> {
    let mut depth = 0;
    for (i, c) in outside_strings(text, open, text.len()) {
        match c {
            '(' => depth += 1,
            ')' if depth == 1 => return Some(i),
            ')' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// The characters of `text[from..to]` with their byte offsets, string literals left out
/// (`"…"`, `` `…` ``, and `'…'` where a value starts, not a Rust lifetime such as `&'a`).
fn outside_strings(text: &str, from: usize, to: usize) -> impl Iterator<Item = (usize, char)> + '_ {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut previous = text[..from].trim_end().chars().next_back().unwrap_or('(');
    text[from..to].char_indices().map(move |(i, c)| (i + from, c)).filter(move |&(_, c)| {
        if let Some(q) = quote {
            quote = if escaped || c != q { Some(q) } else { None };
            escaped = !escaped && c == '\\';
            return false;
        }
        let value_starts = matches!(previous, '(' | ',' | '=' | '[' | '{' | ':' | ' ');
        if c == '"' || c == '`' || (c == '\'' && value_starts && previous != '&') {
            quote = Some(c);
            return false;
        }
        if !c.is_whitespace() {
            previous = c;
        } else if previous != '&' {
            previous = ' ';
        }
        true
    })
}

/// The parameter list's `(` right after `name` at `at` (spaces allowed between, and in a
/// definition type parameters `<T>`).
fn open_after(line: &str, at: usize, name: &str) -> Option<usize> {
    let skip_spaces = |from: usize| from + (line[from..].len() - line[from..].trim_start().len());
    let mut open = skip_spaces(at + name.len());
    if line[open..].starts_with('<') && is_defined_at(line, at) {
        let mut depth = 0;
        let close = line[open..].char_indices().find_map(|(i, c)| {
            depth += match c {
                '<' => 1,
                '>' => -1,
                _ => 0,
            };
            (depth == 0).then_some(open + i)
        })?;
        open = skip_spaces(close + 1);
    }
    line[open..].starts_with('(').then_some(open)
}

/// Whether the word before `at` in `line` makes `at` a definition's name (`fn`, `def`,
/// `func`, `function`, or a Go method's receiver list `func (r *T) `).
fn is_defined_at(line: &str, at: usize) -> bool {
    let before = line[..at].trim_end();
    let word_start = before
        .char_indices()
        .rev()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map_or(0, |(i, c)| i + c.len_utf8());
    if DEFINING.contains(&&before[word_start..]) {
        return true;
    }
    before.ends_with(')') && before.trim_start().starts_with("func ")
}

/// The name and parameters of the function a line defines, and the byte of the `)` that
/// closes them.
fn definition(line: &str) -> Option<(String, Vec<&str>, usize)> {
    let (name, open) = defined_name(line)?;
    let close = closing(line, open)?;
    let params = pieces(line, open, close).into_iter().map(|(s, e)| &line[s..e]);
    Some((name.to_string(), params.filter(|p| !is_receiver(p)).collect(), close))
}

/// The name a line defines and the byte of its parameter list's `(`.
fn defined_name(line: &str) -> Option<(&str, usize)> {
    let words = line.match_indices(|c: char| c.is_alphabetic() || c == '_');
    for (at, _) in words {
        let boundary =
            line[..at].chars().next_back().is_none_or(|c| !c.is_alphanumeric() && c != '_');
        if !boundary || !is_defined_at(line, at) {
            continue;
        }
        let len = line[at..]
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(line.len() - at);
        let name = &line[at..at + len];
        return open_after(line, at, name).map(|open| (name, open));
    }
    None
}

/// Lines a parameter list spread over lines may take.
const MAX_SIGNATURE_LINES: usize = 12;

/// The definition whose parameter list, spread over lines, holds line `at` (0-based) of
/// `lines`: its name and parameters, the lines joined into one.
fn definition_over(lines: &[&str], at: usize) -> Option<(String, Vec<String>)> {
    let starts = at.saturating_sub(MAX_SIGNATURE_LINES)..=at.min(lines.len().checked_sub(1)?);
    let first = starts.rev().find(|&i| defined_name(lines[i]).is_some())?;
    let joined = lines[first..(first + MAX_SIGNATURE_LINES).min(lines.len())].join(" ");
    let (name, params, close) = definition(&joined)?;
    let line_at: usize = lines[first..at].iter().map(|l| l.len() + 1).sum();
    (close >= line_at).then(|| (name, params.into_iter().map(str::to_string).collect()))
}

/// A method's receiver, which callers do not pass in parentheses.
fn is_receiver(param: &str) -> bool {
    let p = param.trim_start_matches('&').trim_start_matches("mut ").trim();
    matches!(p, "self" | "cls")
        || p.starts_with("self:")
        || p.starts_with("'") && p.contains("self")
}

/// The name a caller most likely passes for `param` (`ctx: &Ctx` → `ctx`, Go's
/// `ctx context.Context` → `ctx`); `None` for a parameter callers may leave out (a default,
/// TypeScript's `?`) or one spread from several arguments (`*args`, `...rest`, Go's
/// `names ...string`).
fn argument_for(param: &str) -> Option<String> {
    if param.contains('=')
        || param.contains("?:")
        || param.starts_with('*')
        || param.contains("...")
    {
        return None;
    }
    let name = param.split([':', ' ']).next()?.trim();
    let ok = name.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_alphanumeric() || c == '_');
    ok.then(|| name.to_string())
}

fn same(a: &[&str], b: &[&str]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| x.split_whitespace().eq(y.split_whitespace()))
}

/// `params` without the one at `k`.
fn without<'a>(params: &[&'a str], k: usize) -> Vec<&'a str> {
    params.iter().enumerate().filter(|(i, _)| *i != k).map(|(_, p)| *p).collect()
}

/// The one parameter `new` has that `old` does not, or the other way round.
fn difference(old: &[&str], new: &[&str]) -> Option<ParamChange> {
    if new.len() == old.len() + 1 {
        let at = (0..new.len()).find(|&k| same(&without(new, k), old))?;
        let argument = argument_for(new[at])?;
        return Some(ParamChange::Added { at, argument });
    }
    if old.len() == new.len() + 1 {
        let at = (0..old.len()).find(|&k| same(&without(old, k), new))?;
        let name = argument_for(old[at]).unwrap_or_else(|| old[at].to_string());
        return Some(ParamChange::Removed { at, name });
    }
    None
}

/// The signature change a hunk made: a line defining a function before it and a line
/// defining the same function after it, one parameter apart.
pub fn signature_change_in(hunk: &EditHunk) -> Option<SignatureChange> {
    let (name, old, _) = hunk.removed.iter().find_map(|l| definition(l))?;
    let new = hunk.added.iter().find_map(|l| definition(l).filter(|(n, ..)| *n == name))?.1;
    let change = difference(&old, &new)?;
    Some(SignatureChange { name, old_arity: old.len(), change })
}

/// The signature change a hunk made inside a parameter list spread over lines (one
/// parameter a line, as formatters write long ones); `text` is the document after it.
pub fn signature_change_around(text: &str, hunk: &EditHunk) -> Option<SignatureChange> {
    let after: Vec<&str> = text.split('\n').collect();
    let at = (hunk.start_line as usize).checked_sub(1)?;
    let end = at + hunk.added.len();
    if end > after.len() {
        return None;
    }
    let removed = hunk.removed.iter().map(String::as_str);
    let before: Vec<&str> =
        after[..at].iter().copied().chain(removed).chain(after[end..].iter().copied()).collect();
    let (name, old) = definition_over(&before, at)?;
    let (new_name, new) = definition_over(&after, at)?;
    let (old_strs, new_strs): (Vec<&str>, Vec<&str>) =
        (old.iter().map(String::as_str).collect(), new.iter().map(String::as_str).collect());
    let change = difference(&old_strs, &new_strs).filter(|_| name == new_name)?;
    Some(SignatureChange { name, old_arity: old.len(), change })
}

impl SignatureChange {
    /// The edits of the calls on `line` that pass the old number of arguments.
    pub fn calls_in(&self, line: &str) -> Vec<LineEdit> {
        let mut out = Vec::new();
        for at in word_positions(line, &self.name) {
            if is_defined_at(line, at) {
                continue;
            }
            let Some(open) = open_after(line, at, &self.name) else { continue };
            let Some(close) = closing(line, open) else { continue };
            let args = pieces(line, open, close);
            if args.len() == self.old_arity {
                out.push(self.rewrite(open, close, &args));
            }
        }
        out
    }

    fn rewrite(&self, open: usize, close: usize, args: &[(usize, usize)]) -> LineEdit {
        let edit = |start, end, text: String| LineEdit { start, end, text };
        match &self.change {
            ParamChange::Added { argument, .. } if args.is_empty() => {
                edit(open + 1, close, argument.clone())
            }
            ParamChange::Added { at, argument } if *at >= args.len() => {
                let end = args[args.len() - 1].1;
                edit(end, end, format!(", {argument}"))
            }
            ParamChange::Added { at, argument } => {
                let start = args[*at].0;
                edit(start, start, format!("{argument}, "))
            }
            ParamChange::Removed { at, .. } if args.len() == 1 => {
                edit(open + 1, close, String::new())
            }
            ParamChange::Removed { at, .. } if *at + 1 == args.len() => {
                edit(args[*at - 1].1, args[*at].1, String::new())
            }
            ParamChange::Removed { at, .. } => edit(args[*at].0, args[*at + 1].0, String::new()),
        }
    }

    /// Why the calls change, for the suggestion's reason.
    pub fn describe(&self) -> String {
        match &self.change {
            ParamChange::Added { argument, .. } => {
                format!("`{}` gained a parameter `{argument}`", self.name)
            }
            ParamChange::Removed { name, .. } => {
                format!("`{}` lost its parameter `{name}`", self.name)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hunk(removed: &str, added: &str) -> EditHunk {
        EditHunk {
            path: "a.rs".into(),
            start_line: 1,
            removed: vec![removed.into()],
            added: vec![added.into()],
        }
    }

    fn applied(change: &SignatureChange, line: &str) -> String {
        let mut out = line.to_string();
        for e in change.calls_in(line).iter().rev() {
            out.replace_range(e.start..e.end, &e.text);
        }
        out
    }

    #[test]
    fn a_parameter_added_is_passed_by_its_name_at_each_call_in_every_language() {
        let rust = hunk(
            "pub fn load(path: &Path) -> Result<Config> {",
            "pub fn load(root: &Path, path: &Path) -> Result<Config> {",
        );
        let c = signature_change_in(&rust).unwrap();
        assert_eq!(c.change, ParamChange::Added { at: 0, argument: "root".into() });
        assert_eq!(
            applied(&c, "    let c = load(&p)?; load(a, b);"),
            "    let c = load(root, &p)?; load(a, b);"
        );
        let go = hunk(
            "func (s *Server) Serve(l net.Listener) error {",
            "func (s *Server) Serve(l net.Listener, ctx context.Context) error {",
        );
        let c = signature_change_in(&go).unwrap();
        assert_eq!(
            applied(&c, "\tif err := srv.Serve(ln); err != nil {"),
            "\tif err := srv.Serve(ln, ctx); err != nil {"
        );
        let py = hunk("    def send(self):", "    def send(self, timeout):");
        let c = signature_change_in(&py).unwrap();
        assert_eq!(c.old_arity, 0, "the receiver is not passed");
        assert_eq!(applied(&c, "        self.send()"), "        self.send(timeout)");
        let ts = hunk(
            "export function add<K, V>(map: Map<K, V>, key: K) {",
            "export function add<K, V>(map: Map<K, V>, key: K, value: V) {",
        );
        let c = signature_change_in(&ts).unwrap();
        assert_eq!(applied(&c, "add(m, f(a, b));"), "add(m, f(a, b), value);");
        let generic =
            hunk("fn get<'a, T>(x: &'a T) -> &'a T {", "fn get<'a, T>(x: &'a T, y: u8) -> &'a T {");
        assert_eq!(signature_change_in(&generic).unwrap().old_arity, 1);
    }

    #[test]
    fn a_parameter_removed_drops_that_argument_and_its_comma() {
        let c = signature_change_in(&hunk("fn f(a: u8, b: u8, c: u8) {", "fn f(a: u8, c: u8) {"))
            .unwrap();
        assert_eq!(applied(&c, "f(1, g(2, 3), 4);"), "f(1, 4);");
        let last = signature_change_in(&hunk("fn f(a: u8, b: u8) {", "fn f(a: u8) {")).unwrap();
        assert_eq!(applied(&last, "x = f(1, 2) + f(3);"), "x = f(1) + f(3);");
        let only = signature_change_in(&hunk("def f(a):", "def f():")).unwrap();
        assert_eq!(applied(&only, "f(x)"), "f()");
    }

    #[test]
    fn a_parameter_added_on_its_own_line_of_a_long_signature_is_found() {
        let after = "pub fn load(\n    path: &Path,\n    root: &Path,\n    strict: bool,\n) -> Result<Config> {\n    todo!()\n}\n";
        let added = EditHunk {
            path: "a.rs".into(),
            start_line: 3,
            removed: vec![],
            added: vec!["    root: &Path,".into()],
        };
        let c = signature_change_around(after, &added).unwrap();
        assert_eq!(c.change, ParamChange::Added { at: 1, argument: "root".into() });
        assert_eq!(applied(&c, "load(&p, true)?;"), "load(&p, root, true)?;");
        let py = "def send(\n    self,\n    body,\n):\n    pass\n";
        let removed = EditHunk {
            path: "a.py".into(),
            start_line: 4,
            removed: vec!["    timeout,".into()],
            added: vec![],
        };
        let c = signature_change_around(py, &removed).unwrap();
        assert_eq!(c.change, ParamChange::Removed { at: 1, name: "timeout".into() });
        assert_eq!(applied(&c, "s.send(b, 3)"), "s.send(b)");
        let body = EditHunk {
            path: "a.rs".into(),
            start_line: 6,
            removed: vec!["    todo!()".into()],
            added: vec!["    unimplemented!()".into()],
        };
        assert_eq!(signature_change_around(after, &body), None, "an edit of the body");
    }

    #[test]
    fn what_callers_need_not_change_is_no_signature_change() {
        assert_eq!(signature_change_in(&hunk("def f(a):", "def f(a, b=None):")), None, "a default");
        assert_eq!(signature_change_in(&hunk("fn f(a: u8) {", "fn f(a: u16) {")), None, "a type");
        let variadic = hunk(
            "func (m *Mux) H() http.HandlerFunc {",
            "func (m *Mux) H(ms ...string) http.HandlerFunc {",
        );
        assert_eq!(signature_change_in(&variadic), None, "Go's variadic parameter");
        assert_eq!(
            signature_change_in(&hunk("fn f(a: u8) {", "fn g(a: u8, b: u8) {")),
            None,
            "a rename"
        );
        assert_eq!(signature_change_in(&hunk("let x = f(a);", "let x = f(a, b);")), None, "a call");
        let c = signature_change_in(&hunk("fn f(a: u8) {", "fn f(a: u8, b: u8) {")).unwrap();
        assert!(c.calls_in("fn f(a: u8) {").is_empty(), "the definition is no call");
        assert!(c.calls_in("f(1, 2); f(\"a, b\", \"(\")").is_empty(), "other arities");
        assert_eq!(applied(&c, "f(\"a, b\")"), "f(\"a, b\", b)", "a comma in a string");
        assert_eq!(applied(&c, "f('a, )')"), "f('a, )', b)", "a parenthesis in a string");
        assert_eq!(applied(&c, "t(x ≤ 1, `≤`); f(x)"), "t(x ≤ 1, `≤`); f(x, b)", "not ASCII");
    }
}
