//! The `gossip-publisher-zmq` stream: ZMTP 3.0 frames read from any bytes (commands stepped over, long
//! messages read past, never buffered), and each message's JSON frame parsed as a plugin event: a
//! message or an error, never a panic; a parsed message decodes or is refused as any input is.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use tributary_sources::lightning::source::parse_plugin_event;
use tributary_sources::lightning::source::zmtp::{MAX_FRAME, Received, read_message};
use tributary_sources::lightning::{decode, wire};

/// Runs a future that never waits: reading from a byte slice is always ready.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("reading a byte slice waited"),
    }
}

fn plugin_event(json: &[u8]) {
    match parse_plugin_event(json) {
        Ok(m) => {
            assert!(m.msg.len() <= wire::MAX_MESSAGE_LEN);
            let _ = decode(&m.msg);
        }
        Err(e) => assert!(!e.is_empty()),
    }
}

fuzz_target!(|data: &[u8]| {
    // The whole input as one plugin event, then as a ZMTP stream.
    plugin_event(data);
    let mut input = data;
    for _ in 0..1000 {
        match ready(read_message(&mut input)) {
            Ok(Received::Message(frames)) => {
                assert!(frames.iter().map(|f| f.len() as u64).sum::<u64>() <= MAX_FRAME);
                if let Some(last) = frames.last() {
                    plugin_event(last);
                }
            }
            Ok(Received::Oversized { announced }) => assert!(announced > MAX_FRAME || announced > 0),
            Err(e) => {
                assert!(!e.to_string().is_empty());
                break;
            }
        }
    }
});
