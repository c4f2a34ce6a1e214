//! gunicorn's `access_log_format`: compiled once into literal and atom segments, then rendered
//! per request. Pure text: never writes anywhere and never fails (unknown atoms render "-").
use std::fmt::Write;

use super::access::AccessRecord;
use super::clock;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Atom(Atom),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Atom {
    RemoteAddr,
    Dash,
    User,
    Time,
    RequestLine,
    Method,
    Path,
    Query,
    Protocol,
    Status,
    LengthOrZero,
    LengthOrDash,
    Referer,
    UserAgent,
    Seconds,
    Micros,
    Millis,
    DecimalSeconds,
    Pid,
    RequestHeader(String),
    ResponseHeader(String),
    EnvVar(String),
    Unknown,
}

/// A compiled `access_log_format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format(Vec<Segment>);

impl Format {
    /// Reads Python %-formatting as gunicorn uses it: `%(name)s` atoms and `%%`. Width and flag
    /// characters are accepted and ignored; a `%` that starts nothing valid stays literal.
    pub fn compile(format: &str) -> Format {
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut rest = format;
        while let Some(at) = rest.find('%') {
            literal.push_str(&rest[..at]);
            rest = &rest[at..];
            if let Some(after) = rest.strip_prefix("%%") {
                literal.push('%');
                rest = after;
            } else if let Some((name, after)) = atom_spec(rest) {
                if !literal.is_empty() {
                    segments.push(Segment::Literal(std::mem::take(&mut literal)));
                }
                segments.push(Segment::Atom(Atom::named(name)));
                rest = after;
            } else {
                literal.push('%');
                rest = &rest[1..];
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            segments.push(Segment::Literal(literal));
        }
        Format(segments)
    }

    /// Whether any atom is a response header (`%({name}o)s`).
    pub fn has_response_headers(&self) -> bool {
        (self.0.iter()).any(|s| matches!(s, Segment::Atom(Atom::ResponseHeader(_))))
    }

    /// Appends the rendered line (without newline) to `out`.
    pub fn render(&self, out: &mut String, record: &AccessRecord<'_>) {
        for segment in &self.0 {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Atom(atom) => atom.render(out, record),
            }
        }
    }
}

/// Splits `%(name)<flags><conversion>...` into the name and what follows it.
fn atom_spec(text: &str) -> Option<(&str, &str)> {
    let inner = text.strip_prefix("%(")?;
    let (name, after) = inner.split_once(')')?;
    let after = after.trim_start_matches(|c: char| "-+ #0123456789.".contains(c));
    let conversion = after.chars().next().filter(char::is_ascii_alphabetic)?;
    Some((name, &after[conversion.len_utf8()..]))
}

impl Atom {
    fn named(name: &str) -> Atom {
        if let Some(inner) = name.strip_prefix('{') {
            return match inner.rsplit_once('}') {
                Some((key, "i")) => Atom::RequestHeader(key.to_owned()),
                Some((key, "o")) => Atom::ResponseHeader(key.to_owned()),
                Some((key, "e")) => Atom::EnvVar(key.to_owned()),
                _ => Atom::Unknown,
            };
        }
        match name {
            "h" => Atom::RemoteAddr,
            "l" => Atom::Dash,
            "u" => Atom::User,
            "t" => Atom::Time,
            "r" => Atom::RequestLine,
            "m" => Atom::Method,
            "U" => Atom::Path,
            "q" => Atom::Query,
            "H" => Atom::Protocol,
            "s" => Atom::Status,
            "B" => Atom::LengthOrZero,
            "b" => Atom::LengthOrDash,
            "f" => Atom::Referer,
            "a" => Atom::UserAgent,
            "T" => Atom::Seconds,
            "D" => Atom::Micros,
            "M" => Atom::Millis,
            "L" => Atom::DecimalSeconds,
            "p" => Atom::Pid,
            _ => Atom::Unknown,
        }
    }

