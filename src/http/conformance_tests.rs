//! Runs gunicorn's request corpus (tests/conformance/gunicorn-requests, 27.0.1 behaviour) against
//! `parse_head` and `ChunkedDecoder`, with expectations from tests/conformance/expectations.json
//! (made by extract_expectations.py). Test-only; it checks, it never adapts the parser.
use super::conformance_feed::{run_connection, splits, End};
use super::{Limits, RequestHead, Version};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The cases not run here and why, shared with tests/test_conformance.py (the binary test).
#[derive(Debug, Deserialize)]
struct Deviations {
    skipped: BTreeMap<String, String>,
    /// Rules that live above the parser (the WSGI environ): only the binary test runs these.
    skipped_in_parser_test: BTreeMap<String, String>,
    /// Valid cases whose body is cut short by the end of the file: gunicorn hands the app the
    /// short body, rgunicorn reports the EOF (what then happens is the body reader's business).
    /// The head and the bytes that did arrive are still checked.
    truncated_body: BTreeMap<String, String>,
}

fn deviations() -> Deviations {
    let json = std::fs::read_to_string(corpus_dir().join("deviations.json")).unwrap();
    serde_json::from_str(&json).unwrap()
}

/// Settings a case may change that we honour; any other one must be skipped in
/// deviations.json.
const SUPPORTED_SETTINGS: &[&str] = &[
    "limit_request_line",
    "limit_request_fields",
    "limit_request_field_size",
    "proxy_protocol",
];

#[derive(Debug, Deserialize)]
struct Case {
    settings: BTreeMap<String, serde_json::Value>,
    error: Option<String>,
    requests: Option<Vec<Expected>>,
}

/// Byte strings are latin-1 text in the JSON: one char per byte.
#[derive(Debug, Deserialize)]
struct Expected {
    method: String,
    raw: String,
    path: String,
    query: String,
    fragment: String,
    version: [u8; 2],
    headers: Vec<(String, String)>,
    body: String,
}

fn latin1(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| u8::try_from(c).expect("latin-1"))
        .collect()
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

fn load_cases() -> BTreeMap<String, Case> {
    let json = std::fs::read_to_string(corpus_dir().join("expectations.json")).unwrap();
    serde_json::from_str(&json).unwrap()
}

fn replace(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let (mut out, mut i) = (Vec::with_capacity(data.len()), 0);
    while i < data.len() {
        if data[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

/// The corpus README's five rules, in its order.
fn decode_http(raw: &[u8]) -> Vec<u8> {
    let data: Vec<u8> = raw.iter().copied().filter(|&b| b != b'\n').collect();
    let data = replace(&data, b"\\r\\n", b"\r\n");
    let data = replace(&data, b"\\0", b"\0");
    let data = replace(&data, b"\\n", b"\n");
    let mut data = replace(&data, b"\\t", b"\t");
    let mut i = 0;
    while i + 4 <= data.len() {
        let hex = std::str::from_utf8(&data[i + 2..i + 4]).ok();
        match hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
            Some(byte) if data[i..].starts_with(b"\\x") => {
                data.splice(i..i + 4, [byte]);
            }
            _ => {}
        }
        i += 1;
    }
    assert!(!data.contains(&b'\\'), "broken fixture: backslash left");
    data
}

fn limits_for(case: &Case) -> Limits {
    let get = |name: &str, default: usize| {
        case.settings
            .get(name)
            .map_or(default, |v| v.as_u64().unwrap() as usize)
    };
    Limits::from_settings(
        get("limit_request_line", 4094),
        get("limit_request_fields", 100),
        get("limit_request_field_size", 8190),
    )
}

/// The status gunicorn answers an error class with; `None` for NoMoreData (EOF: no response).
fn expected_status(class: &str) -> Option<u16> {
    match class {
        "NoMoreData" => None,
        "LimitRequestLine" => Some(414),
        "LimitRequestHeaders" => Some(431),
        "UnsupportedTransferCoding" => Some(501),
        "ExpectationFailed" => Some(417),
        _ => Some(400),
    }
}

fn case_data(id: &str) -> Vec<u8> {
    let path = corpus_dir().join(format!("gunicorn-requests/{id}.http"));
    decode_http(&std::fs::read(path).unwrap())
}

fn skip_reason(deviations: &Deviations, id: &str) -> Option<String> {
    let skipped = deviations.skipped.get(id);
    skipped
        .or_else(|| deviations.skipped_in_parser_test.get(id))
        .cloned()
}

/// The cases to run, each with its decoded bytes; checks that no unsupported setting slips in.
fn runnable(cases: &BTreeMap<String, Case>) -> Vec<(&String, &Case, Vec<u8>)> {
    let deviations = deviations();
    let run: Vec<_> = cases
        .iter()
        .filter(|(id, _)| skip_reason(&deviations, id).is_none())
        .map(|(id, case)| (id, case, case_data(id)))
        .collect();
    for (id, case, _) in &run {
        for setting in case.settings.keys() {
            assert!(
                SUPPORTED_SETTINGS.contains(&setting.as_str()),
                "{id} sets {setting}"
            );
        }
    }
    run
}

fn compare(head: &RequestHead, body: &[u8], want: &Expected) -> Result<(), String> {
    let version = match want.version {
        [1, 0] => Version::Http10,
        _ => Version::Http11,
    };
    let headers: Vec<(String, Vec<u8>)> = want
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), latin1(value)))
        .collect();
    let got = (
        &head.method,
        &head.target,
        &head.path,
        &head.query,
        &head.fragment,
    );
    let wanted = (
        &want.method,
        &want.raw,
        &want.path,
        &want.query,
        &want.fragment,
    );
    // Trailers (only valid/012 has any) are validated and dropped by design, so not compared.
    match (
        got == wanted,
        head.version == version,
        head.headers == headers,
    ) {
        (true, true, true) if body == latin1(&want.body).as_slice() => Ok(()),
        _ => Err(format!("got {head:?} with body {}", body.escape_ascii())),
    }
}

