//! Fuzz target: arbitrary bytes as a ttrpc byte stream. `Frame::parse` and the async
//! `read_frame` must agree frame by frame, and every frame's data goes through the envelope
//! scanner: a Request's payload swap must keep service, method and timeout, a Response's status
//! must survive a rebuild. Nothing may panic.

#![no_main]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use caa_agent_relay::envelope::{
    error_response, parse_request, replace_payload, request, response_payload, response_status,
};
use caa_agent_relay::frame::{HEADER_LEN, TYPE_REQUEST, TYPE_RESPONSE, read_frame};
use caa_agent_relay::{Frame, FrameError};
use libfuzzer_sys::fuzz_target;

/// Drives a future that never waits: reading from a byte slice is always ready.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("reading from a byte slice returned Pending"),
    }
}

fn check_request(data: &[u8]) {
    let Ok(view) = parse_request(data) else {
        // Malformed envelopes must still be handled without a panic.
        let _ = replace_payload(data, b"x");
        return;
    };
    // A new payload unlike the old one (and sometimes empty).
    let mut payload: Vec<u8> = view.payload.iter().rev().map(|b| b ^ 0x5a).collect();
    payload.truncate(data.len() % 97);
    let swapped = replace_payload(data, &payload).expect("a parsable Request must be rewritable");
    let after = parse_request(&swapped).expect("a rewritten Request must parse");
    assert_eq!(after.payload, payload.as_slice());
    assert_eq!(
        (after.service, after.method, after.timeout_nano),
        (view.service, view.method, view.timeout_nano)
    );
    let rebuilt = request(view.service, view.method, view.payload, view.timeout_nano);
    assert_eq!(parse_request(&rebuilt).expect("a built Request must parse"), view);
}

fn check_response(data: &[u8]) {
    let _ = response_payload(data);
    if let Ok((code, message)) = response_status(data) {
        let rebuilt = error_response(code, &message);
        assert_eq!(
            response_status(&rebuilt).expect("a built Response must parse"),
            (code, message)
        );
    }
}

fn check_frame(frame: &Frame) {
    let copy = Frame::new(frame.stream_id(), frame.kind(), frame.flags(), frame.data());
    assert_eq!(&copy, frame);
    assert_eq!(frame.as_bytes().len(), HEADER_LEN + frame.data().len());
    match frame.kind() {
        TYPE_REQUEST => check_request(frame.data()),
        TYPE_RESPONSE => check_response(frame.data()),
        _ => {
            // Data frames and unknown types: both scanners must cope with anything.
            let _ = parse_request(frame.data());
            check_response(frame.data());
        }
    }
}

fuzz_target!(|bytes: &[u8]| {
    let mut rest = bytes;
    let mut reader = bytes;
    loop {
        match Frame::parse(rest) {
            Ok(Some((frame, used))) => {
                assert_eq!(used, frame.as_bytes().len());
                assert_eq!(frame.as_bytes(), &rest[..used]);
                let read = ready(read_frame(&mut reader)).expect("read_frame agrees with parse");
                assert_eq!(read.as_ref(), Some(&frame));
                check_frame(&frame);
                rest = &rest[used..];
            }
            Ok(None) => {
                // Clean end between frames, or a truncated frame that read_frame rejects.
                match ready(read_frame(&mut reader)) {
                    Ok(None) => assert!(rest.is_empty()),
                    Err(FrameError::Io(_)) => assert!(!rest.is_empty()),
                    other => panic!("parse wanted more bytes but read_frame gave {other:?}"),
                }
                break;
            }
            Err(FrameError::Oversized { stream_id, kind, len }) => {
                assert!(len > caa_agent_relay::MAX_DATA_LEN);
                assert_eq!(
                    (stream_id, kind),
                    (u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]), rest[8])
                );
                // read_frame skips the oversized data; a fuzz input is never that long.
                let skipped = ready(read_frame(&mut reader));
                let expected_skip = HEADER_LEN + len;
                if rest.len() < expected_skip {
                    assert!(matches!(skipped, Err(FrameError::Io(_))), "{skipped:?}");
                    break;
                }
                assert!(matches!(skipped, Err(FrameError::Oversized { .. })), "{skipped:?}");
                rest = &rest[expected_skip..];
            }
            Err(e @ FrameError::Io(_)) => panic!("parse of a byte slice cannot fail with {e}"),
        }
    }
});
