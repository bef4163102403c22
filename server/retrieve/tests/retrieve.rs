//! Retrieval against fixture repositories indexed for real.

use patois_index::{Index, Quiet, UpdateOptions};
use patois_retrieve::{chars, retrieve, Budget, Options, Request, Retrieved, Source};
use patois_testkit::Fixture;

fn index(fx: &Fixture) -> Index {
    let ix = Index::open(fx.root(), &fx.root().join(".patois")).unwrap();
    ix.update(&UpdateOptions { threads: 1, ..Default::default() }, &Quiet).unwrap();
    ix
}

/// Retrieval for `path` whose text is `text`, cursor at the `|` marker (removed).
fn at(ix: &Index, path: &str, marked: &str, budget: usize) -> Retrieved {
    at_with(ix, path, marked, budget, &Options::default())
}

fn at_with(ix: &Index, path: &str, marked: &str, budget: usize, opts: &Options) -> Retrieved {
    let cursor = marked.find('|').expect("a | marks the cursor");
    let text = marked.replacen('|', "", 1);
    let req = Request {
        path,
        text: &text,
        cursor,
        recent: &[],
        edits: &[],
        budget: Budget { limit: budget, count: &chars },
    };
    retrieve(ix, &req, opts).unwrap()
}

fn top_paths(r: &Retrieved, n: usize) -> Vec<String> {
    r.items
        .iter()
        .take(n)
        .map(|i| format!("{}:{}", i.citation.path, i.citation.start_line))
        .collect()
}

/// Noise: many files whose words overlap the query but define nothing relevant.
fn noise(fx: &Fixture) {
    for i in 0..12 {
        fx.write(
            &format!("src/noise{i}.rs"),
            format!("pub fn handle_{i}(amount: u64) -> u64 {{\n    let total = amount + {i};\n    total\n}}\n"),
        );
    }
}

#[test]
fn definition_reachable_only_through_an_import_is_top_3() {
    let fx = Fixture::git();
    noise(&fx);
    fx.write("src/money/ledger.rs", "/// Double-entry book.\npub struct Ledger {\n    entries: Vec<u64>,\n}\n\nimpl Ledger {\n    pub fn post(&mut self, amount: u64) {\n        self.entries.push(amount);\n    }\n}\n");
    // A decoy with the same name elsewhere; the import says which one.
    fx.write("src/legacy/ledger.rs", "pub struct Ledger;\n");
    fx.commit("Books", "ann", 1_000);
    let ix = index(&fx);
    let doc = "use crate::money::ledger::Ledger;\n\npub fn settle(book: &mut Ledger, amount: u64) {\n    let total = amount * 2;\n    book.|\n}\n";
    let r = at(&ix, "src/settle.rs", doc, 4000);
    let top = top_paths(&r, 3);
    assert!(top.contains(&"src/money/ledger.rs:2".to_string()), "{top:?}\n{:#?}", r.items);
    let def = r.items.iter().find(|i| i.citation.path == "src/money/ledger.rs").unwrap();
    assert_eq!(def.source, Source::Definition);
    assert!(
        def.text.contains("pub fn post(&mut self, amount: u64)  // src/money/ledger.rs:7"),
        "{}",
        def.text
    );
    assert!(def.text.starts_with("/// Double-entry book."));
    assert!(
        !r.items.iter().any(|i| i.citation.path == "src/legacy/ledger.rs"),
        "decoy ranked: {:#?}",
        r.items
    );
}

#[test]
fn receiver_type_brings_the_type_and_its_methods() {
    let fx = Fixture::git();
    fx.write("app/cache.py", "class LruCache:\n    \"\"\"Bounded cache.\"\"\"\n\n    def lookup(self, key):\n        return None\n\n    def insert(self, key, value):\n        pass\n");
    fx.write("app/util.py", "def lookup_all(keys):\n    return [k for k in keys]\n");
    fx.commit("Cache", "ann", 1_000);
    let ix = index(&fx);
    // No import: the type is only known from the annotation of `store`.
    let doc = "def warm(store: LruCache, keys):\n    for k in keys:\n        store.|\n";
    let r = at(&ix, "app/warm.py", doc, 4000);
    let top = top_paths(&r, 3);
    assert_eq!(top[0], "app/cache.py:1", "{:#?}", r.items);
    assert!(r.items[0].text.contains("def insert(self, key, value)"), "{}", r.items[0].text);
    assert_eq!(r.items[0].score.reason, "receiver of a method call near the cursor");
}

