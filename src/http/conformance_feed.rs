//! Test-only: plays a client connection against `parse_head` and `ChunkedDecoder`, feeding the
//! bytes in the splits the gunicorn harness uses, as a reactor would. Never part of the server.
use super::{
    parse_head, BodyFraming, ChunkedDecoder, HeadRules, ParseError, ProxyPolicy, RequestHead,
};

#[derive(Debug)]
pub(super) enum End {
    Clean,
    /// EOF in the middle of a head or body: gunicorn's NoMoreData, no response.
    Incomplete,
    Error(ParseError),
}

/// A connection fed in `chunks`: heads, then bodies by their framing, until the input ends,
/// an error, or a request that does not keep the connection alive. `proxy` applies to the first
/// request, as in the reactor.
pub(super) fn run_connection(
    data: &[u8],
    chunks: &[usize],
    (rules, proxy): (&HeadRules, ProxyPolicy),
    max_out: usize,
) -> (Vec<(RequestHead, Vec<u8>)>, End) {
    let mut feed = chunks.iter().scan(0, |at, &n| {
        let piece = &data[*at..(*at + n).min(data.len())];
        *at += n;
        Some(piece)
    });
    let (mut buf, mut requests) = (Vec::new(), Vec::new());
    loop {
        let head = loop {
            let proxy = if requests.is_empty() {
                proxy
            } else {
                ProxyPolicy::Off
            };
            match parse_head(&buf, rules, proxy) {
                Err(e) => return (requests, End::Error(e)),
                Ok(Some((head, used))) => {
                    buf.drain(..used);
                    break head;
                }
                Ok(None) => match feed.next() {
                    Some(piece) => buf.extend_from_slice(piece),
                    None if buf.is_empty() => return (requests, End::Clean),
                    None => return (requests, End::Incomplete),
                },
            }
        };
        let (body, complete) = match read_body(&head, &mut buf, &mut feed, max_out) {
            Ok(read) => read,
            Err(e) => return (requests, End::Error(e)),
        };
        let keep_alive = head.keep_alive;
        requests.push((head, body));
        match (complete, keep_alive) {
            (false, _) => return (requests, End::Incomplete),
            (true, false) => return (requests, End::Clean),
            (true, true) => {}
        }
    }
}

/// The body of `head`, and whether it was complete before the input ended.
fn read_body<'a>(
    head: &RequestHead,
    buf: &mut Vec<u8>,
    feed: &mut impl Iterator<Item = &'a [u8]>,
    max_out: usize,
) -> Result<(Vec<u8>, bool), ParseError> {
    let mut body = Vec::new();
    let mut decoder = ChunkedDecoder::default();
    loop {
        let done = match head.framing {
            BodyFraming::Empty => true,
            BodyFraming::Length(n) => {
                let take = (n as usize - body.len()).min(buf.len());
                body.extend(buf.drain(..take));
                body.len() == n as usize
            }
            BodyFraming::Chunked => {
                let used = decoder.decode(buf, &mut body, max_out)?;
                buf.drain(..used);
                decoder.is_done()
            }
        };
        // The decoder stops when `max_out` is reached; only a lack of input needs a read.
        let starved = buf.is_empty() || head.framing != BodyFraming::Chunked;
        match (done, starved) {
            (true, _) => return Ok((body, true)),
            (false, false) => {}
            (false, true) => match feed.next() {
                Some(piece) => buf.extend_from_slice(piece),
                None => return Ok((body, false)),
            },
        }
    }
}

/// Deterministic xorshift, so a failing split can be reproduced.
fn random_chunks(len: usize, seed: u64, max: usize) -> Vec<usize> {
    let (mut state, mut chunks, mut total) = (seed | 1, Vec::new(), 0);
    while total < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let n = 1 + (state as usize) % max.max(1);
        chunks.push(n);
        total += n;
    }
    chunks
}

fn line_chunks(data: &[u8]) -> Vec<usize> {
    data.split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::len)
        .collect()
}

/// (name, chunk sizes, chunked-decoder output budget) for each way of sending `data`.
pub(super) fn splits(data: &[u8], seed: u64) -> Vec<(&'static str, Vec<usize>, usize)> {
    let len = data.len().max(1);
    vec![
        ("all at once", vec![len], usize::MAX),
        ("byte by byte", vec![1; len], 1),
        ("line by line", line_chunks(data), 7),
        ("random", random_chunks(len, seed, len / 10), 3),
        (
            "random small",
            random_chunks(len, seed ^ 0x5eed, 4),
            usize::MAX,
        ),
        ("1 byte first", vec![1, len], 2),
    ]
}
