//! Micro-benchmarks (criterion) of the pure per-request hot path that needs no Python: parsing a
//! request head, decoding a chunked body, validating a response's status and headers.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rgunicorn::config::default_settings;
use rgunicorn::http::response::{validate_header, validate_status};
use rgunicorn::http::{
    parse_head, parse_head_into, ChunkedDecoder, HeadRules, ProxyPolicy, RequestHead,
};

/// What a current desktop browser sends for a page of a Django site.
const BROWSER_HEAD: &[u8] = b"GET /api/plants/?limit=20&sort=name HTTP/1.1\r\n\
Host: greenweb.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://greenweb.example.com/\r\n\
Connection: keep-alive\r\n\
Cookie: csrftoken=4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e; sessionid=abcdefghijklmnopqrstuvwxyz012345\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Site: same-origin\r\n\
Priority: u=0, i\r\n\
\r\n";

/// The headers of a typical Django JSON response.
const RESPONSE_HEADERS: [(&str, &str); 6] = [
    ("Content-Type", "application/json"),
    ("Content-Length", "1832"),
    ("X-Frame-Options", "DENY"),
    ("Vary", "Cookie"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
];

fn bench_parse_head(c: &mut Criterion) {
    // The rules a worker with the default settings parses by.
    let rules = HeadRules::of(&default_settings());
    let mut group = c.benchmark_group("parse_head");
    group.throughput(Throughput::Bytes(BROWSER_HEAD.len() as u64));
    group.bench_function("browser_get", |b| {
        b.iter(|| {
            parse_head(black_box(BROWSER_HEAD), &rules, ProxyPolicy::Off).expect("valid head")
        })
    });
    // How the server parses: into the connection's previous head, whose strings keep their memory.
    let mut head = RequestHead::default();
    group.bench_function("browser_get_reused", |b| {
        b.iter(|| {
            parse_head_into(black_box(BROWSER_HEAD), &rules, ProxyPolicy::Off, &mut head)
                .expect("valid head")
        })
    });
    group.finish();
}

/// A 64 KiB body in 16 chunks of 4 KiB, then an empty trailer section.
fn chunked_body() -> Vec<u8> {
    let chunk = vec![b'x'; 4096];
    let mut body = Vec::new();
    for _ in 0..16 {
        body.extend_from_slice(b"1000\r\n");
        body.extend_from_slice(&chunk);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    body
}

fn bench_chunked(c: &mut Criterion) {
    let body = chunked_body();
    let mut out = Vec::with_capacity(64 * 1024);
    let mut group = c.benchmark_group("chunked_decoder");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("64KiB_in_4KiB_chunks", |b| {
        b.iter(|| {
            out.clear();
            let mut decoder = ChunkedDecoder::default();
            let used = decoder
                .decode(black_box(&body), &mut out, usize::MAX)
                .expect("valid body");
            assert!(decoder.is_done() && used == body.len());
        })
    });
    group.finish();
}

fn bench_response_checks(c: &mut Criterion) {
    c.bench_function("validate_status/200_OK", |b| {
        b.iter(|| validate_status(black_box("200 OK")).expect("valid status"))
    });
    c.bench_function("validate_header/django_json_6", |b| {
        b.iter(|| {
            for (name, value) in black_box(&RESPONSE_HEADERS) {
                validate_header(name, value).expect("valid header");
            }
        })
    });
}

/// Criterion's defaults, or short runs when RGUNICORN_BENCH=quick (command-line flags still win).
fn config() -> Criterion {
    let quick = std::env::var("RGUNICORN_BENCH").is_ok_and(|v| v == "quick");
    match quick {
        true => Criterion::default()
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(1)),
        false => Criterion::default(),
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_parse_head, bench_chunked, bench_response_checks
}
criterion_main!(benches);