    fn render(&self, out: &mut String, r: &AccessRecord<'_>) {
        match self {
            Atom::RemoteAddr => or_dash(out, r.remote_addr),
            Atom::Dash | Atom::Unknown => out.push('-'),
            Atom::User => or_dash(out, &basic_auth_user(r).unwrap_or_default()),
            Atom::Time => {
                let started = r.ended.checked_sub(r.duration).unwrap_or(r.ended);
                clock::write_access_log_time(out, started);
            }
            Atom::RequestLine => push(
                out,
                format_args!("{} {} {}", r.method, r.raw_uri, r.version),
            ),
            Atom::Method => out.push_str(r.method),
            Atom::Path => out.push_str(r.path),
            Atom::Query => out.push_str(r.query),
            Atom::Protocol => out.push_str(r.version),
            Atom::Status => push(out, r.status),
            Atom::LengthOrZero => push(out, r.response_length.unwrap_or(0)),
            Atom::LengthOrDash => match r.response_length {
                Some(n) => push(out, n),
                None => out.push('-'),
            },
            Atom::Referer => request_header(out, r, "referer"),
            Atom::UserAgent => request_header(out, r, "user-agent"),
            Atom::Seconds => push(out, r.duration.as_secs()),
            Atom::Micros => push(out, r.duration.as_micros()),
            Atom::Millis => push(out, r.duration.as_millis()),
            Atom::DecimalSeconds => {
                let d = r.duration;
                push(
                    out,
                    format_args!("{}.{:06}", d.as_secs(), d.subsec_micros()),
                );
            }
            Atom::Pid => push(out, format_args!("<{}>", r.pid)),
            Atom::RequestHeader(name) => request_header(out, r, name),
            Atom::ResponseHeader(name) => response_header(out, r, name),
            Atom::EnvVar(name) => or_dash(out, &std::env::var(name).unwrap_or_default()),
        }
    }
}

fn push(out: &mut String, value: impl std::fmt::Display) {
    // Writing into a String cannot fail.
    let _ = write!(out, "{value}");
}

fn or_dash(out: &mut String, value: &str) {
    match value {
        "" => out.push('-'),
        v => out.push_str(v),
    }
}

fn request_header(out: &mut String, r: &AccessRecord<'_>, name: &str) {
    let value = last_named(r.request_headers, name).map(|v| String::from_utf8_lossy(v));
    or_dash(out, &value.unwrap_or_default());
}

fn response_header(out: &mut String, r: &AccessRecord<'_>, name: &str) {
    or_dash(
        out,
        last_named(r.response_headers, name).map_or("", String::as_str),
    );
}

/// The last field named `name`, as gunicorn's dict of headers keeps the last one.
fn last_named<'h, V>(headers: &'h [(String, V)], name: &str) -> Option<&'h V> {
    let mut newest_first = headers.iter().rev();
    newest_first
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// The user name of `Authorization: Basic`, as gunicorn's `%(u)s` shows it.
fn basic_auth_user(r: &AccessRecord<'_>) -> Option<String> {
    let value = last_named(r.request_headers, "authorization")?;
    let (scheme, credentials) = value.trim_ascii().split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let decoded = String::from_utf8(decode_base64(credentials.trim_ascii())?).ok()?;
    decoded.split(':').next().map(str::to_owned)
}

