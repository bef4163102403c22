//! The engine end to end: real index, real git, a tiny model written by our code.

use patois_engine::{builtin_model_dir, explain, Engine, Error, SectionTitle, Settings, Ticket};
use patois_generate::write::{make_model_dir, tiny_config};
use patois_index::{Index, Quiet, UpdateOptions};
use patois_testkit::Fixture;

fn setup() -> (Fixture, Engine) {
    let fx = Fixture::git();
    fx.write("src/store.rs", "/// Keeps values.\npub struct Store {\n    items: Vec<u32>,\n}\n\nimpl Store {\n    pub fn put(&mut self, v: u32) {\n        self.items.push(v);\n    }\n}\n");
    fx.commit("Add store (#4)", "ann", 1_000);
    fx.write("src/app.rs", "use crate::store::Store;\n\npub fn fill(s: &mut Store) {\n    s.put(1);\n    s.put(2);\n}\n");
    fx.write(
        "tests/store_test.rs",
        "#[test]\nfn puts() {\n    let mut s = Store { items: vec![] };\n    s.put(3);\n}\n",
    );
    fx.commit("Use the store", "bob", 2_000);
    let ix = Index::open(fx.root(), &fx.root().join(".patois")).unwrap();
    ix.update(&UpdateOptions { threads: 1, ..Default::default() }, &Quiet).unwrap();
    let texts = ["pub fn put(&mut self, v: u32) { self.items.push(v); }\n"; 30];
    make_model_dir(&builtin_model_dir(ix.dir()), texts.iter(), &tiny_config(400), 3).unwrap();
    let home = fx.root().join(".no-installed-models");
    // No latency budget (the tests that want one set it): outputs do not depend on speed.
    let settings = Settings { max_tokens: 8, latency_budget_ms: 0, ..Default::default() };
    (fx, Engine::new(ix, settings).with_models_home(home))
}

#[test]
fn completion_runs_retrieval_prompt_and_model_and_cites_its_context() {
    let (_fx, e) = setup();
    let doc = "use crate::store::Store;\n\npub fn more(s: &mut Store) {\n    s.\n}\n";
    let cursor = doc.find("s.\n").unwrap() + 2;
    let r = e.complete("src/more.rs", doc, cursor, &Ticket::detached()).unwrap();
    assert!(r.tokens >= 1 && r.prompt_tokens > 20, "{r:?}");
    assert!(
        r.citations.iter().any(|c| c.path == "src/store.rs" && c.start_line == 2),
        "{:?}",
        r.citations
    );
    assert!(!r.cached);
    // The same request again comes from the completion cache.
    let again = e.complete("src/more.rs", doc, cursor, &Ticket::detached()).unwrap();
    assert!(again.cached);
    assert_eq!(again.text, r.text);
    // Typing one more character reuses the model's KV cache for the shared prefix.
    let doc2 = doc.replacen("s.\n", "s.p\n", 1);
    let r2 = e.complete("src/more.rs", &doc2, cursor + 1, &Ticket::detached()).unwrap();
    assert!(r2.cache_hit_tokens > r2.prompt_tokens / 2, "{r2:?}");
}

#[test]
fn lines_found_elsewhere_or_begun_as_another_are_finished_without_the_model() {
    let (_fx, e) = setup();
    let doc = "impl Other {\n    pub fn put(&mut self, v: u32) {\n        \n    }\n}\n";
    let cursor = doc.find("        \n").unwrap() + 8;
    let r = e.complete("src/other.rs", doc, cursor, &Ticket::detached()).unwrap();
    assert_eq!(r.text, "self.items.push(v);");
    assert_eq!((r.tokens, r.prompt_tokens), (0, 0), "the model did not run: {r:?}");
    let c = &r.citations[0];
    assert_eq!((c.path.as_str(), c.start_line, c.end_line), ("src/store.rs", 7, 8));
    // A line begun as another line of the document is finished as that one, cited.
    let begun = "fn f(s: &mut Store) {\n    s.insert(7);\n    s.ins\n}\n";
    let at = begun.find("s.ins\n").unwrap() + 5;
    let r = e.complete("src/other.rs", begun, at, &Ticket::detached()).unwrap();
    assert_eq!((r.text.as_str(), r.tokens, r.citations[0].start_line), ("ert(7);", 0, 2));
    // With no retrieved context asked for, the model completes.
    e.set_settings(Settings { budget: 0, ..e.settings() }).unwrap();
    let r = e.complete("src/other.rs", doc, cursor, &Ticket::detached()).unwrap();
    assert!(r.prompt_tokens > 0, "{r:?}");
}

