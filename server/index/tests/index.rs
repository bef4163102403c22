//! The index against real git repositories created here, real tantivy on disk.

use git2::{Signature, Time};
use patois_index::{Index, Quiet, SkipReason, UpdateOptions};
use patois_testkit::Fixture;

fn open(fx: &Fixture) -> Index {
    Index::open(fx.root(), &fx.root().join(".patois")).unwrap()
}

fn update(ix: &Index) -> patois_index::Report {
    ix.update(&UpdateOptions { threads: 1, ..Default::default() }, &Quiet).unwrap()
}

#[test]
fn symbols_and_chunks_for_every_language() {
    let fx = Fixture::plain();
    fx.write(
        "src/lib.rs",
        "pub struct Ledger;\nimpl Ledger {\n    pub fn post_entry(&self) {}\n}\n",
    );
    fx.write("tool/run.py", "class Runner:\n    def start_job(self):\n        pass\n");
    fx.write("web/app.ts", "export interface Widget { id: string }\nexport function renderWidget(w: Widget) { return w.id; }\n");
    fx.write("web/view.tsx", "export function Panel() { return <div/>; }\n");
    fx.write("web/old.js", "function legacyHelper() { return 1; }\n");
    fx.write(
        "svc/main.go",
        "package main\n\ntype Server struct{}\n\nfunc (s *Server) Serve() {}\n",
    );
    fx.write("notes.txt", "free text\n");
    let ix = open(&fx);
    let r = update(&ix);
    assert_eq!(r.files, 7);
    for (name, path, kind) in [
        ("Ledger", "src/lib.rs", "struct"),
        ("post_entry", "src/lib.rs", "method"),
        ("Runner", "tool/run.py", "class"),
        ("start_job", "tool/run.py", "function"),
        ("Widget", "web/app.ts", "interface"),
        ("renderWidget", "web/app.ts", "function"),
        ("Panel", "web/view.tsx", "function"),
        ("legacyHelper", "web/old.js", "function"),
        ("Server", "svc/main.go", "struct"),
        ("Serve", "svc/main.go", "method"),
    ] {
        let hits: Vec<_> = ix
            .symbols_named(name, 5)
            .unwrap()
            .into_iter()
            .filter(|h| h.kind != patois_syntax::SymbolKind::Impl)
            .collect();
        assert_eq!(hits.len(), 1, "{name}: {hits:?}");
        assert_eq!((hits[0].path.as_str(), hits[0].kind.as_str()), (path, kind), "{name}");
    }
    assert_eq!(ix.symbols_named("post_entry", 1).unwrap()[0].scope.as_deref(), Some("Ledger"));
    assert!(ix
        .symbols_named("Ledger", 5)
        .unwrap()
        .iter()
        .any(|h| h.kind == patois_syntax::SymbolKind::Impl && h.start_line == 2));
    let chunks = ix.chunks_in_file("src/lib.rs").unwrap();
    assert!(
        chunks.iter().any(|c| c.kind == "impl_item" && c.start_line == 2 && c.end_line == 4),
        "{chunks:?}"
    );
    assert_eq!(ix.chunks_in_file("notes.txt").unwrap()[0].kind, "lines");
    // BM25 with the code tokenizer finds `post_entry` from the word `entry`.
    let hits = ix.search_chunks("entry", 5, &|_| true).unwrap();
    assert_eq!(hits[0].path, "src/lib.rs");
}

#[test]
fn ignored_binary_huge_non_utf8_and_secret_files_are_skipped() {
    let fx = Fixture::git();
    fx.write(".gitignore", "build/\n");
    fx.write(".patoisignore", "vendor/\n");
    fx.write("build/gen.rs", "fn generated() {}\n");
    fx.write("vendor/dep.rs", "fn vendored() {}\n");
    fx.write("src/ok.rs", "fn fine() {}\n");
    fx.write("logo.png", [0x89u8, b'P', b'N', b'G', 0, 0, 1, 2]);
    fx.write("latin1.txt", [b'c', b'a', b'f', 0xE9, b'\n']);
    fx.write("big.rs", format!("// {}\n", "x".repeat(2 << 20)));
    fx.write(".env", "TOKEN=abc\n");
    fx.write("deploy/id_rsa", "not really\n");
    fx.write(
        "src/keys.rs",
        format!("const K: &str = \"{}{}\";\nfn leaked() {{}}\n", "AKIA", "ABCDEFGHIJKLMNOP"),
    );
    let ix = open(&fx);
    let r = update(&ix);
    let indexed: Vec<_> = ix.manifest().files.keys().cloned().collect();
    assert_eq!(indexed, [".gitignore", ".patoisignore", "src/ok.rs"]);
    let reasons: Vec<_> = r.skipped.iter().map(|(p, r)| (p.as_str(), *r)).collect();
    assert_eq!(
        reasons,
        [
            (".env", SkipReason::Secret),
            ("big.rs", SkipReason::TooLarge),
            ("deploy/id_rsa", SkipReason::Secret),
            ("latin1.txt", SkipReason::NonUtf8),
            ("logo.png", SkipReason::Binary),
            ("src/keys.rs", SkipReason::Secret),
        ]
    );
    assert_eq!(r.skipped_by_reason[&SkipReason::Secret], 3);
    assert!(
        ix.symbols_named("leaked", 5).unwrap().is_empty(),
        "a file with a key never enters the index"
    );
    assert!(ix.symbols_named("generated", 5).unwrap().is_empty());
    assert!(ix.search_chunks("AKIAABCDEFGHIJKLMNOP TOKEN", 5, &|_| true).unwrap().is_empty());
}

