//! Editor settings (`initializationOptions`, `workspace/didChangeConfiguration`).

use patois_engine::Settings;
use serde_json::Value;

/// Merges editor settings over `base`. Accepts `{ "patois": {...} }` or the object itself.
/// Every declared setting is read under its camelCase key ([`patois_engine::Declared`]);
/// an empty string clears an optional one; a value of the wrong type, an unknown value,
/// or one the setting does not allow changes nothing.
pub fn merge_settings(base: &Settings, v: &Value) -> Settings {
    let v = v.get("patois").unwrap_or(v);
    let mut merged = base.clone();
    for d in Settings::declared() {
        if let Some(value) = v.get(d.editor_key()) {
            if let Some(s) = with_value(&merged, d.name, value) {
                merged = s;
            }
        }
    }
    merged
}

/// The settings reference (`docs/settings.md`): every declared setting with its key in
/// `patois.toml` and in the editor, its default and what it does.
pub fn settings_reference() -> String {
    let defaults = serde_json::to_value(Settings::default()).unwrap_or_default();
    let mut out = String::from(
        "# Settings\n\n<!-- Generated from server/engine/src/settings.rs by the test \
         `settings_reference_is_current` (PATOIS_BLESS=1 rewrites it). -->\n\n\
         In `patois.toml` at the repository root, or from the editor (VS Code: `patois.KEY` in \
         the settings; other clients: `initializationOptions` and \
         `workspace/didChangeConfiguration` with `{ \"patois\": { KEY: value } }`).\n\n\
         | `patois.toml` | editor | default | what it does |\n| --- | --- | --- | --- |\n",
    );
    for d in Settings::declared() {
        let default = match &defaults[d.name] {
            Value::Null => "none".to_string(),
            v => format!("`{v}`"),
        };
        let reload = if d.reloads_model { " A change reloads the model." } else { "" };
        out.push_str(&format!(
            "| `{}` | `{}` | {default} | {}{reload} |\n",
            d.name,
            d.editor_key(),
            d.doc
        ));
    }
    out
}

/// `s` with the setting `name` set to `value`, if it takes it.
fn with_value(s: &Settings, name: &str, value: &Value) -> Option<Settings> {
    let Ok(Value::Object(mut all)) = serde_json::to_value(s) else { return None };
    let cleared = (value == "").then_some(Value::Null);
    cleared.into_iter().chain([value.clone()]).find_map(|candidate| {
        all.insert(name.to_string(), candidate);
        serde_json::from_value::<Settings>(Value::Object(all.clone()))
            .ok()
            .filter(|s| s.problem().is_none())
    })
}

#[cfg(test)]
mod tests {
    use super::{merge_settings, settings_reference};
    use patois_engine::{BackendKind, Settings};
    use serde_json::json;

    #[test]
    fn editor_settings_choose_the_model_and_backend() {
        let base = Settings::default();
        let s = merge_settings(
            &base,
            &json!({ "patois": { "model": "/m.gguf", "backend": "candle" } }),
        );
        assert_eq!(s.model.as_deref(), Some(std::path::Path::new("/m.gguf")));
        assert_eq!(s.backend, BackendKind::Candle);
        let s = merge_settings(&s, &json!({ "model": "", "backend": "warp-drive" }));
        assert_eq!(s.model, None, "an empty model means the default");
        assert_eq!(s.backend, BackendKind::Candle, "an unknown backend changes nothing");
        let s = merge_settings(&s, &json!({ "budget": "big", "maxTokens": 7 }));
        assert_eq!((s.budget, s.max_tokens), (base.budget, 7), "a string budget is ignored");
        let s = merge_settings(&s, &json!({ "latencyBudgetMs": 400 }));
        assert_eq!(s.latency_budget_ms, 400);
    }