/// Standard-alphabet base64, padding optional.
fn decode_base64(input: &[u8]) -> Option<Vec<u8>> {
    let digits = input.strip_suffix(b"==").or(input.strip_suffix(b"="));
    let digits = digits.unwrap_or(input);
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in digits {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn header(name: &str, value: &str) -> (String, Vec<u8>) {
        (name.to_owned(), value.as_bytes().to_vec())
    }

    fn render(format: &str) -> String {
        let request_headers = [
            header("HOST", "example.com"),
            header("REFERER", "http://ref/"),
            header("USER-AGENT", "curl/8.0"),
            // "alice:secret"
            header("AUTHORIZATION", "Basic YWxpY2U6c2VjcmV0"),
            header("X-TWICE", "first"),
            header("X-TWICE", "second"),
        ];
        let response_headers = [("Content-Type".to_owned(), "text/html".to_owned())];
        let record = AccessRecord {
            remote_addr: "192.0.2.7",
            method: "POST",
            raw_uri: "/p/a%20b?x=1&y=2",
            path: "/p/a b",
            query: "x=1&y=2",
            version: "HTTP/1.1",
            status: 201,
            response_length: Some(1234),
            request_headers: &request_headers,
            response_headers: &response_headers,
            ended: UNIX_EPOCH + Duration::from_micros(1_795_694_402_345_678),
            duration: Duration::from_micros(2_345_678),
            pid: 4242,
            worker: None,
        };
        let mut out = String::new();
        Format::compile(format).render(&mut out, &record);
        out
    }

    #[test]
    fn every_atom() {
        let cases = [
            ("%(h)s", "192.0.2.7"),
            ("%(l)s", "-"),
            ("%(u)s", "alice"),
            ("%(t)s", "[26/Nov/2026:12:00:00 +0000]"),
            ("%(r)s", "POST /p/a%20b?x=1&y=2 HTTP/1.1"),
            ("%(m)s", "POST"),
            ("%(U)s", "/p/a b"),
            ("%(q)s", "x=1&y=2"),
            ("%(H)s", "HTTP/1.1"),
            ("%(s)s", "201"),
            ("%(B)s", "1234"),
            ("%(b)s", "1234"),
            ("%(f)s", "http://ref/"),
            ("%(a)s", "curl/8.0"),
            ("%(T)s", "2"),
            ("%(D)s", "2345678"),
            ("%(M)s", "2345"),
            ("%(L)s", "2.345678"),
            ("%(p)s", "<4242>"),
            ("%({host}i)s", "example.com"),
            ("%({Host}i)s", "example.com"),
            ("%({x-twice}i)s", "second"),
            ("%({missing}i)s", "-"),
            ("%({content-type}o)s", "text/html"),
            ("%({missing}o)s", "-"),
            (
                "%({PATH}e)s",
                &std::env::var("PATH").unwrap_or_else(|_| "-".into()),
            ),
            ("%({RGUNICORN_SURELY_UNSET_VAR}e)s", "-"),
            ("%(nope)s", "-"),
            ("%({x}z)s", "-"),
        ];
        for (format, want) in cases {
            assert_eq!(render(format), want, "{format}");
        }
    }

    #[test]
    fn gunicorn_default_format() {
        let format = r#"%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s""#;
        let want = r#"192.0.2.7 - alice [26/Nov/2026:12:00:00 +0000] "POST /p/a%20b?x=1&y=2 HTTP/1.1" 201 1234 "http://ref/" "curl/8.0""#;
        assert_eq!(render(format), want);
    }

    #[test]
    fn percent_escapes_widths_and_stray_percents() {
        assert_eq!(render("100%% %(s)d%%"), "100% 201%");
        assert_eq!(render("[%(s)-5s]"), "[201]");
        assert_eq!(render("50% off %(s"), "50% off %(s");
        assert_eq!(render("%(s)"), "%(s)");
        assert_eq!(render("%"), "%");
        assert_eq!(render(""), "");
    }

    fn bare(request_headers: &[(String, Vec<u8>)]) -> AccessRecord<'_> {
        AccessRecord {
            remote_addr: "",
            method: "GET",
            raw_uri: "/",
            path: "/",
            query: "",
            version: "HTTP/1.0",
            status: 304,
            response_length: None,
            request_headers,
            response_headers: &[],
            ended: UNIX_EPOCH,
            duration: Duration::ZERO,
            pid: 1,
            worker: None,
        }
    }

    #[test]
    fn missing_values_render_as_dashes() {
        let mut out = String::new();
        let format = Format::compile("%(h)s|%(u)s|%(b)s|%(B)s|%(f)s|%(a)s|%(q)s|%(L)s");
        format.render(&mut out, &bare(&[]));
        assert_eq!(out, "-|-|-|0|-|-||0.000000");
    }

    #[test]
    fn basic_auth_variants() {
        let user = |value: &str| basic_auth_user(&bare(&[header("AUTHORIZATION", value)]));
        assert_eq!(user("basic Ym9iOg==").as_deref(), Some("bob"));
        assert_eq!(user("Basic Ym9i").as_deref(), Some("bob"));
        assert_eq!(user("Basic Og==").as_deref(), Some(""));
        assert_eq!(user("Bearer YWxpY2U6c2VjcmV0"), None);
        assert_eq!(user("Basic !!!"), None);
        assert_eq!(user("Basic"), None);
    }

    #[test]
    fn base64_decodes_all_lengths() {
        for (text, want) in [
            ("", ""),
            ("YQ==", "a"),
            ("YWI=", "ab"),
            ("YWJj", "abc"),
            ("YWJjZA", "abcd"),
        ] {
            assert_eq!(
                decode_base64(text.as_bytes()).unwrap(),
                want.as_bytes(),
                "{text}"
            );
        }
        assert_eq!(decode_base64(b"+/+/"), Some(vec![0xfb, 0xff, 0xbf]));
    }
}