/// Trains a few steps of the house adapter on `e`'s repository; returns its folder.
fn train_house_adapter(e: &Engine) -> std::path::PathBuf {
    let adapter = patois_engine::adapter_dir(e.index().dir(), "house");
    let opts = patois_train::TrainOptions {
        steps: Some(4),
        seq_len: 48,
        eval_windows: 2,
        ..Default::default()
    };
    let stop = std::sync::atomic::AtomicBool::new(false);
    let base = builtin_model_dir(e.index().dir());
    patois_train::train_lora(e.index(), &base, &adapter, &opts, &stop, &patois_train::Silent)
        .unwrap();
    adapter
}

/// Retrieval beats the adapter's memory: with an adapter trained while a method was
/// called `put` in place, the completion after renaming it to `insert` uses the new name.
#[test]
fn after_a_rename_completions_use_the_new_name_despite_the_adapter() {
    let (fx, e) = setup();
    let adapter = train_house_adapter(&e);
    let doc = "use crate::store::Store;\n\npub fn fill(s: &mut Store) {\n    \n}\n";
    let cursor = doc.find("    \n").unwrap() + 4;
    let r = e.complete("src/more.rs", doc, cursor, &Ticket::detached()).unwrap();
    // An empty body: the block found elsewhere, whole.
    assert_eq!(r.text, "s.put(1);\n    s.put(2);", "{r:?}");
    assert_eq!(e.status().adapter.as_deref(), Some(adapter.as_path()), "the adapter is applied");
    for f in ["src/store.rs", "src/app.rs"] {
        fx.write(f, fx.read(f).replace("put(", "insert("));
    }
    e.update_index(&UpdateOptions { threads: 1, ..Default::default() }, &Quiet).unwrap();
    let r = e.complete("src/more.rs", doc, cursor, &Ticket::detached()).unwrap();
    assert_eq!(r.text, "s.insert(1);\n    s.insert(2);", "{r:?}");
}

/// The adapter's strength: the setting, else its `patois.json`, else 1; out of range is a
/// settings error that names the key, and the status shows it.
#[test]
fn the_adapter_strength_comes_from_the_settings_then_the_adapter() {
    let (_fx, e) = setup();
    assert_eq!(e.status().adapter_strength, None, "no adapter, no strength");
    let adapter = train_house_adapter(&e);
    assert_eq!(e.status().adapter_strength, Some(0.5), "training records half strength");
    let mut p = patois_adapter::Provenance::load(&adapter).unwrap();
    p.strength = None;
    p.save(&adapter).unwrap();
    assert_eq!(e.status().adapter_strength, Some(1.0), "none recorded: as trained");
    e.set_settings(Settings { adapter_strength: Some(0.25), ..e.settings() }).unwrap();
    assert_eq!(e.status().adapter_strength, Some(0.25), "the setting wins");
    let err = e.set_settings(Settings { adapter_strength: Some(7.0), ..e.settings() });
    let err = err.unwrap_err();
    assert!(matches!(err, Error::Settings { .. }), "{err:?}");
    assert!(err.to_string().contains("adapter_strength is 7"), "{err}");
    assert!(e.status().model_error.is_some_and(|m| m.contains("between 0 and 4")));
}

#[test]
fn a_newer_request_for_the_same_document_cancels_the_older() {
    let (_fx, e) = setup();
    let old = e.begin("src/a.rs");
    let other_doc = e.begin("src/b.rs");
    assert!(!old.is_cancelled());
    let new = e.begin("src/a.rs");
    assert!(old.is_cancelled() && !new.is_cancelled() && !other_doc.is_cancelled());
    let r = e.complete("src/a.rs", "fn main() {\n    \n}\n", 16, &old).unwrap();
    assert_eq!(r.stop, patois_generate::StopReason::Cancelled);
    assert_eq!(r.tokens, 0);
}

#[test]
fn huge_documents_and_disabled_languages_are_refused_politely() {
    let (_fx, e) = setup();
    e.set_settings(Settings { max_document_bytes: 10, ..e.settings() }).unwrap();
    let err =
        e.complete("src/a.rs", "fn main() { let x = 1; }", 5, &Ticket::detached()).unwrap_err();
    assert!(matches!(err, Error::DocumentTooLarge { bytes: 24, limit: 10, .. }), "{err:?}");
    assert!(err.is_quiet() && err.to_string().contains("max_document_bytes"), "{err}");
    e.set_settings(Settings { disabled_languages: vec!["rust".into()], ..Settings::default() })
        .unwrap();
    let err = e.complete("src/a.rs", "fn main() {}", 5, &Ticket::detached()).unwrap_err();
    assert!(matches!(&err, Error::LanguageDisabled { language } if language == "rust"));
    assert!(err.to_string().contains("disabled for rust"), "{err}");
}