#[test]
fn self_type_in_a_go_method() {
    let fx = Fixture::git();
    fx.write(
        "store/store.go",
        "package store\n\n// Store holds values.\ntype Store struct {\n\tm map[string]int\n}\n",
    );
    fx.write(
        "store/get.go",
        "package store\n\nfunc (s *Store) Get(k string) int {\n\treturn s.m[k]\n}\n",
    );
    fx.commit("Store", "ann", 1_000);
    let ix = index(&fx);
    let doc = "package store\n\nfunc (s *Store) Put(k string, v int) {\n\ts.|\n}\n";
    let r = at(&ix, "store/put.go", doc, 4000);
    assert_eq!(top_paths(&r, 1), ["store/store.go:4"], "{:#?}", r.items);
    assert!(
        r.items[0].text.contains("func (s *Store) Get(k string) int  // store/get.go:3"),
        "{}",
        r.items[0].text
    );
}

#[test]
fn the_region_being_completed_is_never_returned() {
    let fx = Fixture::git();
    let body = "pub fn checksum(data: &[u8]) -> u32 {\n    let mut acc: u32 = 0;\n    for b in data {\n        acc = acc.wrapping_mul(31).wrapping_add(*b as u32);\n    }\n    acc\n}\n\npub fn other() {}\n";
    fx.write("src/sum.rs", body);
    let twin = "pub fn hash_bytes(data: &[u8]) -> u32 {\n    let mut acc: u32 = 7;\n    for b in data {\n        acc = acc.wrapping_mul(31).wrapping_add(*b as u32);\n    }\n    acc\n}\n";
    fx.write("src/hash.rs", twin);
    fx.commit("Checksum", "ann", 1_000);
    let ix = index(&fx);
    // Completing inside checksum: the indexed copy of that function must not come back,
    // while its twin in another file does.
    let doc = "pub fn checksum(data: &[u8]) -> u32 {\n    let mut acc: u32 = 0;\n    for b in data {\n        acc = acc.wrapping_mul(31).|\n    }\n    acc\n}\n\npub fn other() {}\n";
    let r = at(&ix, "src/sum.rs", doc, 4000);
    for i in &r.items {
        if i.citation.path == "src/sum.rs" && i.citation.commit.is_none() {
            assert!(
                i.citation.end_line < 1 || i.citation.start_line > 7,
                "region returned: {i:#?}"
            );
        }
    }
    let similar = r.items.iter().find(|i| i.source == Source::Similar);
    assert_eq!(similar.map(|i| i.citation.path.as_str()), Some("src/hash.rs"), "{:#?}", r.items);
}

#[test]
fn history_of_the_file_and_function_with_pr_numbers() {
    let fx = Fixture::git();
    fx.write("src/auth.rs", "pub fn login(user: &str) -> bool {\n    !user.is_empty()\n}\n");
    fx.commit("Add login", "ann", 1_000);
    fx.write(
        "src/auth.rs",
        "pub fn login(user: &str) -> bool {\n    !user.is_empty() && user.len() < 64\n}\n",
    );
    fx.commit("Cap user names at 64 bytes (#31)", "bob", 2_000);
    let ix = index(&fx);
    let doc = "pub fn login(user: &str) -> bool {\n    !user.is_empty() && user.len() < 64|\n}\n";
    let r = at(&ix, "src/auth.rs", doc, 4000);
    let hist: Vec<_> = r.items.iter().filter(|i| i.source == Source::History).collect();
    assert!(!hist.is_empty(), "{:#?}", r.items);
    assert_eq!(hist[0].citation.pr, Some(31));
    assert!(hist[0].title.starts_with("Cap user names at 64 bytes (#31)"));
    assert!(hist[0].score.reason.contains("enclosing function"), "{}", hist[0].score.reason);
    assert!(hist.iter().any(|h| h.title.starts_with("Add login")));
    assert_eq!(hist[0].citation.commit.as_deref().map(str::len), Some(40));
}

