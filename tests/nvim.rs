//! The Neovim plugin in a real headless Neovim (Debian's 0.7 in CI) against the
//! real `patois serve`: ghost text appears, is accepted, and :PatoisExplain cites.

use patois_generate::write::{make_constant_model_dir, tiny_config};
use patois_testkit::Fixture;
use std::process::Command;

#[test]
fn neovim_shows_and_accepts_ghost_text_and_explains() {
    let fx = Fixture::store_and_app();
    fx.write("src/main.rs", "use crate::store::fetch_value;\n\nfn main() {\n\n}\n");
    fx.commit("Store and app (#3)", "ann", 1_000);
    let corpus = fx.read("src/store.rs") + &fx.read("src/app.rs");
    // A model that always says one word: the ghost text is known, whatever the prompt.
    let word = make_constant_model_dir(
        &fx.root().join(".patois/model"),
        std::iter::repeat_n(corpus.as_str(), 20),
        &tiny_config(600),
        "fetch_value",
    )
    .unwrap();
    fx.write("patois.toml", "max_tokens = 12\n");
    let root = fx.root().canonicalize().unwrap();
    let repo =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap();
    let result = root.join("nvim-result.txt");
    let status = Command::new("nvim")
        .args(["--headless", "-u", "NONE", "-i", "NONE", "-n"])
        .arg("--cmd")
        .arg(format!("set rtp^={}", repo.join("editors/nvim").display()))
        .arg("-c")
        .arg(format!("luafile {}", repo.join("tests/nvim/ghost_text.lua").display()))
        .arg(root.join("src/main.rs"))
        .current_dir(&root)
        .env("PATOIS_BIN", env!("CARGO_BIN_EXE_patois"))
        .env("PATOIS_HOME", root.join(".no-installed-models"))
        .env("PATOIS_RESULT", &result)
        .env("PATOIS_WORD", &word)
        .env("PATOIS_ROW", "4")
        .env("PATOIS_STORE", root.join("src/store.rs"))
        .status()
        .expect("nvim is installed (.ci/run installs Debian's neovim)");
    let outcome = std::fs::read_to_string(&result)
        .unwrap_or_else(|_| format!("no result written; nvim exited with {status}"));
    assert_eq!(outcome, "ok");
}