#[test]
fn explain_cites_definition_callers_tests_and_history_at_real_lines() {
    let (fx, e) = setup();
    let text = fx.read("src/store.rs");
    let x = explain(&e, "src/store.rs", &text, 7, 7, None).unwrap();
    assert_eq!(x.symbol.as_deref(), Some("put"));
    let sec = |t: SectionTitle| x.sections.iter().find(|s| s.title == t).unwrap();
    let def = &sec(SectionTitle::Definition).entries[0];
    assert_eq!((def.citation.start_line, def.citation.end_line), (7, 9));
    assert!(def.excerpt.starts_with("    pub fn put"));
    let callers = &sec(SectionTitle::Callers).entries;
    assert!(
        callers.iter().any(|c| c.citation.path == "src/app.rs" && c.citation.start_line == 3),
        "{callers:?}"
    );
    // Every cited range points at lines that exist and mention what they claim.
    for c in callers {
        let file = fx.read(&c.citation.path);
        let lines: Vec<&str> = file.lines().collect();
        let cited =
            lines[c.citation.start_line as usize - 1..c.citation.end_line as usize].join("\n");
        assert!(cited.contains("put"), "{cited}");
    }
    assert!(sec(SectionTitle::Tests)
        .entries
        .iter()
        .any(|t| t.citation.path == "tests/store_test.rs"));
    let hist = &sec(SectionTitle::History).entries;
    assert!(
        hist.iter().any(|h| h.citation.pr == Some(4) && h.label.starts_with("introduced `put`")),
        "{hist:?}"
    );
    assert!(x.markdown.contains("### Callers") && x.markdown.contains("(#4)"));
}

#[test]
fn patois_toml_sets_keys_and_rejects_unknown_ones() {
    let fx = Fixture::plain();
    fx.write("patois.toml", "model = \"/models/coder.gguf\"\nmax_tokens = 12\ndisabled_languages = [\"go\", \"python\"]\n");
    let s = Settings::from_repo(fx.root()).unwrap();
    assert_eq!(s.model.as_deref(), Some(std::path::Path::new("/models/coder.gguf")));
    assert_eq!((s.max_tokens, s.budget), (12, Settings::default().budget));
    assert_eq!(s.disabled_languages, ["go", "python"]);
    fx.write("patois.toml", "max_tokenz = 3\n");
    let err = Settings::from_repo(fx.root()).unwrap_err().to_string();
    assert!(err.contains("patois.toml") && err.contains("max_tokenz"), "{err}");
}

/// Without a model in the settings, the best installed catalogue model that keeps up with
/// typing here runs; the status names the better ones passed over and why, also when none
/// fits and the installed default runs.
#[test]
fn the_best_installed_model_that_keeps_up_with_typing_runs() {
    let (fx, _) = setup();
    let home = fx.root().join("home");
    let catalogue = patois_models::Catalogue::builtin();
    let install = |name: &str, prefill: f64, decode: f64| {
        let entry = catalogue.get(name).unwrap().clone();
        let file = entry.path_in(&home);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::File::create(&file).unwrap().set_len(entry.size).unwrap();
        let cpu = patois_models::this_cpu();
        let measured = patois_models::Measured {
            cpu,
            prefill_tokens_per_s: prefill,
            decode_tokens_per_s: decode,
        };
        measured.save(&entry, &home).unwrap();
        file
    };
    let large = install("qwen2.5-coder-1.5b", 94.0, 33.0);
    let small = install("qwen2.5-coder-0.5b", 215.0, 52.0);
    let ix = Index::open(fx.root(), &fx.root().join(".patois")).unwrap();
    let e = Engine::new(ix, Settings::default()).with_models_home(home.clone());
    let chosen = e.model_choice();
    assert_eq!(chosen.path, small, "{}", chosen.source);
    assert!(chosen.source.contains("qwen2.5-coder-1.5b passed over"), "{}", chosen.source);
    assert!(chosen.source.contains("keep up with typing"), "{}", chosen.source);
    let fast = patois_models::Measured {
        cpu: patois_models::this_cpu(),
        prefill_tokens_per_s: 2000.0,
        decode_tokens_per_s: 200.0,
    };
    fast.save(catalogue.get("qwen2.5-coder-1.5b").unwrap(), &home).unwrap();
    assert_eq!(e.model_choice().path, large, "a fast machine runs the larger model");
    install("qwen2.5-coder-1.5b", 40.0, 8.0);
    install("qwen2.5-coder-0.5b", 90.0, 27.0);
    let fallback = e.model_choice();
    assert_eq!(fallback.path, small, "{}", fallback.source);
    assert!(fallback.source.contains("no installed model fits"), "{}", fallback.source);
    assert!(fallback.source.contains("over the latency budget"), "{}", fallback.source);
}

