//! Tests of the cursor analysis.

mod analysis {
    use super::super::*;

    #[test]
    fn rust_imports() {
        let got = imported_names(Some("rust"), "crate::store::{Store, Key as K, kv::Pair}");
        assert_eq!(
            got,
            [
                ("Store".into(), "crate::store".into()),
                ("Key".into(), "crate::store".into()),
                ("Pair".into(), "crate::store::kv".into())
            ]
        );
        assert_eq!(
            imported_names(Some("rust"), "std::fs"),
            [("fs".to_string(), "std".to_string())]
        );
    }

    #[test]
    fn receivers_from_annotations_constructors_and_self() {
        let src = "impl Engine {\n    fn run(&self, db: &mut Ledger) {\n        let cache = Cache::new();\n        db.post();\n        cache.get();\n        self.\n    }\n}\n";
        let cursor = src.find("self.\n").unwrap() + 5;
        let c = analyze_cursor("a.rs", src, cursor);
        assert_eq!(c.self_type.as_deref(), Some("Engine"));
        assert_eq!(c.var_types.get("db").map(String::as_str), Some("Ledger"));
        assert_eq!(c.var_types.get("cache").map(String::as_str), Some("Cache"));
        assert_eq!(c.receivers, ["Engine", "Cache", "Ledger"]);
        assert_eq!(c.enclosing, Some((2, 7)));
        assert!(c.idents.iter().any(|i| i.name == "post"));
        let wrapped = "fn f(s: Box<dyn Scorer>, r: Option<Arc<Reader>>) {\n    s.\n}\n";
        let c = analyze_cursor("b.rs", wrapped, wrapped.find("s.\n").unwrap() + 2);
        assert_eq!(c.var_types.get("s").map(String::as_str), Some("Scorer"));
        assert_eq!(c.var_types.get("r").map(String::as_str), Some("Reader"));
        assert_eq!(c.receivers, ["Scorer"]);
    }
}

mod import_tests {
    use super::super::*;

    #[test]
    fn call_chains_before_the_cursor() {
        let chain = |t: &str| chain_before(t, true, Some("rust"));
        let own = |r: &str, m: &[&str]| {
            Some((r.to_string(), m.iter().map(|s| s.to_string()).collect::<Vec<_>>()))
        };
        assert_eq!(
            chain("let r = index.reader_builder().policy(Policy::Manual)."),
            own("index", &["reader_builder", "policy"])
        );
        assert_eq!(
            chain("        let reader = index\n            .reader_builder()\n            "),
            own("index", &["reader_builder"])
        );
        assert_eq!(
            chain("    self.ctx.limits.add(f(x)?)?\n    "),
            own("self", &["ctx", "limits", "add"])
        );
        assert_eq!(chain("    Store::"), own("Store", &[]));
        assert_eq!(chain("    let x = a.b();\n    "), None, "a finished statement");
        assert_eq!(chain("    Ok(x)\n    "), None, "a tail expression");
        assert_eq!(
            chain_before("    x = a.b()\n    ", false, Some("python")),
            None,
            "no semicolons: every line is finished"
        );
    }

    #[test]
    fn import_site_lists_names_used_but_not_imported() {
        let src = "\nuse crate::{Score, Term};\n\n/// Uses Weight in a comment.\nfn run(q: &dyn Query, add: u32) -> Score {\n    let s = EnableScoring::new();\n    helper(q);\n    doc!(x);\n    Term::new(add)\n}\n";
        let c = analyze_cursor("src/a.rs", src, 0);
        assert_eq!(c.import_site.as_deref(), Some(""));
        assert_eq!(c.unresolved, ["Query", "EnableScoring", "helper", "doc!"]);
        let inside = "use crate::query::{\n    Occur,\n    \n};\nfn f(o: Occur, w: Weight) {}\n";
        let c = analyze_cursor("src/b.rs", inside, inside.find("    \n").unwrap() + 4);
        assert_eq!(c.import_site.as_deref(), Some("crate::query"));
        assert_eq!(c.unresolved, ["Weight"]);
        let code = "use a::B;\n\nfn f() {\n    \n}\n";
        assert_eq!(
            analyze_cursor("src/c.rs", code, code.find("    \n").unwrap() + 4).import_site,
            None
        );
    }
}

mod module_scope_tests {
    use super::super::*;

    #[test]
    fn imports_of_a_nested_module_do_not_resolve_names_outside_it() {
        let src = "\nuse crate::Other;\nfn run(w: Weight) -> Score { helper() }\n\nmod tests {\n    use crate::{Weight, Extra};\n    fn t() { Extra::new(); Inner::new(); }\n}\n";
        let top = analyze_cursor("src/a.rs", src, 0);
        assert_eq!(top.unresolved, ["Weight", "Score", "helper"]);
        let inner = src.find("    use").unwrap();
        let src2 = format!("{}    \n{}", &src[..inner], &src[inner..]);
        let c = analyze_cursor("src/a.rs", &src2, inner + 4);
        assert_eq!(c.import_site.as_deref(), Some(""));
        assert_eq!(c.unresolved, ["Inner"]);
    }
}
