//! The frame reader between stdin and tower-lsp. tower-lsp's reader ends the session at
//! the first frame it cannot decode (tokio-util stops a stream after a decode error) and
//! allocates whatever `Content-Length` says, so every frame passes through here first:
//! headers are bounded, bodies over [`MAX_FRAME`] are skipped without being held, and a
//! body that is not a JSON-RPC message is replaced by a `patois/malformed` message that
//! the server answers with an error (or logs, when no request id can be read).

use crate::ext::{MalformedParams, MALFORMED_NOTIFICATION, MALFORMED_REQUEST};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tower_lsp_server::jsonrpc;

/// The largest frame accepted: 64 MiB.
pub const MAX_FRAME: usize = 64 << 20;
/// The longest header line kept; longer lines are garbage and dropped.
const MAX_HEADER_LINE: u64 = 4096;

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;

/// Reads frames from `input` and writes valid ones (or their replacements) to `out` until
/// `input` ends or `out` closes. Reading never waits for writing: frames queue in between
/// while the server is busy, so the client's writes never block (and `$/cancelRequest`
/// reaches the server as soon as it has room for it).
pub async fn forward<R, W>(input: R, mut out: W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (queue, mut queued) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let write = async move {
        while let Some(frame) = queued.recv().await {
            if out.write_all(&frame).await.is_err() || out.flush().await.is_err() {
                return; // Dropping `queued` ends the reading too.
            }
        }
    };
    tokio::join!(read_frames(input, queue), write);
}

/// Reads frames from `input` onto `queue` until `input` ends or the queue is closed.
async fn read_frames<R: AsyncRead + Unpin>(
    input: R,
    queue: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
) {
    let mut input = BufReader::new(input);
    loop {
        let Some(len) = read_headers(&mut input).await else { return };
        let message = match len {
            Err(why) => malformed(None, INVALID_REQUEST, why),
            Ok(len) if len > MAX_FRAME => {
                let skipped =
                    tokio::io::copy(&mut (&mut input).take(len as u64), &mut tokio::io::sink())
                        .await;
                if skipped.map_or(true, |n| n < len as u64) {
                    return;
                }
                let why = format!(
                    "a message of {len} bytes is over patois's limit of {MAX_FRAME} bytes; \
                     it was skipped"
                );
                malformed(None, INVALID_REQUEST, why)
            }
            Ok(len) => {
                let mut body = vec![0u8; len];
                if input.read_exact(&mut body).await.is_err() {
                    return;
                }
                check(&body)
            }
        };
        let Some(message) = message else { continue };
        if queue.send(frame(&message)).is_err() {
            return;
        }
    }
}

/// `body` as one LSP frame: its `Content-Length` header, then the body.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

/// The length a header line gives: `None` when it is another header, an error when its
/// value is not a number of bytes.
pub fn content_length(line: &str) -> Option<Result<usize, String>> {
    let (name, value) = line.split_once(':')?;
    name.trim().eq_ignore_ascii_case("content-length").then(|| {
        value
            .trim()
            .parse()
            .map_err(|_| format!("Content-Length {:?} is not a number of bytes", value.trim()))
    })
}

/// Reads one header block. `None`: the input ended. `Some(Err)`: the block had no usable
/// `Content-Length`.
async fn read_headers<R: AsyncRead + Unpin>(
    input: &mut BufReader<R>,
) -> Option<Result<usize, String>> {
    let mut len: Option<Result<usize, String>> = None;
    let mut any = false;
    loop {
        let mut line = Vec::new();
        match (&mut *input).take(MAX_HEADER_LINE).read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&line);
        let t = line.trim();
        if t.is_empty() {
            if any {
                break;
            }
            continue; // blank lines between frames
        }
        any = true;
        if let Some(l) = content_length(t) {
            len = Some(l);
        }
    }
    Some(len.unwrap_or_else(|| Err("a message without a Content-Length header".into())))
}

/// The body to pass on: itself when tower-lsp can decode it, else a replacement.
fn check(body: &[u8]) -> Option<Vec<u8>> {
    let value = match serde_json::from_slice::<Value>(body) {
        Ok(v) => v,
        Err(e) => {
            let head = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
            return malformed(None, PARSE_ERROR, format!("not JSON ({e}): {head}"));
        }
    };
    let decodes = serde_json::from_value::<jsonrpc::Request>(value.clone()).is_ok()
        || serde_json::from_value::<jsonrpc::Response>(value.clone()).is_ok();
    if decodes {
        return Some(body.to_vec());
    }
    let id = value.get("id").filter(|id| id.is_i64() || id.is_string()).cloned();
    let why = format!("not a JSON-RPC 2.0 request, notification or response: {}", shorten(&value));
    malformed(id, INVALID_REQUEST, why)
}

