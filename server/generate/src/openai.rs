//! Generation on an OpenAI-compatible server (llama-server, vLLM, Ollama,
//! llama-cpp-python): patois builds the prompt, counts tokens and applies its stop rules
//! locally, and sends only the finished prompt to `/v1/completions`, streamed, so that a
//! cancelled request closes the stream. Token budgets and the FIM template come from a
//! local copy of the model family's tokenizer (the server runs the same one). Prose
//! (explanations, answers) goes to `/v1/chat/completions` as messages: the server applies
//! the chat template of the model it serves.

use crate::{
    finish, stop, Backend, ChatMessage, Completion, Decoded, Error, GenOptions, ModelInfo,
    StopReason,
};
use patois_types::{FimStyle, Tokens};
use serde_json::{json, Value};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokenizers::Tokenizer;

/// Where and how to reach the server.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// The API base, e.g. `http://127.0.0.1:8080/v1`.
    pub endpoint: String,
    /// Sent as `model`: the served model, or a LoRA module's name (vLLM, llama-server).
    pub model_name: String,
    /// Sent as a bearer token when set. Never logged.
    pub api_key: Option<String>,
    pub connect_timeout: Duration,
    /// How long to wait for the response to start (the server prefills meanwhile).
    pub first_token_timeout: Duration,
}

impl RemoteOptions {
    pub fn new(endpoint: &str, model_name: &str) -> RemoteOptions {
        RemoteOptions {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            model_name: model_name.to_string(),
            api_key: None,
            connect_timeout: Duration::from_secs(2),
            first_token_timeout: Duration::from_secs(20),
        }
    }
}

/// A model served elsewhere, with the local tokenizer of its family.
pub struct RemoteBackend {
    agent: ureq::Agent,
    opts: RemoteOptions,
    tokenizer: Tokenizer,
    info: ModelInfo,
}

impl RemoteBackend {
    /// Prepares requests to `opts.endpoint`; `tokenizer_from` is the local GGUF file (or
    /// a folder with `tokenizer.json`) of the same model family. Nothing is sent yet.
    pub fn new(opts: RemoteOptions, tokenizer_from: &Path) -> Result<RemoteBackend, Error> {
        let tokenizer = local_tokenizer(tokenizer_from)?;
        let fim = FimStyle::detect(|t| tokenizer.token_to_id(t).is_some());
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(opts.connect_timeout))
            .timeout_recv_response(Some(opts.first_token_timeout))
            .timeout_recv_body(Some(opts.first_token_timeout))
            .http_status_as_error(false)
            .build();
        let info = ModelInfo {
            path: PathBuf::from(&opts.endpoint),
            format: crate::ModelFormat::Remote,
            arch: opts.model_name.clone(),
            parameters: 0,
            context: 4096,
            fim,
            backend: crate::RunBy::Openai,
        };
        Ok(RemoteBackend { agent: config.into(), opts, tokenizer, info })
    }

    /// Checks that the server tokenizes like the local tokenizer, where it says how it
    /// tokenizes (`/tokenize` of llama-server and vLLM, `/extras/tokenize` of
    /// llama-cpp-python). `Ok(None)`: the server offers no such endpoint.
    pub fn check_tokenizer(&self, sample: &str) -> Result<Option<bool>, Error> {
        let local = self.encode(sample)?;
        let base = self.opts.endpoint.trim_end_matches("/v1");
        let attempts = [
            (format!("{base}/tokenize"), json!({ "content": sample, "add_special": false })),
            (
                format!("{base}/tokenize"),
                json!({ "model": self.opts.model_name, "prompt": sample, "add_special_tokens": false }),
            ),
            (format!("{base}/extras/tokenize"), json!({ "input": sample })),
        ];
        for (url, body) in attempts {
            let Ok(mut resp) = self.post(&url).send_json(&body) else { continue };
            if !resp.status().is_success() {
                continue;
            }
            let Ok(v) = resp.body_mut().read_json::<Value>() else { continue };
            let Some(ids) = v["tokens"].as_array() else { continue };
            let ids: Vec<u32> = ids.iter().filter_map(|t| t.as_u64().map(|t| t as u32)).collect();
            return Ok(Some(ids == local));
        }
        Ok(None)
    }

    fn post(&self, url: &str) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        let req = self.agent.post(url);
        match &self.opts.api_key {
            Some(key) => req.header("Authorization", &format!("Bearer {key}")),
            None => req,
        }
    }

    fn unreachable(&self, e: ureq::Error) -> Error {
        Error::Unreachable { endpoint: self.opts.endpoint.clone(), message: e.to_string() }
    }
}

fn local_tokenizer(path: &Path) -> Result<Tokenizer, Error> {
    let load = |message: String| Error::Load { path: path.to_path_buf(), message };
    if path.extension().is_some_and(|e| e == "gguf") {
        return crate::tokenizer_from_gguf_file(path).map_err(|e| load(e.to_string()));
    }
    let file = path.join("tokenizer.json");
    if !path.exists() {
        return Err(Error::Missing {
            path: path.to_path_buf(),
            message: format!(
                "no local copy of the model at {} for its tokenizer; set `model` to the GGUF \
                 file of the family the server runs",
                path.display()
            ),
        });
    }
    Tokenizer::from_file(&file).map_err(|e| load(format!("{}: {e}", file.display())))
}

impl Tokens for RemoteBackend {
    fn offsets(&self, text: &str) -> Vec<(usize, usize)> {
        crate::hf_tokens::hf_offsets(&self.tokenizer, text)
    }
}

impl Backend for RemoteBackend {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>, Error> {
        crate::hf_tokens::hf_encode(&self.tokenizer, text)
    }