#[test]
fn budget_is_respected_and_items_are_deduplicated() {
    let fx = Fixture::git();
    noise(&fx);
    fx.commit("noise", "ann", 1_000);
    let ix = index(&fx);
    let doc = "pub fn go(amount: u64) -> u64 {\n    let total = amount + 1;\n    handle_3(|)\n}\n";
    let r = at(&ix, "src/go.rs", doc, 300);
    let used: usize = r.items.iter().map(|i| chars(&i.text) + chars(&i.citation.to_string())).sum();
    assert!(used <= 300 && !r.items.is_empty(), "{used}");
    let mut keys: Vec<_> = r
        .items
        .iter()
        .map(|i| (i.citation.path.clone(), i.citation.start_line, i.citation.commit.clone()))
        .collect();
    let n = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), n);
    assert_eq!(r.items[0].citation.path, "src/noise3.rs", "{:#?}", r.items);
}

#[test]
fn at_an_import_the_names_the_file_uses_but_does_not_import_come_first() {
    let fx = Fixture::git();
    noise(&fx);
    fx.write("src/money/ledger.rs", "pub struct Ledger {\n    entries: Vec<u64>,\n}\n");
    fx.write(
        "src/money/audit.rs",
        "pub fn audit(book: &crate::money::ledger::Ledger) -> bool {\n    true\n}\n",
    );
    fx.write("src/report.rs", "pub struct Report;\n");
    fx.commit("Books", "ann", 1_000);
    let ix = index(&fx);
    // `Ledger` and `audit` are used below but not imported yet; `Report` is imported.
    let doc = "use crate::report::Report;\n|\n\npub fn close(book: &Ledger) -> Report {\n    if audit(book) { Report } else { Report }\n}\n";
    let r = at(&ix, "src/close.rs", doc, 4000);
    let top = top_paths(&r, 3);
    assert!(top.contains(&"src/money/ledger.rs:1".to_string()), "{top:?}\n{:#?}", r.items);
    assert!(top.contains(&"src/money/audit.rs:1".to_string()), "{top:?}\n{:#?}", r.items);
    assert!(r.items[0].score.reason.contains("not imported"), "{:#?}", r.items[0]);
}

/// `Store::open() -> Store` and `Store::reader() -> Result<Reader>`, `Reader` in its own file.
fn store_and_reader() -> (Fixture, Index) {
    let fx = Fixture::git();
    noise(&fx);
    fx.write("src/store/mod.rs", "pub struct Store;\n\nimpl Store {\n    pub fn open() -> Store {\n        Store\n    }\n\n    pub fn reader(&self) -> crate::Result<Reader> {\n        todo!()\n    }\n}\n");
    fx.write("src/store/reader.rs", "pub struct Reader {\n    pos: u64,\n}\n\nimpl Reader {\n    pub fn next_record(&mut self) -> Option<u64> {\n        None\n    }\n}\n");
    fx.commit("Store", "ann", 1_000);
    let ix = index(&fx);
    (fx, ix)
}

#[test]
fn a_variable_gets_the_type_its_call_returns() {
    let (_fx, ix) = store_and_reader();
    // No type is written for `r`: `Store::open()` gives `store` its type, and
    // `Store::reader` returns `Result<Reader>`.
    let doc = "pub fn scan() {\n    let store = Store::open();\n    let mut r = store.reader().unwrap();\n    |\n}\n";
    let r = at(&ix, "src/scan.rs", doc, 4000);
    let top = top_paths(&r, 3);
    assert!(top.contains(&"src/store/reader.rs:1".to_string()), "{top:?}\n{:#?}", r.items);
    let item = r.items.iter().find(|i| i.citation.path == "src/store/reader.rs").unwrap();
    assert!(item.score.reason.contains("returned by reader"), "{}", item.score.reason);
    assert!(item.text.contains("pub fn next_record(&mut self) -> Option<u64>"), "{}", item.text);
}

