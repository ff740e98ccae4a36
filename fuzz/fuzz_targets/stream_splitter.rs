//! The GetStreamingEvents splitter: the same bytes cut into chunks any way must give
//! the same envelopes as in one chunk (an equivalence oracle).
//!
//! The input is the stream's bytes (the seeds are envelopes one after another). It is
//! fed once whole, once byte by byte, and in chunks whose sizes a small generator
//! draws from a hash of the input, so every mutation cuts differently. Then:
//! - when the whole stream is read without error, every chunking gives the same
//!   envelopes, without error, and is idle exactly when the whole one is;
//! - when it fails, every chunking fails too (its envelopes before the failure are
//!   a prefix of the stream's), with the same kind of error;
//! - envelopes are pieces of the stream, in order, that start at `<` and end at `>`.
#![no_main]

use calvert::ews::client::EnvelopeSplitter;
use calvert::ews::response::EwsError;
use calvert::ews::xml::MAX_REPLY_BYTES;
use libfuzzer_sys::fuzz_target;

/// What feeding one chunking gave: the envelopes, the error if one came, and
/// whether the splitter was idle at the end.
#[derive(Debug)]
struct Fed {
    envelopes: Vec<String>,
    error: Option<EwsError>,
    idle: bool,
}

fn feed<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> Fed {
    let mut splitter = EnvelopeSplitter::new(MAX_REPLY_BYTES);
    let mut envelopes = Vec::new();
    for chunk in chunks {
        match splitter.push(chunk) {
            Ok(complete) => envelopes.extend(complete),
            Err(error) => {
                return Fed {
                    envelopes,
                    error: Some(error),
                    idle: false,
                };
            }
        }
    }
    Fed {
        envelopes,
        error: None,
        idle: splitter.is_idle(),
    }
}

/// Chunk sizes from an xorshift generator seeded by an FNV-1a hash of the input.
fn drawn_cuts(data: &[u8]) -> Vec<&[u8]> {
    let mut state = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    }) | 1;
    let mut chunks = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        // Mostly short chunks (inside names, characters, tags), now and then long ones.
        let size = (if state % 8 == 0 {
            (state >> 8) % 512
        } else {
            (state >> 8) % 9
        }) as usize;
        let (chunk, tail) = rest.split_at(size.clamp(1, rest.len()));
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}

fn same_kind(a: &EwsError, b: &EwsError) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
        && match (a, b) {
            (EwsError::Xml(a), EwsError::Xml(b)) => {
                std::mem::discriminant(a) == std::mem::discriminant(b)
            }
            _ => true,
        }
}

/// Envelopes are pieces of `text`, in order, each starting at `<` and ending at `>`.
fn in_order(how: &str, text: &str, envelopes: &[String]) {
    let mut from = 0;
    for envelope in envelopes {
        let at = text[from..].find(envelope.as_str()).map(|at| from + at);
        let at = at.unwrap_or_else(|| {
            panic!("{how}: {envelope:?} is not in the stream after byte {from}")
        });
        from = at + envelope.len();
        assert!(
            envelope.starts_with('<') && envelope.ends_with('>'),
            "{how}: {envelope:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    // Only a valid prefix of the bytes ever becomes envelopes, and it is the same
    // in the lossy text.
    let text = String::from_utf8_lossy(data);
    let whole = feed(std::iter::once(data));
    in_order("in one chunk", &text, &whole.envelopes);
    let bytewise = feed(data.chunks(1));
    let drawn = feed(drawn_cuts(data).into_iter());
    for (how, fed) in [("byte by byte", bytewise), ("in drawn chunks", drawn)] {
        in_order(how, &text, &fed.envelopes);
        match (&whole.error, &fed.error) {
            (None, None) => {
                assert_eq!(fed.envelopes, whole.envelopes, "{how}: other envelopes");
                assert_eq!(fed.idle, whole.idle, "{how}: idle differs");
            }
            (Some(expected), Some(error)) => {
                assert!(
                    same_kind(expected, error),
                    "{how}: {error:?}, whole: {expected:?}"
                );
            }
            (None, Some(error)) => panic!("{how}: failed ({error}) where one chunk did not"),
            (Some(expected), None) => panic!("{how}: no error where one chunk failed ({expected})"),
        }
    }
});
