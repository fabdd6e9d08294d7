//! JSON-RPC 2.0 envelopes as they appear on one NDJSON line, and the classifier that turns a
//! received line into a request, a notification, a response or a protocol error.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::{ErrorCode, RpcError};

/// A JSON-RPC request id. The protocol's own peers use numbers; strings are accepted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum RequestId {
    /// A numeric id.
    Num(i64),
    /// A string id.
    Str(String),
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestId::Num(n) => write!(f, "{n}"),
            RequestId::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// Everything a line can carry, borrowed from the line where possible.
#[derive(Debug)]
pub enum Incoming<'a> {
    /// A request: has `method` and `id`.
    Request { id: RequestId, method: &'a str, params: Option<&'a RawValue> },
    /// A notification: has `method`, no `id`.
    Notification { method: &'a str, params: Option<&'a RawValue> },
    /// A successful response.
    Result { id: RequestId, result: &'a RawValue },
    /// An error response; `id` is `None` when the peer could not tell which request failed.
    Error { id: Option<RequestId>, error: RpcError },
    /// The line is JSON but not a JSON-RPC 2.0 message we accept. The error is what a server
    /// answers (with `id`, when one could be read).
    Invalid { id: Option<RequestId>, error: RpcError },
}

#[derive(Deserialize)]
struct RawMessage<'a> {
    #[serde(default, borrow)]
    jsonrpc: Option<&'a str>,
    #[serde(default, deserialize_with = "present")]
    id: Option<serde_json::Value>,
    #[serde(default, borrow)]
    method: Option<&'a str>,
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present_raw")]
    result: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<RpcError>,
}

/// Keeps `"id": null` distinguishable from an absent id.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

/// Keeps `"result": null` distinguishable from an absent result.
fn present_raw<'de: 'a, 'a, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<&'a RawValue>, D::Error> {
    <&'a RawValue>::deserialize(d).map(Some)
}

impl<'a> Incoming<'a> {
    /// Classifies one line. `Err` means the line is not JSON at all (answer -32700).
    pub fn parse(line: &'a [u8]) -> Result<Incoming<'a>, serde_json::Error> {
        let first = line.iter().find(|b| !b.is_ascii_whitespace());
        if first == Some(&b'[') {
            // Validate that it is JSON before calling it a batch.
            serde_json::from_slice::<serde::de::IgnoredAny>(line)?;
            return Ok(Incoming::Invalid {
                id: None,
                error: RpcError::new(ErrorCode::InvalidRequest, "batches are not supported"),
            });
        }
        let raw: RawMessage<'a> = match serde_json::from_slice(line) {
            Ok(raw) => raw,
            Err(e) if e.is_data() => {
                // Valid JSON with the wrong shape (e.g. a number or a string where an object is).
                return Ok(Incoming::Invalid {
                    id: None,
                    error: RpcError::new(
                        ErrorCode::InvalidRequest,
                        format!("not a JSON-RPC message: {e}"),
                    ),
                });
            }
            Err(e) => return Err(e),
        };
        let id = match raw.id {
            None => None,
            Some(serde_json::Value::Null) => Some(None),
            Some(v) => match serde_json::from_value::<RequestId>(v) {
                Ok(id) => Some(Some(id)),
                Err(_) => {
                    return Ok(Incoming::Invalid {
                        id: None,
                        error: RpcError::new(
                            ErrorCode::InvalidRequest,
                            "id must be a number or a string",
                        ),
                    });
                }
            },
        };
        if raw.jsonrpc != Some("2.0") {
            return Ok(Incoming::Invalid {
                id: id.flatten(),
                error: RpcError::new(ErrorCode::InvalidRequest, "jsonrpc must be \"2.0\""),
            });
        }
        Ok(match (raw.method, id, raw.result, raw.error) {
            (Some(method), Some(Some(id)), None, None) => {
                Incoming::Request { id, method, params: raw.params }
            }
            (Some(method), None, None, None) => {
                Incoming::Notification { method, params: raw.params }
            }
            (None, Some(Some(id)), Some(result), None) => Incoming::Result { id, result },
            (None, Some(id), None, Some(error)) => Incoming::Error { id, error },
            (_, id, _, _) => Incoming::Invalid {
                id: id.flatten(),
                error: RpcError::new(
                    ErrorCode::InvalidRequest,
                    "not a valid request, notification or response",
                ),
            },
        })
    }
}