#[test]
fn the_model_comes_from_settings_then_the_installed_default_then_the_built_in_model() {
    let (fx, e) = setup();
    let builtin = e.model_choice();
    assert_eq!(builtin.path, builtin_model_dir(e.index().dir()));
    assert!(builtin.source.contains("built-in"), "{}", builtin.source);
    // An installed default model (a sparse file of the pinned size) wins over the built-in one.
    let home = fx.root().join("home");
    let entry = patois_models::Catalogue::builtin().default_entry().clone();
    let file = entry.path_in(&home);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::File::create(&file).unwrap().set_len(entry.size).unwrap();
    let ix = Index::open(fx.root(), &fx.root().join(".patois")).unwrap();
    let e = Engine::new(ix, Settings::default()).with_models_home(home.clone());
    let installed = e.model_choice();
    assert_eq!(installed.path, file);
    assert!(installed.source.contains(&entry.name), "{}", installed.source);
    // A file of another size is not taken for the model.
    std::fs::File::create(&file).unwrap().set_len(entry.size - 1).unwrap();
    assert!(e.model_choice().source.contains("built-in"));
    // Settings win over both.
    let chosen = Settings { model: Some("/models/coder.gguf".into()), ..Default::default() };
    e.set_settings(chosen).unwrap_or(());
    let s = e.model_choice();
    assert_eq!(s.path, std::path::Path::new("/models/coder.gguf"));
    assert!(s.source.contains("settings"));
    // The missing file is a clear error naming what to do.
    let err = e.load_model().err().unwrap().to_string();
    assert!(err.contains("coder.gguf"), "{err}");
    // A catalogue name stands for that model's installed file, and says how to install it.
    let other = patois_models::Catalogue::builtin()
        .models
        .iter()
        .find(|m| m.name != entry.name)
        .unwrap()
        .clone();
    let by_name = Settings { model: Some(other.name.clone().into()), ..Default::default() };
    e.set_settings(by_name).unwrap_or(());
    let named = e.model_choice();
    assert_eq!(named.path, other.path_in(&home));
    let install = format!("patois model install {}", other.name);
    assert!(named.source.contains(&install), "{}", named.source);
    std::fs::create_dir_all(other.path_in(&home).parent().unwrap()).unwrap();
    std::fs::File::create(other.path_in(&home)).unwrap().set_len(other.size).unwrap();
    let named = e.model_choice();
    assert_eq!(named.path, other.path_in(&home));
    assert!(!named.source.contains("not installed"), "{}", named.source);
}

#[test]
fn a_model_that_fails_to_load_is_reported_and_tried_again_once_the_file_changes() {
    let (fx, e) = setup();
    let file = fx.root().join("broken.gguf");
    std::fs::write(&file, b"not a model").unwrap();
    e.set_settings(Settings { model: Some(file.clone()), ..e.settings() }).unwrap_err();
    let err = e.load_model().err().unwrap();
    assert!(matches!(&err, Error::Model { path, .. } if *path == file), "{err:?}");
    assert!(err.is_quiet(), "an editor shows it once, not per keystroke");
    assert_eq!(e.status().model_error, Some(err.to_string()));
    let again = e.complete("src/a.rs", "fn main() {}", 3, &Ticket::detached()).unwrap_err();
    assert_eq!(again.to_string(), err.to_string(), "the same failure, not a new load");
    // The file is replaced by a working model: the next request loads it.
    std::fs::remove_file(&file).unwrap();
    let dir = fx.root().join("fixed");
    make_model_dir(&dir, ["fn a() {}\n"; 10].iter(), &tiny_config(300), 1).unwrap();
    e.set_settings(Settings { model: Some(dir), ..e.settings() }).unwrap();
    assert!(e.load_model().is_ok());
    assert_eq!(e.status().model_error, None);
}

