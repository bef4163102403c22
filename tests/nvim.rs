//! The Neovim plugin in a real headless Neovim (Debian's 0.7 in CI) against the
//! real `patois serve`: ghost text appears, is accepted, :PatoisExplain and :PatoisAsk stream
//! their cited answers, and a next edit is shown and applied.

#[path = "editor_fixture.rs"]
mod editor_fixture;

use std::process::Command;

#[test]
fn neovim_shows_and_accepts_ghost_text_and_explains() {
    let present = patois_testkit::runs("nvim", &["--version"]);
    if !patois_testkit::tool_ready("the Neovim test", present, "nvim (apt install neovim)") {
        return;
    }
    let (_fx, word, root) = editor_fixture::store_app_and_main();
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
        // Slow enough that the explanation and the answer are seen streaming in.
        .env("PATOIS_TEST_TOKEN_DELAY_MS", "80")
        .env("PATOIS_WORD", &word)
        .env("PATOIS_ROW", "4")
        .env("PATOIS_STORE", root.join("src/store.rs"))
        .status()
        .expect("nvim is installed (.ci/run installs Debian's neovim)");
    let outcome = std::fs::read_to_string(&result)
        .unwrap_or_else(|_| format!("no result written; nvim exited with {status}"));
    assert_eq!(outcome, "ok");
}
