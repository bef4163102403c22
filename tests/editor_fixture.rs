//! The repository the editor end-to-end tests open: a store module, a caller of it, a
//! `main` with an empty line to type on, committed; and a model that always says one word.

use patois_generate::write::{make_constant_model_dir, tiny_config};
use patois_testkit::Fixture;
use std::path::PathBuf;

/// The fixture, the model's word (so the ghost text is known, whatever the prompt) and the
/// fixture's canonical root.
pub fn store_app_and_main() -> (Fixture, String, PathBuf) {
    let fx = Fixture::store_and_app();
    fx.write("src/main.rs", "use crate::store::fetch_value;\n\nfn main() {\n\n}\n");
    fx.commit("Store and app (#3)", "ann", 1_000);
    let corpus = fx.read("src/store.rs") + &fx.read("src/app.rs");
    let word = make_constant_model_dir(
        &fx.root().join(".patois/model"),
        std::iter::repeat_n(corpus.as_str(), 20),
        &tiny_config(600),
        "fetch_value",
    )
    .unwrap();
    // No latency budget: the editors' tests compare ghost text exactly, whatever the speed.
    fx.write("patois.toml", "max_tokens = 12\nlatency_budget_ms = 0\n");
    let root = fx.root().canonicalize().unwrap();
    (fx, word, root)
}