    /// Nothing is cached here; the server keeps its own prompt cache.
    fn clear_cache(&self) {}

    fn complete(
        &self,
        prompt: &str,
        suffix: &str,
        opts: &GenOptions,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Completion, Error> {
        let t0 = Instant::now();
        let prompt_tokens = self.count(prompt);
        let fields = json!({ "prompt": prompt, "stop": self.info.fim.stop_tokens() });
        let body = self.body(fields, opts);
        let decoded = self.stream("completions", &body, completion_piece, opts, t0, cancelled)?;
        Ok(timed(decoded, suffix, prompt_tokens, t0))
    }

    fn chat(
        &self,
        messages: &[ChatMessage],
        opts: &GenOptions,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Completion, Error> {
        let t0 = Instant::now();
        let prompt_tokens = self.count(&self.chat_prompt(messages));
        let messages: Vec<Value> = messages
            .iter()
            .map(|m| json!({ "role": m.role.as_str(), "content": m.content }))
            .collect();
        let body = self.body(json!({ "messages": messages }), opts);
        let decoded = self.stream("chat/completions", &body, chat_piece, opts, t0, cancelled)?;
        Ok(timed(decoded, "", prompt_tokens, t0))
    }
}

impl RemoteBackend {
    /// A streamed request's body: `fields` with the model and the sampling settings.
    fn body(&self, fields: Value, opts: &GenOptions) -> Value {
        let mut body = json!({
            "model": self.opts.model_name,
            "max_tokens": opts.max_tokens,
            "temperature": opts.temperature.unwrap_or(0.0),
            "top_p": opts.top_p.unwrap_or(1.0),
            "seed": opts.seed,
            "stream": true,
        });
        if let (Some(body), Value::Object(fields)) = (body.as_object_mut(), fields) {
            body.extend(fields);
        }
        body
    }

    /// Posts `body` to the endpoint's `path` and reads the streamed answer, each event's
    /// text taken by `piece`.
    fn stream(
        &self,
        path: &str,
        body: &Value,
        piece: fn(&Value) -> Option<&str>,
        opts: &GenOptions,
        t0: Instant,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Decoded, Error> {
        let url = format!("{}/{path}", self.opts.endpoint);
        let resp = self.post(&url).send_json(body).map_err(|e| self.unreachable(e))?;
        let status = resp.status().as_u16();
        if status >= 400 {
            let mut resp = resp;
            let text = resp.body_mut().read_to_string().unwrap_or_default();
            return Err(Error::Rejected {
                endpoint: self.opts.endpoint.clone(),
                status,
                message: text.chars().take(300).collect(),
            });
        }
        // One line per event; the stream closes when the reader is dropped.
        let events = std::io::BufReader::new(resp.into_body().into_reader());
        read_stream(events, piece, opts, t0, cancelled)
    }
}

/// The completion a stream decoded, its time split at the first token (the server's
/// prefill and queueing are not told apart from it).
fn timed(decoded: Decoded, suffix: &str, prompt_tokens: usize, t0: Instant) -> Completion {
    let total = t0.elapsed().as_secs_f64() * 1e3;
    let first = decoded.first_token_ms;
    finish(decoded, suffix, prompt_tokens, 0, first, total - first)
}

/// The text of a `/completions` event's choice.
fn completion_piece(choice: &Value) -> Option<&str> {
    choice["text"].as_str()
}

/// The text of a `/chat/completions` event's choice (the first event may carry only the
/// role).
fn chat_piece(choice: &Value) -> Option<&str> {
    choice["delta"]["content"].as_str()
}

/// Reads the server's stream of completion events (`data: {…}` lines) until it ends, a
/// stop rule cuts the text, or the request is cancelled.
fn read_stream(
    mut events: impl BufRead,
    piece: fn(&Value) -> Option<&str>,
    opts: &GenOptions,
    t0: Instant,
    cancelled: &dyn Fn() -> bool,
) -> Result<Decoded, Error> {
    let mut decoded = Decoded {
        text: String::new(),
        stop: StopReason::MaxTokens,
        tokens: 0,
        first_token_ms: 0.0,
    };
    let mut line = String::new();
    loop {
        if cancelled() {
            decoded.stop = StopReason::Cancelled;
            return Ok(decoded);
        }
        line.clear();
        match events.read_line(&mut line) {
            Ok(0) => return Ok(decoded),
            Ok(_) => {}
            Err(e) => return Err(Error::Generation(format!("reading the stream: {e}"))),
        }
        let Some(data) = line.trim().strip_prefix("data:").map(str::trim) else { continue };
        if data == "[DONE]" {
            return Ok(decoded);
        }
        let Ok(event) = serde_json::from_str::<Value>(data) else { continue };
        let choice = &event["choices"][0];
        if let Some(text) = piece(choice).filter(|t| !t.is_empty()) {
            if decoded.tokens == 0 {
                decoded.first_token_ms = t0.elapsed().as_secs_f64() * 1e3;
            }
            decoded.tokens += 1;
            decoded.text.push_str(text);
            if let Some(written) = &opts.written {
                written.lock().unwrap_or_else(|p| p.into_inner()).clone_from(&decoded.text);
            }
        }
        if let Some((keep, why)) =
            stop::check(opts.mode, &decoded.text, opts.indent, opts.max_lines)
        {
            decoded.text.truncate(keep);
            decoded.stop = why;
            return Ok(decoded);
        }
        match choice["finish_reason"].as_str() {
            Some("stop") => {
                decoded.stop = StopReason::EndOfText;
                return Ok(decoded);
            }
            Some(_) => return Ok(decoded),
            None => {}
        }
    }
}
