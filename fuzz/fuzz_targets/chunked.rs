//! `ChunkedDecoder` over arbitrary bytes fed in arbitrary pieces with an arbitrary output cap per
//! call: never panics or loops, and the body, the bytes consumed and the verdict are the same as
//! when everything arrives at once. It never consumes a byte past the end of the body.
//!
//! Input: byte 0 = output cap per call - 1, bytes 1-8 = seed of the piece sizes, the rest = bytes
//! after a request head that said `Transfer-Encoding: chunked`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rgunicorn::http::ChunkedDecoder;

#[derive(Debug, PartialEq)]
struct Outcome {
    body: Vec<u8>,
    consumed: usize,
    done: bool,
    error: Option<String>,
}

/// Feeds `input` in pieces of the given sizes, as the body reader does: decode what is buffered,
/// drop what was consumed, read more only when the decoder made no progress.
fn run(input: &[u8], pieces: &mut dyn Iterator<Item = usize>, max_out: usize) -> Outcome {
    let mut decoder = ChunkedDecoder::default();
    let (mut buf, mut body, mut at, mut consumed) = (Vec::new(), Vec::new(), 0, 0);
    loop {
        let before = body.len();
        match decoder.decode(&buf, &mut body, max_out) {
            Err(e) => {
                // The connection is closed on an error: how far the decoder got is not part of
                // the verdict (an erroring call reports no count), the error and the body are.
                let error = Some(format!("{e:?}"));
                return Outcome {
                    body,
                    consumed: 0,
                    done: false,
                    error,
                };
            }
            Ok(used) => {
                assert!(used <= buf.len());
                assert!(body.len() - before <= max_out, "output cap exceeded");
                buf.drain(..used);
                consumed += used;
                if decoder.is_done() {
                    return Outcome {
                        body,
                        consumed,
                        done: true,
                        error: None,
                    };
                }
                if used > 0 || body.len() > before {
                    continue;
                }
            }
        }
        // No progress: the decoder needs more input.
        if at == input.len() {
            return Outcome {
                body,
                consumed,
                done: false,
                error: None,
            };
        }
        let n = pieces
            .next()
            .unwrap_or(usize::MAX)
            .clamp(1, input.len() - at);
        buf.extend_from_slice(&input[at..at + n]);
        at += n;
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let max_out = usize::from(data[0]) + 1;
    let mut state = u64::from_le_bytes(data[1..9].try_into().unwrap()) | 1;
    let input = &data[9..];
    let whole = run(input, &mut std::iter::once(input.len()), usize::MAX);
    let mut random = std::iter::from_fn(|| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        Some(1 + (state % 17) as usize)
    });
    let split = run(input, &mut random, max_out);
    assert_eq!(whole, split, "max_out {max_out}");
    let bytewise = run(input, &mut std::iter::repeat(1), 1);
    assert_eq!(whole, bytewise);
    assert!(whole.body.len() <= input.len());
});