#[test]
fn no_model_at_all_is_its_own_quiet_error() {
    let (_fx, e) = setup();
    std::fs::remove_dir_all(builtin_model_dir(e.index().dir())).unwrap();
    let err = e.load_model().err().unwrap();
    assert!(matches!(err, Error::NoModel { .. }) && err.is_quiet(), "{err:?}");
    assert!(err.to_string().contains("patois model install"), "{err}");
}

#[test]
fn the_users_recent_edits_are_context_cited_as_edits() {
    use std::sync::Arc;
    let (fx, e) = setup();
    let store = Arc::new(fx.read("src/store.rs"));
    e.document_changed("src/store.rs", store.clone(), 1);
    let renamed = Arc::new(
        store.replace("pub fn put(&mut self, v: u32)", "pub fn put(&mut self, value: u64)"),
    );
    e.document_changed("src/store.rs", renamed, 7);
    let app = fx.read("src/app.rs");
    let r = e.context("src/app.rs", &app, app.len(), 4000).unwrap();
    let edit =
        r.items.iter().find(|i| i.source == patois_engine::Source::Edit).expect("an edit item");
    assert_eq!((edit.citation.path.as_str(), edit.citation.start_line), ("src/store.rs", 7));
    assert!(edit.text.contains("-    pub fn put(&mut self, v: u32)"), "{}", edit.text);
    assert!(edit.text.contains("+    pub fn put(&mut self, value: u64)"), "{}", edit.text);
    // Undone: the hunk's text is gone, and so is the item.
    e.document_changed("src/store.rs", store, 7);
    let r = e.context("src/app.rs", &app, app.len(), 4000).unwrap();
    assert!(r.items.iter().all(|i| i.source != patois_engine::Source::Edit), "{:#?}", r.items);
}

/// The latency budget sizes the prompt to the measured speed: a fast machine gets the
/// settings' whole window; a slow one at most what it prefills while the user pauses, and
/// from a cold cache a smaller prompt that answers in time.
#[test]
fn the_budget_shrinks_the_prompt_when_the_measured_speed_is_low() {
    use patois_engine::{Run, Speed};
    let (_fx, e) = setup();
    e.set_settings(Settings { latency_budget_ms: 1000, prompt_tokens: 1024, ..e.settings() })
        .unwrap();
    e.load_model().unwrap();
    let doc = "use crate::store::Store;\n\npub fn more(s: &mut Store) {\n    s.\n}\n";
    let cursor = doc.find("s.\n").unwrap() + 2;
    let full = e.settings().prompt_window(e.load_model().unwrap().info().context);
    e.set_speed(Some(Speed { prefill_tokens_per_s: 1e6, decode_tokens_per_s: 1e5 }));
    assert_eq!(e.status().full_prompt_window, Some(full));
    let fast = e.complete("src/more.rs", doc, cursor, &Ticket::detached()).unwrap();
    assert_eq!((fast.prompt_window, fast.shrunk), (full, false), "{fast:?}");
    // 200 prompt tokens/s: the largest prompt is 1.6 budgets of prefill (or 384), and a cold
    // cache affords less.
    e.clear_completion_cache();
    e.load_model().unwrap().clear_cache();
    e.set_speed(Some(Speed { prefill_tokens_per_s: 200.0, decode_tokens_per_s: 20.0 }));
    let largest = e.status().full_prompt_window.unwrap();
    assert!(largest < full / 2, "{largest} of {full}");
    let slow = e.complete("src/more.rs", doc, cursor, &Ticket::detached()).unwrap();
    assert!(slow.shrunk && slow.prompt_window < largest, "{slow:?}");
    assert!(slow.prompt_tokens <= slow.prompt_window, "{slow:?}");
    assert!(slow.prompt_tokens < fast.prompt_tokens, "{slow:?} {fast:?}");
    let status = e.status();
    assert_eq!(status.prompt_window, Some(slow.prompt_window));
    assert!(status.speed.is_some(), "the speed shows in the status");
    // The largest prompt prefilled in the background up to the cursor's line (the answer
    // to this text is cached): the next request there has all of it, and the model reads
    // again only the cursor's line, the short suffix and the markers.
    e.warm("src/more.rs", doc, cursor, &e.begin_background("src/more.rs")).unwrap();
    assert_eq!(e.status().runs.warm.runs, 1, "the warm-up ran the model");
    e.clear_completion_cache();
    let warmed = e.complete("src/more.rs", doc, cursor, &Ticket::detached()).unwrap();
    assert_eq!(warmed.prompt_window, largest, "{warmed:?}");
    let line_and_suffix = warmed.prompt_tokens - warmed.cache_hit_tokens;
    assert!((2..=24).contains(&line_and_suffix), "{warmed:?}");
    // A completion computed ahead (after an accepted one) has the prompt a request has.
    e.clear_completion_cache();
    let ahead = e.complete_as("src/more.rs", doc, cursor, &Ticket::detached(), Run::Ahead).unwrap();
    assert_eq!(ahead.prompt_window, largest, "{ahead:?}");
    assert!(ahead.prompt_tokens - ahead.cache_hit_tokens <= 24, "{ahead:?}");
}

