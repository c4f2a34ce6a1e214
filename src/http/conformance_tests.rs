//! Runs gunicorn's request corpus (tests/conformance/gunicorn-requests, 27.0.1 behaviour) against
//! `parse_head` and `ChunkedDecoder`, with expectations from tests/conformance/expectations.json
//! (made by extract_expectations.py). Test-only; it checks, it never adapts the parser.
use super::conformance_feed::{run_connection, splits, End};
use super::rules_tests::rules;
use super::{HeadRules, ProxyPolicy, RequestHead, Version};
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
    /// Cases that lack Host: they run with permit_missing_host, the only setting under which an
    /// HTTP/1.1 request without Host is served (each is checked to need it).
    permit_missing_host: BTreeMap<String, String>,
    /// Valid in gunicorn, refused here with 501: a transfer coding besides the one chunked.
    unsupported_transfer_coding: BTreeMap<String, String>,
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

/// The rules and PROXY policy of a server started with the case's settings, through the
/// production path (command line, validation, `HeadRules::of`), as tests/test_conformance.py
/// starts one.
fn rules_for(case: &Case, permit_missing_host: bool) -> (HeadRules, ProxyPolicy) {
    let mut args = Vec::new();
    for (name, flag) in [
        ("limit_request_line", "--limit-request-line"),
        ("limit_request_fields", "--limit-request-fields"),
        ("limit_request_field_size", "--limit-request-field_size"),
    ] {
        if let Some(value) = case.settings.get(name) {
            // gunicorn silently caps limit_request_line at 8190; rgunicorn refuses more.
            let value = match (name, value.as_u64().unwrap()) {
                ("limit_request_line", n) => n.min(8190),
                (_, n) => n,
            };
            args.extend([flag.to_string(), value.to_string()]);
        }
    }
    if permit_missing_host {
        args.push("--permit-missing-host".into());
    }
    let proxy = match case.settings.contains_key("proxy_protocol") {
        true => ProxyPolicy::Accept,
        false => ProxyPolicy::Off,
    };
    (
        rules(&args.iter().map(String::as_str).collect::<Vec<_>>()),
        proxy,
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

type Rules = (HeadRules, ProxyPolicy);

/// The rules a case runs under (see `Deviations::permit_missing_host`).
fn case_rules(id: &str, case: &Case, deviations: &Deviations) -> Rules {
    rules_for(case, deviations.permit_missing_host.contains_key(id))
}

fn check_valid(
    id: &str,
    case: &Case,
    data: &[u8],
    rules: &Rules,
    truncated: bool,
) -> Result<(), String> {
    let expected = case.requests.as_ref().ok_or("no requests")?;
    for (seed, (how, chunks, max_out)) in splits(data, data.len() as u64).into_iter().enumerate() {
        let (requests, end) = run_connection(data, &chunks, (&rules.0, rules.1), max_out);
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

/// The error class a refused case ends with: gunicorn's, or 501 for a case listed in
/// `unsupported_transfer_coding`.
fn check_invalid(id: &str, class: &str, data: &[u8], rules: &Rules) -> Result<(), String> {
    for (how, chunks, max_out) in splits(data, data.len() as u64) {
        let (_, end) = run_connection(data, &chunks, (&rules.0, rules.1), max_out);
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

/// How a connection carrying `data` goes, fed all at once, as text to compare.
fn verdict(data: &[u8], rules: &Rules) -> String {
    let (requests, end) = run_connection(data, &[data.len()], (&rules.0, rules.1), usize::MAX);
    format!("{requests:?} then {end:?}")
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
        .chain(deviations.truncated_body.keys())
        .chain(deviations.permit_missing_host.keys())
        .chain(deviations.unsupported_transfer_coding.keys());
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
    let deviations = deviations();
    let failures: Vec<String> = runnable(&cases)
        .iter()
        .filter(|(id, _, _)| !deviations.unsupported_transfer_coding.contains_key(*id))
        .filter(|(_, case, _)| case.requests.is_some())
        .filter_map(|(id, case, data)| {
            let rules = case_rules(id, case, &deviations);
            let truncated = deviations.truncated_body.contains_key(id.as_str());
            check_valid(id, case, data, &rules, truncated).err()
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn invalid_cases_fail_with_gunicorns_status() {
    let cases = load_cases();
    let deviations = deviations();
    let failures: Vec<String> = runnable(&cases)
        .iter()
        .filter_map(|(id, case, data)| {
            let class = match (&case.error, deviations.unsupported_transfer_coding.get(*id)) {
                (_, Some(_)) => "UnsupportedTransferCoding",
                (Some(class), None) => class,
                (None, None) => return None,
            };
            check_invalid(id, class, data, &case_rules(id, case, &deviations)).err()
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// permit_missing_host is listed for exactly the cases whose outcome it changes: no case runs
/// under it for nothing, and none passes only because it is not strict.
#[test]
fn permit_missing_host_is_listed_exactly_where_it_matters() {
    let cases = load_cases();
    let deviations = deviations();
    let mut wrong = Vec::new();
    for (id, case, data) in runnable(&cases) {
        let strict = verdict(&data, &rules_for(case, false));
        let permitted = verdict(&data, &rules_for(case, true));
        let listed = deviations.permit_missing_host.contains_key(id.as_str());
        if listed != (strict != permitted) {
            wrong.push(format!("{id}: listed {listed}, strict: {strict}"));
        }
        if listed {
            assert!(strict.contains("without Host"), "{id}: {strict}");
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