/// Serialises a request line (without the trailing newline).
pub fn request_line<P: Serialize>(id: &RequestId, method: &str, params: &P) -> Vec<u8> {
    #[derive(Serialize)]
    struct Req<'a, P> {
        jsonrpc: &'static str,
        id: &'a RequestId,
        method: &'a str,
        params: &'a P,
    }
    to_line(&Req { jsonrpc: "2.0", id, method, params })
}

/// Serialises a notification line (without the trailing newline).
pub fn notification_line<P: Serialize>(method: &str, params: &P) -> Vec<u8> {
    #[derive(Serialize)]
    struct Note<'a, P> {
        jsonrpc: &'static str,
        method: &'a str,
        params: &'a P,
    }
    to_line(&Note { jsonrpc: "2.0", method, params })
}

/// Serialises a success response line (without the trailing newline).
pub fn result_line<R: Serialize>(id: &RequestId, result: &R) -> Vec<u8> {
    #[derive(Serialize)]
    struct Resp<'a, R> {
        jsonrpc: &'static str,
        id: &'a RequestId,
        result: &'a R,
    }
    to_line(&Resp { jsonrpc: "2.0", id, result })
}

/// An error response ready to be written; `id` is `None` for `"id": null`.
#[derive(Debug, Serialize)]
pub struct OutgoingError<'a> {
    jsonrpc: &'static str,
    id: Option<&'a RequestId>,
    error: &'a RpcError,
}

/// Serialises an error response line (without the trailing newline).
pub fn error_line(id: Option<&RequestId>, error: &RpcError) -> Vec<u8> {
    to_line(&OutgoingError { jsonrpc: "2.0", id, error })
}

fn to_line<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising our own types into a Vec cannot fail: no maps with non-string keys, no I/O.
    serde_json::to_vec(value).unwrap_or_else(|e| {
        format!(
            r#"{{"jsonrpc":"2.0","id":null,"error":{{"code":-32603,"message":"serialise: {e}"}}}}"#
        )
        .into_bytes()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(line: &str) -> String {
        match Incoming::parse(line.as_bytes()) {
            Err(_) => "parse-error".to_owned(),
            Ok(Incoming::Request { id, method, .. }) => format!("request {id} {method}"),
            Ok(Incoming::Notification { method, .. }) => format!("notification {method}"),
            Ok(Incoming::Result { id, result }) => format!("result {id} {}", result.get()),
            Ok(Incoming::Error { id, error }) => format!("error {id:?} {}", error.code),
            Ok(Incoming::Invalid { id, error }) => format!("invalid {id:?} {}", error.message),
        }
    }

    #[test]
    fn classifies_lines() {
        assert_eq!(kind(r#"{"jsonrpc":"2.0","id":1,"method":"x"}"#), "request 1 x");
        assert_eq!(
            kind(r#"{"jsonrpc":"2.0","id":"a","method":"x","params":{}}"#),
            r#"request "a" x"#
        );
        assert_eq!(
            kind(r#"{"jsonrpc":"2.0","method":"$/cancel","params":{}}"#),
            "notification $/cancel"
        );
        assert_eq!(kind(r#"{"jsonrpc":"2.0","id":3,"result":null}"#), "result 3 null");
        assert_eq!(
            kind(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"m"}}"#),
            "error None -32700"
        );
        assert_eq!(kind("not json"), "parse-error");
        assert_eq!(
            kind(r#"[{"jsonrpc":"2.0","id":1,"method":"x"}]"#),
            "invalid None batches are not supported"
        );
        assert_eq!(
            kind(r#"{"id":1,"method":"x"}"#),
            "invalid Some(Num(1)) jsonrpc must be \"2.0\""
        );
        assert_eq!(kind("42").split(':').next().unwrap(), "invalid None not a JSON-RPC message");
        assert_eq!(
            kind(r#"{"jsonrpc":"2.0","id":{},"method":"x"}"#),
            "invalid None id must be a number or a string"
        );
    }

    #[test]
    fn lines_have_no_newline() {
        let line = request_line(&RequestId::Num(7), "m", &serde_json::json!({"s": "a\nb"}));
        assert!(!line.contains(&b'\n'));
        assert_eq!(
            String::from_utf8(line).unwrap(),
            r#"{"jsonrpc":"2.0","id":7,"method":"m","params":{"s":"a\nb"}}"#
        );
    }
}