/// After a warm-up, a keystroke makes the model read again only the cursor's line, with the
/// whole window kept: prefix first also the suffix that follows it (short under a latency
/// budget, whole without one), suffix first only the line, since the suffix comes before.
#[test]
fn under_a_budget_a_keystroke_recomputes_only_the_cursor_line_and_a_short_suffix() {
    use patois_engine::Speed;
    use patois_prompt::FimOrder;
    let (_fx, e) = setup();
    let after: String = (0..40).map(|i| format!("    s.put({i});\n")).collect();
    let doc =
        format!("use crate::store::Store;\n\npub fn more(s: &mut Store) {{\n    s.\n{after}}}\n");
    let cursor = doc.find("s.\n").unwrap() + 2;
    let typed = format!("{}p{}", &doc[..cursor], &doc[cursor..]);
    let read_again = |fim_order| {
        let settings =
            Settings { latency_budget_ms: 1000, prompt_tokens: 1024, fim_order, ..e.settings() };
        e.set_settings(settings).unwrap();
        e.clear_completion_cache();
        let full = e.settings().prompt_window(e.load_model().unwrap().info().context);
        e.set_speed(Some(Speed { prefill_tokens_per_s: 1e6, decode_tokens_per_s: 1e5 }));
        e.warm("src/more.rs", &doc, cursor, &e.begin_background("src/more.rs")).unwrap();
        let r = e.complete("src/more.rs", &typed, cursor + 1, &Ticket::detached()).unwrap();
        assert_eq!(r.prompt_window, full, "{r:?}");
        (r.prompt_tokens - r.cache_hit_tokens, r)
    };
    // The warm-up stopped at the cursor's line: its 7 characters (this test model's
    // tokenizer knows few words) are read again, prefix first also the 16-token suffix
    // and the markers.
    let (prefix_first, r) = read_again(FimOrder::PrefixFirst);
    assert!(prefix_first <= 28, "{prefix_first} tokens read again: {r:?}");
    e.set_settings(Settings { latency_budget_ms: 0, ..e.settings() }).unwrap();
    e.clear_completion_cache();
    let whole = e.complete("src/more.rs", &typed, cursor + 1, &Ticket::detached()).unwrap();
    assert!(whole.prompt_tokens >= r.prompt_tokens + 32, "without a budget the suffix is long");
    let (suffix_first, r) = read_again(FimOrder::SuffixFirst);
    assert!(suffix_first <= 8, "{suffix_first} tokens read again: {r:?}");
    assert!(suffix_first + 10 <= prefix_first, "{suffix_first} against {prefix_first}");
}

/// A completion computed in the background (after an accepted ghost text) waits in the
/// cache: the request for that text finds it there.
#[test]
fn a_speculative_completion_is_found_by_the_next_request() {
    use patois_engine::Run;
    let (_fx, e) = setup();
    let doc = "use crate::store::Store;\n\npub fn more(s: &mut Store) {\n    s.put(4);\n    \n}\n";
    let cursor = doc.find("    \n}").unwrap() + 4;
    let ahead = e.begin_background("src/more.rs");
    let r = e.complete_as("src/more.rs", doc, cursor, &ahead, Run::Full).unwrap();
    assert!(!r.cached);
    let asked = e.complete("src/more.rs", doc, cursor, &e.begin("src/more.rs")).unwrap();
    assert!(asked.cached, "{asked:?}");
    assert_eq!(asked.text, r.text);
}

