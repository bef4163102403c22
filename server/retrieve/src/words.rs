//! Per-language word lists, kept with the grammars (`grammars/<lang>/language.toml`).

use patois_syntax::language_named;

/// Whether `name` is most likely the standard library's in `lang` (a registry language
/// name). A repository may define a `clone` or `get` too, but a call to one of these names
/// on an unknown receiver most likely means the standard one.
pub fn is_std_name(lang: Option<&str>, name: &str) -> bool {
    lang.and_then(language_named).is_some_and(|l| l.std_names.contains(name))
}

/// Whether `name` is a keyword or built-in type of `lang`: never a name the repository
/// defines.
pub fn is_keyword(lang: Option<&str>, name: &str) -> bool {
    lang.and_then(language_named).is_some_and(|l| l.keywords.contains(name))
}

/// Test code: definitions there are not offered to non-test code.
pub fn is_test_path(path: &str) -> bool {
    match patois_syntax::language_for_path(std::path::Path::new(path)) {
        Some(lang) => lang.tests.matches(path),
        None => path.split('/').rev().skip(1).any(|d| d == "tests" || d == "test"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_word_is_a_keyword_only_in_the_languages_that_have_it() {
        assert!(is_keyword(Some("go"), "map") && !is_keyword(Some("rust"), "map"));
        assert!(is_keyword(Some("go"), "error") && !is_keyword(Some("python"), "error"));
        assert!(is_keyword(Some("rust"), "fn") && is_keyword(Some("tsx"), "interface"));
        assert!(!is_keyword(None, "fn"), "plain text has no keywords");
        assert!(is_std_name(Some("rust"), "unwrap") && !is_std_name(Some("go"), "unwrap"));
    }
}