    #[test]
    fn adapter_strength_is_a_number_and_null_clears_it() {
        let s = merge_settings(&Settings::default(), &json!({ "adapterStrength": 0.5 }));
        assert_eq!(s.adapter_strength, Some(0.5));
        let kept = merge_settings(&s, &json!({ "adapterStrength": "strong" }));
        assert_eq!(kept.adapter_strength, Some(0.5), "a string changes nothing");
        let cleared = merge_settings(&s, &json!({ "adapterStrength": null }));
        assert_eq!(cleared.adapter_strength, None, "null: the adapter's own strength");
    }

    #[test]
    fn every_setting_is_read_under_its_camel_case_key() {
        let s = merge_settings(
            &Settings::default(),
            &json!({ "promptTokens": 512, "maxDocumentBytes": 9, "cache": false,
                     "apiKeyEnv": "KEY", "idleTrainingMinutes": 2.5, "disabledLanguages": ["go"] }),
        );
        assert_eq!((s.prompt_tokens, s.max_document_bytes, s.cache), (512, 9, false));
        assert_eq!(s.api_key_env.as_deref(), Some("KEY"));
        assert_eq!(s.idle_training_minutes, 2.5);
        assert_eq!(s.disabled_languages, ["go"]);
        let s = merge_settings(&s, &json!({ "apiKeyEnv": "", "idleTrainingMinutes": 0 }));
        assert_eq!(s.api_key_env, None, "an empty string clears it");
        assert_eq!(s.idle_training_minutes, 2.5, "a value the setting does not allow is ignored");
    }

    fn repo_file(path: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
    }

    #[test]
    fn settings_reference_is_current() {
        let path = repo_file("docs/settings.md");
        let want = settings_reference();
        if std::env::var_os("PATOIS_BLESS").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "{} is not what server/engine/src/settings.rs declares: run \
             `PATOIS_BLESS=1 cargo test -p patois-lsp settings_reference` and commit it",
            path.display()
        );
    }

    /// VS Code's manifest offers the settings declared for the editor, with the same
    /// defaults, and the extension sends each of them.
    #[test]
    fn the_vscode_manifest_and_extension_follow_the_declared_settings() {
        let manifest = std::fs::read_to_string(repo_file("editors/vscode/package.json")).unwrap();
        let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
        let props = manifest["contributes"]["configuration"]["properties"].as_object().unwrap();
        // `patois.path` is the extension's own: where the server binary is.
        let offered: Vec<&str> = props
            .keys()
            .filter_map(|k| k.strip_prefix("patois."))
            .filter(|k| *k != "path")
            .collect();
        let declared = Settings::declared();
        let editor: Vec<String> =
            declared.iter().filter(|d| d.in_editor).map(|d| d.editor_key()).collect();
        let mut sorted = offered.clone();
        sorted.sort_unstable();
        let mut want: Vec<&str> = editor.iter().map(String::as_str).collect();
        want.sort_unstable();
        assert_eq!(sorted, want, "package.json's settings against the declared ones");
        let defaults = serde_json::to_value(Settings::default()).unwrap();
        for d in declared.iter().filter(|d| d.in_editor) {
            let shown = &props[&format!("patois.{}", d.editor_key())]["default"];
            let ours = &defaults[d.name];
            let same = match (ours, shown) {
                (serde_json::Value::Null, v) => v.is_null() || v == "",
                (a, b) if a.is_number() => a.as_f64() == b.as_f64(),
                (a, b) => a == b,
            };
            assert!(same, "{}: package.json's default {shown} is not {ours}", d.editor_key());
        }
        let logic = std::fs::read_to_string(repo_file("editors/vscode/src/logic.ts")).unwrap();
        let list = logic.split("SETTING_KEYS").nth(1).and_then(|r| r.split(']').nth(1)).unwrap();
        let mut sent: Vec<&str> = list.split('"').skip(1).step_by(2).collect();
        sent.sort_unstable();
        assert_eq!(sent, want, "logic.ts's SETTING_KEYS against the declared ones");
    }
}