#[test]
fn second_run_touches_only_what_changed() {
    let fx = Fixture::git();
    fx.write("a.rs", "fn alpha() {}\n");
    fx.write("b.rs", "fn beta() {}\n");
    fx.write("c.py", "def gamma():\n    pass\n");
    fx.commit("Initial", "ann", 1_000);
    let ix = open(&fx);
    let r1 = update(&ix);
    assert_eq!((r1.added.len(), r1.parsed, r1.new_commits), (3, 3, 1));

    let r2 = update(&ix);
    assert_eq!((r2.parsed, r2.unchanged, r2.new_commits), (0, 3, 0));
    assert!(r2.added.is_empty() && r2.updated.is_empty() && r2.removed.is_empty());

    fx.write("b.rs", "fn beta_renamed() {}\n");
    std::fs::remove_file(fx.root().join("c.py")).unwrap();
    fx.write("d.go", "package d\nfunc Delta() {}\n");
    fx.commit("Rename beta (#42)", "bob", 2_000);
    let r3 = update(&ix);
    assert_eq!(r3.updated, ["b.rs"]);
    assert_eq!(r3.removed, ["c.py"]);
    assert_eq!(r3.added, ["d.go"]);
    assert_eq!((r3.parsed, r3.unchanged, r3.new_commits, r3.commits), (2, 1, 1, 2));
    assert!(ix.symbols_named("beta", 5).unwrap().is_empty(), "old definition deleted");
    assert_eq!(ix.symbols_named("beta_renamed", 5).unwrap().len(), 1);
    assert!(ix.symbols_named("gamma", 5).unwrap().is_empty());
    assert_eq!(ix.chunks_in_file("b.rs").unwrap().len(), 1, "no duplicate chunks after re-parse");

    // Same content, new mtime: hashed, not re-parsed.
    fx.write("a.rs", "fn alpha() {}\n");
    let r4 = update(&ix);
    assert_eq!(r4.parsed, 0);

    // A reopened index continues from its manifest.
    drop(ix);
    let r5 = update(&open(&fx));
    assert_eq!((r5.parsed, r5.new_commits, r5.files), (0, 0, 3));
}

#[test]
fn history_records_commits_files_and_pr_numbers() {
    let fx = Fixture::git();
    fx.write("src/store.rs", "fn put() {}\n");
    fx.commit("Add store", "ann", 1_000);
    fx.write("src/store.rs", "fn put() {}\nfn get() {}\nfn del() {}\n");
    fx.write("README.md", "# r\n");
    fx.commit("Add get and del (#17)", "bob", 2_000);
    fx.write("src/store.rs", "fn put() {}\nfn get() {}\n");
    fx.commit("Merge pull request #23 from bob/trim\n\nTrim store", "ann", 3_000);
    let ix = open(&fx);
    let r = update(&ix);
    assert_eq!(r.commits, 3);
    let commits = ix.commits_touching("src/store.rs", 10).unwrap();
    let got: Vec<_> =
        commits.iter().map(|c| (c.summary.as_str(), c.pr, c.author.as_str())).collect();
    assert_eq!(
        got,
        [
            ("Merge pull request #23 from bob/trim", Some(23), "ann"),
            ("Add get and del (#17)", Some(17), "bob"),
            ("Add store", None, "ann"),
        ]
    );
    let stats = &commits[1].files;
    let store = stats.iter().find(|f| f.path == "src/store.rs").unwrap();
    assert_eq!((store.added, store.removed), (2, 0));
    assert_eq!(commits[0].files[0].removed, 1);
    let h = &ix.manifest().history["src/store.rs"];
    assert_eq!((h.churn, h.authors.clone()), (3, vec!["ann".to_string(), "bob".to_string()]));
    assert_eq!(h.last_commit, commits[0].id);
    assert_eq!(ix.commits_touching("README.md", 10).unwrap().len(), 1);
    assert!(ix.commit(&commits[2].id).unwrap().is_some());
}