#[test]
fn go_variable_typed_by_a_multi_value_return() {
    let fx = Fixture::git();
    fx.write("store/store.go", "package store\n\ntype Store struct{}\n\nfunc Open() *Store { return &Store{} }\n\nfunc (s *Store) Records(n int) (*Reader, error) { return nil, nil }\n");
    fx.write("store/reader.go", "package store\n\n// Reader walks records.\ntype Reader struct{ pos int }\n\nfunc (r *Reader) NextRecord() int { return r.pos }\n");
    fx.commit("Store", "ann", 1_000);
    let ix = index(&fx);
    let doc = "package main\n\nfunc scan() {\n\ts := Open()\n\tr, err := s.Records(1)\n\t|\n}\n";
    let r = at(&ix, "cmd/scan.go", doc, 4000);
    let item = r.items.iter().take(3).find(|i| i.citation.path == "store/reader.go");
    let item = item.unwrap_or_else(|| panic!("{:#?}", r.items));
    assert!(item.score.reason.contains("type of r (returned by Records)"), "{}", item.score.reason);
    assert!(item.text.contains("NextRecord"), "{}", item.text);
}

#[test]
fn a_member_typed_after_a_call_chain_brings_the_chain_type() {
    let (_fx, ix) = store_and_reader();
    let doc = "pub fn scan() -> u64 {\n    Store::open().reader().unwrap().|\n}\n";
    let r = at(&ix, "src/scan.rs", doc, 4000);
    let first = &r.items[0];
    assert_eq!(first.citation.path, "src/store/reader.rs", "{:#?}", r.items);
    assert!(first.score.reason.contains("expression before the cursor"), "{}", first.score.reason);
}

#[test]
fn the_tests_that_call_the_function_at_the_cursor() {
    let fx = Fixture::git();
    noise(&fx);
    fx.write(
        "src/ledger.rs",
        "pub fn settle(amounts: &[u64]) -> u64 {\n    amounts.iter().sum()\n}\n\n\
         pub fn report() -> String {\n    format!(\"{}\", settle(&[1]))\n}\n\n\
         #[cfg(test)]\nmod tests {\n    #[test]\n    fn settle_adds_every_amount() {\n        \
         assert_eq!(super::settle(&[1, 2]), 3);\n    }\n}\n",
    );
    fx.write(
        "tests/ledger.rs",
        "#[test]\nfn settles_nothing_to_zero() {\n    assert_eq!(app::ledger::settle(&[]), 0);\n}\n",
    );
    fx.write(
        "tests/other.rs",
        "#[test]\nfn unrelated() {\n    assert_eq!(app::ledger::report(), \"1\");\n}\n",
    );
    fx.commit("ledger", "ann", 1_000);
    let ix = index(&fx);
    let doc = "pub fn settle(amounts: &[u64]) -> u64 {\n    |\n}\n";
    // Similar code would show these tiny tests first (fusion keeps one copy of each).
    let opts = Options { max_similar: 0, ..Options::default() };
    let r = at_with(&ix, "src/ledger.rs", doc, 8000, &opts);
    let tests: Vec<_> = r.items.iter().filter(|i| i.source == Source::Test).collect();
    let cited: Vec<_> = tests.iter().map(|t| t.citation.path.as_str()).collect();
    assert_eq!(tests.len(), 2, "{:#?}", r.items);
    assert!(cited.contains(&"tests/ledger.rs") && cited.contains(&"src/ledger.rs"), "{cited:?}");
    // The test named after the function ranks first (BM25 alone puts `mod tests` first).
    assert_eq!(tests[0].title, "settles_nothing_to_zero");
    assert!(tests[0].score.reason.contains("`settle`"), "{}", tests[0].score.reason);
    // The caller that is not a test is no test item.
    assert!(tests.iter().all(|t| !t.text.contains("fn report")), "{tests:#?}");

    // In test code there is no function under test to find tests for.
    let in_test = "#[test]\nfn settles_once() {\n    |\n}\n";
    let r = at_with(&ix, "tests/ledger.rs", in_test, 8000, &opts);
    assert!(r.items.iter().all(|i| i.source != Source::Test), "{:#?}", r.items);
}
