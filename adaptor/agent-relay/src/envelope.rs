//! Just enough protobuf to read the ttrpc `Request` envelope (service, method, payload,
//! timeout) without copying it, to swap its payload while keeping every other field byte for
//! byte, and to build an error `Response`. Decoding is strict about wire syntax and never
//! panics on any input (fuzzed).

/// Request fields.
const REQ_SERVICE: u32 = 1;
const REQ_METHOD: u32 = 2;
const REQ_PAYLOAD: u32 = 3;
const REQ_TIMEOUT_NANO: u32 = 4;

const WIRE_VARINT: u8 = 0;
const WIRE_FIXED64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_FIXED32: u8 = 5;

/// A malformed envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Truncated or invalid protobuf.
    #[error("malformed protobuf: {0}")]
    Malformed(&'static str),
    /// Service or method is not UTF-8.
    #[error("service or method name is not UTF-8")]
    NotUtf8,
}

/// The fields of a `Request` the relay looks at, borrowed from the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestView<'a> {
    /// Full service name, e.g. `grpc.AgentService`.
    pub service: &'a str,
    /// Method name, e.g. `CreateContainer`.
    pub method: &'a str,
    /// The encoded request message.
    pub payload: &'a [u8],
    /// The caller's remaining deadline in nanoseconds; 0 = none.
    pub timeout_nano: i64,
}

/// One field as found on the wire.
struct Field<'a> {
    number: u32,
    wire: u8,
    /// For `WIRE_LEN`: the content; for others: empty.
    bytes: &'a [u8],
    /// For `WIRE_VARINT`: the value.
    varint: u64,
    /// The whole field (key included), for copying it unchanged.
    raw: &'a [u8],
}

fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, EnvelopeError> {
    let mut value = 0u64;
    for shift in (0..70).step_by(7) {
        let byte = *buf.get(*pos).ok_or(EnvelopeError::Malformed("truncated varint"))?;
        *pos += 1;
        if shift == 63 && byte > 1 {
            return Err(EnvelopeError::Malformed("varint overflow"));
        }
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(EnvelopeError::Malformed("varint too long"))
}

fn next_field<'a>(buf: &'a [u8], pos: &mut usize) -> Result<Field<'a>, EnvelopeError> {
    let start = *pos;
    let key = read_varint(buf, pos)?;
    let number = u32::try_from(key >> 3).map_err(|_| EnvelopeError::Malformed("field number"))?;
    if number == 0 {
        return Err(EnvelopeError::Malformed("field number 0"));
    }
    let wire = (key & 7) as u8;
    let mut field = Field { number, wire, bytes: &[], varint: 0, raw: &[] };
    let skip = |pos: &mut usize, n: usize| -> Result<(), EnvelopeError> {
        let end = pos.checked_add(n).filter(|&e| e <= buf.len());
        *pos = end.ok_or(EnvelopeError::Malformed("truncated field"))?;
        Ok(())
    };
    match wire {
        WIRE_VARINT => field.varint = read_varint(buf, pos)?,
        WIRE_FIXED64 => skip(pos, 8)?,
        WIRE_FIXED32 => skip(pos, 4)?,
        WIRE_LEN => {
            let len = usize::try_from(read_varint(buf, pos)?)
                .map_err(|_| EnvelopeError::Malformed("length"))?;
            let from = *pos;
            skip(pos, len)?;
            field.bytes = &buf[from..*pos];
        }
        _ => return Err(EnvelopeError::Malformed("unsupported wire type")),
    }
    field.raw = &buf[start..*pos];
    Ok(field)
}

fn text(bytes: &[u8]) -> Result<&str, EnvelopeError> {
    std::str::from_utf8(bytes).map_err(|_| EnvelopeError::NotUtf8)
}