/// A question reads the definitions and uses of the names it spells like code and the
/// commits of the files it names in the month it names; a name nowhere in the index is
/// "not found" (no model runs), and every `[n]` an answer keeps is a source it was given.
#[test]
fn a_question_reads_the_definitions_uses_and_commits_it_names() {
    use patois_engine::Question;
    let (_fx, e) = setup();
    let ask = |text: &str| {
        e.ask(&Question { text: text.into(), ..Default::default() }, None, &|| false).unwrap()
    };
    let a = ask("Who calls `put`?");
    let found: Vec<(&str, &str)> =
        a.sources.iter().map(|s| (s.label.as_str(), s.citation.path.as_str())).collect();
    assert!(
        found.iter().any(|(l, p)| l.starts_with("definition of `put`") && *p == "src/store.rs"),
        "{found:?}"
    );
    assert!(found.iter().any(|(l, p)| *l == "uses `put`" && *p == "src/app.rs"), "{found:?}");
    assert!(a.answer.is_some() != a.note.is_some(), "{a:?}");
    if let Some(answer) = &a.answer {
        assert!(answer.cited.iter().all(|n| (1..=answer.in_prompt).contains(n)), "{answer:?}");
    }
    let why = ask("Why did `src/store.rs` change in January 1970?");
    let commits: Vec<&str> = why
        .sources
        .iter()
        .filter(|s| s.citation.commit.is_some())
        .map(|s| s.label.as_str())
        .collect();
    assert!(commits.iter().any(|l| l.contains("1970-01-01")), "{why:?}");
    let later = ask("Why did `src/store.rs` change in March 2020?");
    assert!(later.sources.iter().all(|s| s.citation.commit.is_none()), "{later:?}");
    let none = ask("Where is `frobnicate_widgets` defined?");
    assert!(none.answer.is_none(), "{none:?}");
    assert!(none.note.unwrap().starts_with("Not found: `frobnicate_widgets`"));
}

/// After a rename at one use, the old name's other uses are the next edits: in the
/// document first, then in the indexed files, each with the new name and a citation.
#[test]
fn a_rename_is_propagated_to_the_other_uses_of_the_old_name() {
    let (_fx, e) = setup();
    let before = "use crate::store::Store;\n\npub fn fill(s: &mut Store) {\n    s.put(1);\n    s.put(2);\n}\n";
    e.document_changed("src/app.rs", std::sync::Arc::new(before.to_string()), 1);
    assert!(e.next_edits("src/app.rs").unwrap().is_empty(), "no edit yet");
    let after = before.replacen("s.put(1)", "s.save(1)", 1);
    e.document_changed("src/app.rs", std::sync::Arc::new(after), 4);
    let edits = e.next_edits("src/app.rs").unwrap();
    let at: Vec<(&str, u32, &str)> =
        edits.iter().map(|x| (x.path.as_str(), x.line, &x.line_text[x.start..x.end])).collect();
    assert_eq!(at[0], ("src/app.rs", 5, "put"), "{at:?}");
    assert!(at.contains(&("src/store.rs", 7, "put")), "the definition: {at:?}");
    assert!(at.contains(&("tests/store_test.rs", 4, "put")), "a test: {at:?}");
    assert!(edits.iter().all(|x| x.new_text == "save" && x.reason.contains("`put` was renamed")));
    // A use changed to call another existing function is no rename: nothing follows.
    e.forget_edits();
    e.document_changed("src/app.rs", std::sync::Arc::new(before.to_string()), 6);
    let other = before.replacen("s.put(1)", "s.fill(1)", 1);
    e.document_changed("src/app.rs", std::sync::Arc::new(other), 7);
    assert!(e.next_edits("src/app.rs").unwrap().is_empty(), "`fill` exists already");
}

/// Each edit's file, line and the line it makes.
fn made_by(edits: &[patois_engine::NextEdit]) -> Vec<(&str, u32, String)> {
    let line = |x: &patois_engine::NextEdit| {
        format!("{}{}{}", &x.line_text[..x.start], x.new_text, &x.line_text[x.end..])
    };
    edits.iter().map(|x| (x.path.as_str(), x.line, line(x))).collect()
}

/// A parameter added to a function's definition: its callers, in the indexed files, pass
/// the new parameter's name; a call with another number of arguments is left alone.
#[test]
fn a_signature_change_yields_the_callers() {
    let (_fx, e) = setup();
    let before = "/// Keeps values.\npub struct Store {\n    items: Vec<u32>,\n}\n\nimpl Store {\n    pub fn put(&mut self, v: u32) {\n        self.items.push(v);\n    }\n}\n";
    e.document_changed("src/store.rs", std::sync::Arc::new(before.to_string()), 1);
    let after = before.replacen("v: u32)", "v: u32, at: usize)", 1);
    e.document_changed("src/store.rs", std::sync::Arc::new(after), 7);
    let edits = e.next_edits("src/store.rs").unwrap();
    let made = made_by(&edits);
    assert!(made.contains(&("src/app.rs", 4, "    s.put(1, at);".into())), "{made:?}");
    assert!(made.contains(&("src/app.rs", 5, "    s.put(2, at);".into())), "{made:?}");
    assert!(made.contains(&("tests/store_test.rs", 4, "    s.put(3, at);".into())), "{made:?}");
    assert_eq!(made.len(), 3, "the definition and `push` are no calls: {made:?}");
    assert!(edits.iter().all(|x| x.reason.starts_with("`put` gained a parameter `at`")));
}

