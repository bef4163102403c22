//! Editor settings (`initializationOptions`, `workspace/didChangeConfiguration`).

use patois_engine::Settings;
use serde_json::Value;
use std::path::PathBuf;

/// Merges editor settings over `base`. Accepts `{ "patois": {...} }` or the object itself;
/// keys with the wrong type or an unknown value change nothing.
pub fn merge_settings(base: &Settings, v: &Value) -> Settings {
    let v = v.get("patois").unwrap_or(v);
    let mut s = base.clone();
    let path = |p: &str| (!p.is_empty()).then(|| PathBuf::from(p));
    if let Some(m) = v.get("model").and_then(Value::as_str) {
        s.model = path(m);
    }
    if let Some(a) = v.get("adapter").and_then(Value::as_str) {
        s.adapter = path(a);
    }
    match v.get("adapterStrength") {
        Some(Value::Null) => s.adapter_strength = None,
        Some(x) if x.is_number() => s.adapter_strength = x.as_f64().map(|x| x as f32),
        _ => {}
    }
    for (k, slot) in [
        ("budget", &mut s.budget),
        ("maxTokens", &mut s.max_tokens),
        ("promptTokens", &mut s.prompt_tokens),
        ("maxDocumentBytes", &mut s.max_document_bytes),
    ] {
        if let Some(n) = v.get(k).and_then(Value::as_u64) {
            *slot = usize::try_from(n).unwrap_or(usize::MAX);
        }
    }
    if let Some(b) = v.get("backend").and_then(Value::as_str) {
        if let Ok(kind) = serde_json::from_value(Value::String(b.to_string())) {
            s.backend = kind;
        }
    }
    if let Some(c) = v.get("cache").and_then(Value::as_bool) {
        s.cache = c;
    }
    if let Some(f) = v.get("fallbackToLocal").and_then(Value::as_bool) {
        s.fallback_to_local = f;
    }
    if let Some(t) = v.get("trainWhenIdle").and_then(Value::as_bool) {
        s.train_when_idle = t;
    }
    if let Some(n) = v.get("idleSeconds").and_then(Value::as_u64) {
        s.idle_seconds = n;
    }
    if let Some(n) = v.get("latencyBudgetMs").and_then(Value::as_u64) {
        s.latency_budget_ms = n;
    }
    if let Some(m) = v.get("idleTrainingMinutes").and_then(Value::as_f64).filter(|m| *m > 0.0) {
        s.idle_training_minutes = m;
    }
    let text =
        |k: &str| v.get(k).and_then(Value::as_str).map(|t| (!t.is_empty()).then(|| t.to_string()));
    for (k, slot) in [
        ("endpoint", &mut s.endpoint),
        ("modelName", &mut s.model_name),
        ("adapterName", &mut s.adapter_name),
        ("apiKeyEnv", &mut s.api_key_env),
    ] {
        if let Some(t) = text(k) {
            *slot = t;
        }
    }
    if let Some(l) = v.get("disabledLanguages").and_then(Value::as_array) {
        s.disabled_languages = l.iter().filter_map(|x| x.as_str().map(str::to_string)).collect();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::merge_settings;
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
}