fn shorten(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(120) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// A `patois/malformed` request (with the client's id, so the client gets its answer) or
/// notification (no id could be read: the server logs it).
fn malformed(id: Option<Value>, code: i64, error: String) -> Option<Vec<u8>> {
    let params = serde_json::to_value(MalformedParams { code, error }).ok()?;
    let msg = match id {
        Some(id) => {
            json!({ "jsonrpc": "2.0", "id": id, "method": MALFORMED_REQUEST, "params": params })
        }
        None => json!({ "jsonrpc": "2.0", "method": MALFORMED_NOTIFICATION, "params": params }),
    };
    serde_json::to_vec(&msg).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(input: Vec<u8>) -> Vec<Value> {
        let (mut w, r) = tokio::io::duplex(1 << 20);
        let (out_w, mut out_r) = tokio::io::duplex(1 << 20);
        let task = tokio::spawn(forward(r, out_w));
        w.write_all(&input).await.unwrap();
        drop(w);
        task.await.unwrap();
        let mut bytes = Vec::new();
        out_r.read_to_end(&mut bytes).await.unwrap();
        let text = String::from_utf8(bytes).unwrap();
        text.split("Content-Length: ")
            .filter(|f| !f.is_empty())
            .map(|f| serde_json::from_str(f.split_once("\r\n\r\n").unwrap().1).unwrap())
            .collect()
    }

    fn frame(body: &str) -> Vec<u8> {
        super::frame(body.as_bytes())
    }

    #[tokio::test]
    async fn valid_messages_pass_and_bad_ones_become_malformed_with_the_clients_id() {
        let ok = r#"{"jsonrpc":"2.0","id":1,"method":"shutdown"}"#;
        let mut input = frame(ok);
        input.extend(frame("{not json"));
        input.extend(frame(r#"{"jsonrpc":"2.0","id":7,"method":5}"#));
        input.extend(frame(r#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#));
        input.extend(b"Content-Type: x\r\ngarbage\r\n\r\n");
        input.extend(frame(ok));
        let out = run(input).await;
        assert_eq!(out.len(), 6, "{out:?}");
        assert_eq!(out[0]["method"], "shutdown");
        assert_eq!(
            (out[1]["method"].as_str(), out[1].get("id")),
            (Some(MALFORMED_NOTIFICATION), None)
        );
        assert_eq!(out[1]["params"]["code"], PARSE_ERROR);
        assert_eq!(out[2]["id"], 7, "the client's request gets its answer");
        assert_eq!(out[2]["method"], MALFORMED_REQUEST);
        assert_eq!(out[2]["params"]["code"], INVALID_REQUEST);
        assert_eq!(out[3].get("id"), None, "a fractional id cannot be answered");
        assert!(out[4]["params"]["error"].as_str().unwrap().contains("Content-Length"));
        assert_eq!(out[5]["method"], "shutdown", "the stream goes on");
    }

    #[tokio::test]
    async fn an_oversized_frame_is_skipped_without_being_held() {
        let mut input = format!("Content-Length: {}\r\n\r\n", MAX_FRAME + 10).into_bytes();
        input.extend(vec![b'x'; MAX_FRAME + 10]);
        input.extend(frame(r#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#));
        let out = run(input).await;
        assert_eq!(out.len(), 2);
        assert!(out[0]["params"]["error"].as_str().unwrap().contains("over patois's limit"));
        assert_eq!(out[1]["method"], "initialized");
    }

    #[tokio::test]
    async fn input_is_read_to_its_end_while_nobody_reads_the_output() {
        let (mut w, r) = tokio::io::duplex(64);
        let (out_w, out_r) = tokio::io::duplex(64);
        let task = tokio::spawn(forward(r, out_w));
        let msg = frame(r#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#);
        // Far more than both pipes hold: the client's writes finish only if patois reads on.
        let writes = async {
            for _ in 0..1000 {
                w.write_all(&msg).await.unwrap();
            }
        };
        let limit = std::time::Duration::from_secs(60);
        tokio::time::timeout(limit, writes).await.expect("patois stopped reading its input");
        drop(w);
        drop(out_r);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_huge_content_length_that_never_arrives_ends_quietly() {
        let mut input = b"Content-Length: 99999999999999\r\n\r\n".to_vec();
        input.extend(b"short");
        assert!(run(input).await.is_empty());
    }
}
