//! JSON-RPC 2.0 envelopes as they appear on one NDJSON line, and the classifier that turns a
//! received line into a request, a notification, a response or a protocol error.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::{ErrorCode, ErrorData, Problem, RpcError};

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
    /// Read leniently (see [`lenient_error`]): JSON-RPC allows any `data`, and an error whose
    /// `data` is not our shape must still reach the call waiting for it.
    #[serde(default)]
    error: Option<serde_json::Value>,
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
        let error = raw.error.map(lenient_error);
        Ok(match (raw.method, id, raw.result, error) {
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

/// Turns an `error` member into an [`RpcError`] without failing: `code` when it is an integer
/// (else -32603), `message` when it is a string (else empty), and each known `data` field when
/// it has the expected type; everything else is ignored.
fn lenient_error(value: serde_json::Value) -> RpcError {
    use serde_json::Value;
    let Value::Object(mut error) = value else {
        return RpcError::new(ErrorCode::InternalError, "malformed error object");
    };
    let code = error.get("code").and_then(Value::as_i64).unwrap_or(-32603);
    let message = match error.remove("message") {
        Some(Value::String(m)) => m,
        _ => String::new(),
    };
    let data = match error.remove("data") {
        Some(Value::Object(d)) => Some(lenient_data(&d)).filter(|d| *d != ErrorData::default()),
        _ => None,
    };
    RpcError { code, message, data }
}

fn lenient_data(d: &serde_json::Map<String, serde_json::Value>) -> ErrorData {
    use serde_json::Value;
    let string = |key: &str| d.get(key).and_then(Value::as_str).map(str::to_owned);
    let versions = |key: &str| -> Vec<u32> {
        d.get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_u64()?.try_into().ok()).collect())
            .unwrap_or_default()
    };
    let problems = d
        .get("problems")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|p| {
                    Some(Problem {
                        field: p.get("field")?.as_str()?.to_owned(),
                        message: p.get("message").and_then(Value::as_str).unwrap_or("").to_owned(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    ErrorData {
        retryable: d.get("retryable").and_then(Value::as_bool),
        class: string("class"),
        instance_id: string("instanceId"),
        cloud_code: string("cloudCode"),
        retry_after_ms: d.get("retryAfterMs").and_then(Value::as_u64),
        problems,
        supported: versions("supported"),
        requested: versions("requested"),
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

    fn error_of(line: &str) -> (Option<RequestId>, RpcError) {
        match Incoming::parse(line.as_bytes()) {
            Ok(Incoming::Error { id, error }) => (id, error),
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn error_responses_are_read_leniently() {
        // `data` of another shape is ignored, the rest of the error is kept.
        let (id, e) = error_of(
            r#"{"jsonrpc":"2.0","id":4,"error":{"code":4,"message":"m","data":"details"}}"#,
        );
        assert_eq!(
            (id, e.code, e.message.as_str(), e.data),
            (Some(RequestId::Num(4)), 4, "m", None)
        );
        // Known fields of the right type survive their badly typed neighbours.
        let (_, e) = error_of(
            r#"{"jsonrpc":"2.0","id":5,"error":{"code":-32800,"message":"c","data":{"instanceId":"i-1","retryable":"no","retryAfterMs":-3,"extra":[1]}}}"#,
        );
        assert_eq!(e.instance_id(), Some("i-1"));
        assert_eq!(e.data.as_ref().unwrap().retryable, None);
        assert_eq!(e.data.as_ref().unwrap().retry_after_ms, None);
        let (_, e) = error_of(
            r#"{"jsonrpc":"2.0","id":6,"error":{"code":1,"message":"bad","data":{"retryable":false,"problems":[{"field":"region","message":"missing"},{"nope":1}],"supported":[1,"x",2]}}}"#,
        );
        let data = e.data.unwrap();
        assert_eq!(data.retryable, Some(false));
        assert_eq!(
            data.problems,
            vec![Problem { field: "region".into(), message: "missing".into() }]
        );
        assert_eq!(data.supported, vec![1, 2]);
        // A missing or non-integer code is an internal error; a missing message is empty.
        let (_, e) =
            error_of(r#"{"jsonrpc":"2.0","id":7,"error":{"code":"4","data":{"instanceId":7}}}"#);
        assert_eq!((e.code, e.message.as_str(), e.data), (-32603, "", None));
        let (id, e) = error_of(r#"{"jsonrpc":"2.0","id":"s","error":"boom"}"#);
        assert_eq!((id, e.code), (Some(RequestId::Str("s".into())), -32603));
        assert_eq!(
            kind(r#"{"jsonrpc":"2.0","id":8,"error":{"code":4.5}}"#),
            "error Some(Num(8)) -32603"
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