/// Reads a `Request` envelope. Later occurrences of a field win, as in protobuf.
pub fn parse_request(data: &[u8]) -> Result<RequestView<'_>, EnvelopeError> {
    let mut view = RequestView::default();
    let mut pos = 0;
    while pos < data.len() {
        let f = next_field(data, &mut pos)?;
        match (f.number, f.wire) {
            (REQ_SERVICE, WIRE_LEN) => view.service = text(f.bytes)?,
            (REQ_METHOD, WIRE_LEN) => view.method = text(f.bytes)?,
            (REQ_PAYLOAD, WIRE_LEN) => view.payload = f.bytes,
            // int64 on the wire as a varint; the cast reinterprets two's complement.
            (REQ_TIMEOUT_NANO, WIRE_VARINT) => view.timeout_nano = f.varint as i64,
            (REQ_SERVICE | REQ_METHOD | REQ_PAYLOAD | REQ_TIMEOUT_NANO, _) => {
                return Err(EnvelopeError::Malformed("wrong wire type for a Request field"));
            }
            _ => {} // metadata and future fields: kept as they are
        }
    }
    Ok(view)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_len_field(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_varint(out, u64::from(number) << 3 | u64::from(WIRE_LEN));
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// The same `Request` with its payload replaced; every other field (metadata, timeout, fields
/// added in future ttrpc versions) is copied unchanged.
pub fn replace_payload(data: &[u8], payload: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let mut out = Vec::with_capacity(data.len() + payload.len());
    let mut pos = 0;
    while pos < data.len() {
        let f = next_field(data, &mut pos)?;
        if f.number != REQ_PAYLOAD {
            out.extend_from_slice(f.raw);
        }
    }
    put_len_field(&mut out, REQ_PAYLOAD, payload);
    Ok(out)
}

/// A `Response` envelope carrying only `google.rpc.Status { code, message }`.
pub fn error_response(code: i32, message: &str) -> Vec<u8> {
    let mut status = Vec::with_capacity(message.len() + 12);
    put_varint(&mut status, u64::from(1u32 << 3 | u32::from(WIRE_VARINT)));
    // int32 is sign-extended to 64 bits on the wire.
    put_varint(&mut status, i64::from(code) as u64);
    put_len_field(&mut status, 2, message.as_bytes());
    let mut out = Vec::with_capacity(status.len() + 4);
    put_len_field(&mut out, 1, &status);
    out
}

/// The status of a `Response` envelope: `(code, message)`, `(0, "")` for OK.
pub fn response_status(data: &[u8]) -> Result<(i32, String), EnvelopeError> {
    let mut result = (0, String::new());
    let mut pos = 0;
    while pos < data.len() {
        let f = next_field(data, &mut pos)?;
        if (f.number, f.wire) == (1, WIRE_LEN) {
            let mut p = 0;
            result = (0, String::new());
            while p < f.bytes.len() {
                let s = next_field(f.bytes, &mut p)?;
                match (s.number, s.wire) {
                    (1, WIRE_VARINT) => result.0 = s.varint as i32,
                    (2, WIRE_LEN) => result.1 = String::from_utf8_lossy(s.bytes).into_owned(),
                    _ => {}
                }
            }
        }
    }
    Ok(result)
}

/// The payload of a `Response` envelope (empty when absent).
pub fn response_payload(data: &[u8]) -> Result<&[u8], EnvelopeError> {
    let mut payload: &[u8] = &[];
    let mut pos = 0;
    while pos < data.len() {
        let f = next_field(data, &mut pos)?;
        if (f.number, f.wire) == (2, WIRE_LEN) {
            payload = f.bytes;
        }
    }
    Ok(payload)
}

/// A `Request` envelope (for tests, benchmarks and the test tooling).
pub fn request(service: &str, method: &str, payload: &[u8], timeout_nano: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(service.len() + method.len() + payload.len() + 24);
    put_len_field(&mut out, REQ_SERVICE, service.as_bytes());
    put_len_field(&mut out, REQ_METHOD, method.as_bytes());
    put_len_field(&mut out, REQ_PAYLOAD, payload);
    if timeout_nano != 0 {
        put_varint(&mut out, u64::from(REQ_TIMEOUT_NANO << 3));
        put_varint(&mut out, timeout_nano as u64);
    }
    out
}

/// An OK `Response` envelope with `payload`, encoded the way Go servers do (no status field).
pub fn ok_response(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 6);
    if !payload.is_empty() {
        put_len_field(&mut out, 2, payload);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trip_keeps_metadata_and_unknown_fields() {
        let mut data = request("grpc.AgentService", "CreateContainer", b"old", 5_000_000_000);
        // metadata {key: "k", value: "v"} and an unknown field 9.
        data.extend_from_slice(&[0x2a, 6, 0x0a, 1, b'k', 0x12, 1, b'v']);
        data.extend_from_slice(&[0x48, 0x01]);
        let view = parse_request(&data).unwrap();
        assert_eq!(view.service, "grpc.AgentService");
        assert_eq!(view.method, "CreateContainer");
        assert_eq!(view.payload, b"old");
        assert_eq!(view.timeout_nano, 5_000_000_000);

        let replaced = replace_payload(&data, b"new payload").unwrap();
        let view = parse_request(&replaced).unwrap();
        assert_eq!(view.payload, b"new payload");
        assert_eq!((view.service, view.method), ("grpc.AgentService", "CreateContainer"));
        assert_eq!(view.timeout_nano, 5_000_000_000);
        let tail = &[0x2a, 6, 0x0a, 1, b'k', 0x12, 1, b'v', 0x48, 0x01];
        assert!(replaced.windows(tail.len()).any(|w| w == tail));
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for bad in [&[0x0a, 5, b'a'][..], &[0x0b], &[0x80; 11], &[0x00, 0x01], &[0x08]] {
            assert!(parse_request(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_request(&[0x0a, 2, 0xff, 0xfe]), Err(EnvelopeError::NotUtf8));
        assert!(parse_request(&[0x08, 1]).is_err()); // service as a varint
        assert_eq!(parse_request(&[]).unwrap(), RequestView::default());
    }

    #[test]
    fn error_responses_carry_code_and_message() {
        let r = error_response(14, "agent connection lost");
        assert_eq!(response_status(&r).unwrap(), (14, "agent connection lost".to_owned()));
        let r = error_response(-1, "");
        assert_eq!(response_status(&r).unwrap().0, -1);
        assert_eq!(response_status(&ok_response(b"x")).unwrap(), (0, String::new()));
        assert_eq!(response_payload(&ok_response(b"x")).unwrap(), b"x");
    }
}