#[test]
fn a_new_field_yields_the_literals_that_lack_it() {
    let (_fx, e) = setup();
    let before = "pub struct Store {\n    items: Vec<u32>,\n}\n\nimpl Store {\n    pub fn new() -> Self {\n        Self { items: Vec::new() }\n    }\n\n    pub fn copy(&self) -> Store {\n        Store { ..self.clone() }\n    }\n}\n";
    e.document_changed("src/store.rs", std::sync::Arc::new(before.to_string()), 1);
    let after = before.replacen("Vec<u32>,\n", "Vec<u32>,\n    len: usize,\n", 1);
    e.document_changed("src/store.rs", std::sync::Arc::new(after), 3);
    let edits = e.next_edits("src/store.rs").unwrap();
    let made = made_by(&edits);
    assert_eq!(
        made,
        [
            ("src/store.rs", 8, "        Self { items: Vec::new(), len: 0 }".to_string()),
            ("tests/store_test.rs", 3, "    let mut s = Store { items: vec![], len: 0 };".into()),
        ],
        "`..self.clone()` sets the rest"
    );
    assert!(edits.iter().all(|x| x.reason.starts_with("`Store` gained a field `len`")));
}

#[test]
fn a_new_dataclass_field_yields_the_constructor_calls() {
    let (_fx, e) = setup();
    let before = "from dataclasses import dataclass\n\n@dataclass\nclass Point:\n    x: int\n\n\ndef origin():\n    return Point(0)\n";
    e.document_changed("geo.py", std::sync::Arc::new(before.to_string()), 1);
    let after = before.replacen("    x: int\n", "    x: int\n    y: int\n", 1);
    e.document_changed("geo.py", std::sync::Arc::new(after), 6);
    let edits = e.next_edits("geo.py").unwrap();
    assert_eq!(made_by(&edits), [("geo.py", 10, "    return Point(0, y)".to_string())]);
    assert_eq!(edits[0].reason, "`Point` gained a field `y` at geo.py:6");
}

#[test]
fn a_new_variant_yields_the_matches_that_list_the_variants() {
    let (_fx, e) = setup();
    let before = "pub enum Op {\n    Put(u32),\n    Clear,\n}\n\npub fn run(s: &mut Store, op: Op) {\n    match op {\n        Op::Put(v) => s.put(v),\n        Op::Clear => s.items.clear(),\n    }\n}\n\npub fn is_put(op: &Op) -> bool {\n    matches!(op, Op::Put(_))\n}\n";
    e.document_changed("src/op.rs", std::sync::Arc::new(before.to_string()), 1);
    let after = before.replacen("    Clear,\n", "    Clear,\n    Drop { at: usize },\n", 1);
    e.document_changed("src/op.rs", std::sync::Arc::new(after), 4);
    let edits = e.next_edits("src/op.rs").unwrap();
    let arm = "        Op::Clear => s.items.clear(),\n        Op::Drop { .. } => todo!(),";
    assert_eq!(made_by(&edits), [("src/op.rs", 10, arm.to_string())]);
    assert_eq!(edits[0].reason, "`Op` gained a variant `Drop` at src/op.rs:4");
}

#[test]
fn a_piece_replaced_in_a_line_yields_the_lines_shaped_like_it() {
    let (_fx, e) = setup();
    let before = "pub fn load(v: &[u32]) -> Option<u32> {\n    let a = v.get(0).copied().unwrap();\n    let b = v.get(1).copied().unwrap();\n    assert!(v.iter().all(|x| x.checked_add(1).unwrap() > 0));\n    Some(a + b)\n}\n";
    e.document_changed("src/load.rs", std::sync::Arc::new(before.to_string()), 1);
    let after = before.replacen("v.get(0).copied().unwrap()", "v.get(0).copied()?", 1);
    e.document_changed("src/load.rs", std::sync::Arc::new(after), 2);
    let edits = e.next_edits("src/load.rs").unwrap();
    let made = "    let b = v.get(1).copied()?;".to_string();
    assert_eq!(made_by(&edits), [("src/load.rs", 3, made)], "not line 4: another shape");
    assert_eq!(edits[0].reason, "the same change as at src/load.rs:2: `.unwrap()` → `?`");
}