#[test]
fn rewritten_history_is_reindexed() {
    let fx = Fixture::git();
    fx.write("a.rs", "fn a() {}\n");
    fx.commit("one", "ann", 1_000);
    fx.write("a.rs", "fn a2() {}\n");
    fx.commit("two", "ann", 2_000);
    let ix = open(&fx);
    assert_eq!(update(&ix).commits, 2);
    // Reset to a new root commit: the old head is no longer an ancestor.
    let repo = fx.repo.as_ref().unwrap();
    let sig = Signature::new("zed", "z@example.com", &Time::new(5_000, 0)).unwrap();
    let tree = repo.head().unwrap().peel_to_tree().unwrap();
    let new_root = repo.commit(None, &sig, &sig, "squashed", &tree, &[]).unwrap();
    repo.reference("refs/heads/master", new_root, true, "reset").unwrap();
    repo.set_head("refs/heads/master").unwrap();
    let r = update(&ix);
    assert!(r.history_rewritten);
    assert_eq!(r.commits, 1);
    let c = ix.commits_touching("a.rs", 10).unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].summary, "squashed");
}

#[test]
fn corrupt_or_old_index_is_rebuilt_with_a_reason() {
    let fx = Fixture::plain();
    fx.write("a.rs", "fn survivor() {}\n");
    let dir = fx.root().join(".patois");
    update(&open(&fx));
    // Garbage in tantivy's meta.json.
    std::fs::write(dir.join("meta.json"), b"{ not json").unwrap();
    let ix = open(&fx);
    let r = update(&ix);
    assert!(r.rebuilt.as_deref().unwrap().contains("rebuilt the index"), "{:?}", r.rebuilt);
    assert_eq!(ix.symbols_named("survivor", 5).unwrap().len(), 1);
    drop(ix);
    // A manifest from another schema version.
    let m = dir.join(patois_index::MANIFEST_FILE);
    let text = std::fs::read_to_string(&m).unwrap().replace(
        &format!("\"schema_version\":{}", patois_index::SCHEMA_VERSION),
        "\"schema_version\":0",
    );
    std::fs::write(&m, text).unwrap();
    let ix = open(&fx);
    let r = update(&ix);
    assert!(r.rebuilt.as_deref().unwrap().contains("schema version 0"), "{:?}", r.rebuilt);
    assert_eq!(r.parsed, 1);
    assert_eq!(ix.symbols_named("survivor", 5).unwrap().len(), 1, "no duplicates after rebuild");
    // A deleted segment file.
    drop(ix);
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "store") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let ix = open(&fx);
    assert!(update(&ix).rebuilt.is_some());
    assert_eq!(ix.symbols_named("survivor", 5).unwrap().len(), 1);
}

#[test]
fn non_git_folder_and_empty_repo_have_no_history() {
    let fx = Fixture::plain();
    fx.write("m.py", "def f():\n    pass\n");
    let r = update(&open(&fx));
    assert!(r.no_history.unwrap().contains("not in a git repository"));
    assert_eq!((r.files, r.commits), (1, 0));

    let fx = Fixture::git();
    fx.write("m.py", "def f():\n    pass\n");
    let r = update(&open(&fx));
    assert!(r.no_history.unwrap().contains("no commits yet"));
    assert_eq!((r.files, r.commits), (1, 0));
}

#[test]
fn pr_export_from_gh_is_imported() {
    let fx = Fixture::git();
    fx.write("src/auth.rs", "fn login() {}\n");
    fx.commit("Add login (#5)", "ann", 1_000);
    let prs = fx.dir.path().join("..").join(format!("prs-{}.json", std::process::id()));
    std::fs::write(
        &prs,
        r#"[{"number":5,"title":"Add login","body":"Sessions expire after an hour.","files":[{"path":"src/auth.rs","additions":1,"deletions":0}],"comments":[{"author":{"login":"rev"},"body":"Why an hour?"}]}]"#,
    )
    .unwrap();
    let ix = open(&fx);
    let r = ix
        .update(&UpdateOptions { prs: Some(prs.clone()), threads: 1, ..Default::default() }, &Quiet)
        .unwrap();
    std::fs::remove_file(&prs).unwrap();
    assert_eq!(r.prs, 1);
    let hits = ix.prs_touching("src/auth.rs", 5).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].title, "Add login");
    assert!(
        hits[0].text.contains("expire after an hour") && hits[0].text.contains("rev: Why an hour?")
    );
    assert_eq!(ix.pr(5).unwrap().unwrap().number, 5);
}
