//! The packaged VS Code extension in a real VS Code (code-server, driven in Debian's
//! chromium by playwright-core) against the real `patois serve`: the status bar names the
//! model, ghost text appears and Tab accepts it, "Explain with patois" shows citations
//! that open the cited place, and "Ask patois" shows an answer's sources that open too. Screenshots land in target/vscode-e2e/.

#[path = "editor_fixture.rs"]
mod editor_fixture;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn vscode_shows_and_accepts_ghost_text_and_explains() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap();
    let vsix = repo.join("editors/vscode/patois.vsix");
    let install = code_server_install();
    let needs = [
        (patois_testkit::runs("node", &["--version"]), "Node 20".to_string()),
        (
            vsix.exists(),
            format!("{} (`npm ci && npm run package` in editors/vscode)", vsix.display()),
        ),
        (
            install.join("node_modules/.bin/code-server").exists(),
            format!("code-server in {} (scripts/code-server.sh)", install.display()),
        ),
    ];
    for (present, what) in needs {
        if !patois_testkit::tool_ready("the VS Code test", present, &what) {
            return;
        }
    }

    let (_fx, word, root) = editor_fixture::store_app_and_main();
    let scratch = tempfile::tempdir().unwrap();
    let shots = repo.join("target/vscode-e2e");
    std::fs::create_dir_all(&shots).unwrap();
    let _ = std::fs::remove_file(shots.join("failure.png"));
    let result = scratch.path().join("result.txt");

    let mut driver = Command::new("node")
        .arg(repo.join("tests/vscode/drive.mjs"))
        .current_dir(scratch.path())
        .env("PATOIS_CODE_SERVER", &install)
        .env("PATOIS_VSIX", &vsix)
        .env("PATOIS_BIN", env!("CARGO_BIN_EXE_patois"))
        .env("PATOIS_HOME", root.join(".no-installed-models"))
        .env("PATOIS_FOLDER", &root)
        .env("PATOIS_FILE", "src/main.rs")
        .env("PATOIS_ROW", "4")
        .env("PATOIS_TYPED", "    let total = ")
        .env("PATOIS_WORD", &word)
        .env("PATOIS_MODEL_LABEL", "model (")
        .env("PATOIS_EXPLAIN_FILE", "src/store.rs")
        .env("PATOIS_EXPLAIN_ROW", "2")
        .env("PATOIS_CITED", "src/store.rs:2,src/app.rs:3")
        .env("PATOIS_ASK", "Who calls `fetch_value`?")
        .env("PATOIS_ASK_SOURCE", "src/app.rs:3")
        .env("PATOIS_SHOTS", &shots)
        .env("PATOIS_SCRATCH", scratch.path())
        .env("PATOIS_RESULT", &result)
        .stdin(Stdio::null())
        .spawn()
        .expect("node runs (Node 20)");
    let started = Instant::now();
    while driver.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(300) {
            let _ = driver.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let outcome = std::fs::read_to_string(&result)
        .unwrap_or_else(|_| "no result written: the driver died or ran past 300 s".into());
    if outcome != "ok" {
        let logs = scratch.path().join("user-data/logs");
        let server_log = find_file(&logs, "1-patois.log")
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        panic!(
            "{outcome}\nscreenshot: {}\npatois output channel:\n{server_log}",
            shots.join("failure.png").display()
        );
    }
    // The accepted text is in the file VS Code saved.
    let main = std::fs::read_to_string(root.join("src/main.rs")).unwrap();
    assert!(main.contains(&format!("    let total = {word}")), "{main}");
}

/// Where scripts/code-server.sh installs code-server and playwright-core.
fn code_server_install() -> PathBuf {
    let cache = std::env::var_os("PATOIS_DEV_CACHE").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/patois-dev")
    });
    cache.join("code-server-4.100.3")
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let p = entry.path();
        if p.is_dir() {
            if let Some(found) = find_file(&p, name) {
                return Some(found);
            }
        } else if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
    }
    None
}