fn check_valid(id: &str, case: &Case, data: &[u8], truncated: bool) -> Result<(), String> {
    let expected = case.requests.as_ref().ok_or("no requests")?;
    let proxy = case.settings.contains_key("proxy_protocol");
    for (seed, (how, chunks, max_out)) in splits(data, data.len() as u64).into_iter().enumerate() {
        let (requests, end) = run_connection(data, &chunks, &limits_for(case), proxy, max_out);
        let fail = |what: String| Err(format!("{id} [{how}, seed {seed}]: {what}"));
        let ended_well = match end {
            End::Clean => true,
            End::Incomplete => truncated,
            End::Error(_) => false,
        };
        if !ended_well || requests.len() != expected.len() {
            return fail(format!("{} requests, then {end:?}", requests.len()));
        }
        for ((head, body), want) in requests.iter().zip(expected) {
            compare(head, body, want).or_else(fail)?;
        }
    }
    Ok(())
}

fn check_invalid(id: &str, case: &Case, data: &[u8]) -> Result<(), String> {
    let class = case.error.as_deref().ok_or("no error class")?;
    let proxy = case.settings.contains_key("proxy_protocol");
    for (how, chunks, max_out) in splits(data, data.len() as u64) {
        let (_, end) = run_connection(data, &chunks, &limits_for(case), proxy, max_out);
        let agrees = match (&end, expected_status(class)) {
            // Each variant is named after the gunicorn class, so the class must match too.
            (End::Error(e), Some(status)) => {
                e.status() == status && format!("{e:?}").starts_with(&format!("{class}("))
            }
            (End::Incomplete, None) => true,
            // A missing last CRLF shows as a body cut short at EOF: the caller closes.
            (End::Incomplete, Some(_)) => class == "ChunkMissingTerminator",
            _ => false,
        };
        if !agrees {
            return Err(format!("{id} [{how}]: expected {class}, got {end:?}"));
        }
    }
    Ok(())
}

#[test]
fn every_case_has_expectations_and_every_skip_a_case() {
    let cases = load_cases();
    let root = corpus_dir().join("gunicorn-requests");
    let mut files = 0;
    for folder in [
        "valid",
        "invalid",
        "delta-27.0.1/valid",
        "delta-27.0.1/invalid",
    ] {
        for entry in std::fs::read_dir(root.join(folder)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if let Some(stem) = name.strip_suffix(".http") {
                files += 1;
                assert!(
                    cases.contains_key(&format!("{folder}/{stem}")),
                    "{folder}/{name}"
                );
            }
        }
    }
    assert_eq!(files, cases.len());
    let deviations = deviations();
    let listed = (deviations.skipped.keys())
        .chain(deviations.skipped_in_parser_test.keys())
        .chain(deviations.truncated_body.keys());
    for id in listed {
        assert!(
            cases.contains_key(id),
            "stale entry {id} in deviations.json"
        );
    }
}

#[test]
fn valid_cases_parse_the_same_for_every_split() {
    let cases = load_cases();
    let run = runnable(&cases);
    let truncated = deviations().truncated_body;
    let failures: Vec<String> = run
        .iter()
        .filter(|(_, case, _)| case.requests.is_some())
        .filter_map(|(id, case, data)| {
            check_valid(id, case, data, truncated.contains_key(id.as_str())).err()
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn invalid_cases_fail_with_gunicorns_status() {
    let cases = load_cases();
    let run = runnable(&cases);
    let failures: Vec<String> = run
        .iter()
        .filter(|(_, case, _)| case.error.is_some())
        .filter_map(|(id, case, data)| check_invalid(id, case, data).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
