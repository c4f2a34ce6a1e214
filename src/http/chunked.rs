//! Decoder for the chunked transfer coding of request bodies (RFC 9112 §7.1), trailers included.
//! Pure and incremental: it never reads a socket, and a premature EOF is the caller's to judge.
use super::fields::{
    classify, next_line, quoted_len, skip_bws, token_len, trim_ows, FieldLimits, FieldLine, Line,
};
use super::request::{show, Limits, ParseError};

/// Fields that would change routing, framing or authentication after the fact (RFC 9110 §6.5.1).
const FORBIDDEN_TRAILERS: [&str; 6] = [
    "HOST",
    "CONTENT-LENGTH",
    "TRANSFER-ENCODING",
    "TRAILER",
    "AUTHORIZATION",
    "TE",
];

#[derive(Debug, Default)]
pub struct ChunkedDecoder {
    state: State,
    /// The chunk-size or trailer line read so far; bounded by the field size limit.
    line: Vec<u8>,
    trailers: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    Size,
    Data(u64),
    DataCr,
    DataLf,
    Trailer,
    Done,
}

impl ChunkedDecoder {
    /// Decodes from `input`, appending at most `max_out` body bytes to `out`. Returns bytes of
    /// `input` consumed. Call again with more input as it arrives; `is_done()` after the last
    /// chunk and trailer section. Never consumes past the end of the body.
    pub fn decode(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max_out: usize,
    ) -> Result<usize, ParseError> {
        let (mut used, mut budget) = (0, max_out);
        while let Some(&next) = input.get(used) {
            used += match self.state {
                State::Done => break,
                State::Data(_) if budget == 0 => break,
                State::Data(left) => {
                    let rest = &input[used..];
                    let n = rest
                        .len()
                        .min(budget)
                        .min(usize::try_from(left).unwrap_or(usize::MAX));
                    out.extend_from_slice(&rest[..n]);
                    budget -= n;
                    self.state = match left - n as u64 {
                        0 => State::DataCr,
                        left => State::Data(left),
                    };
                    n
                }
                State::DataCr => self.terminator(next, b'\r', State::DataLf)?,
                State::DataLf => self.terminator(next, b'\n', State::Size)?,
                State::Size | State::Trailer => self.take_line(&input[used..])?,
            };
        }
        Ok(used)
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    fn terminator(&mut self, byte: u8, wanted: u8, then: State) -> Result<usize, ParseError> {
        if byte != wanted {
            let detail = format!("{} instead of CRLF after chunk data", show(&[byte]));
            return Err(ParseError::ChunkMissingTerminator(detail));
        }
        self.state = then;
        Ok(1)
    }

    /// Moves bytes up to the next LF into the line buffer and acts on the line once complete.
    fn take_line(&mut self, rest: &[u8]) -> Result<usize, ParseError> {
        let limits = trailer_limits();
        let room = (limits.line_max + 2).saturating_sub(self.line.len());
        let window = &rest[..rest.len().min(room)];
        let n = window
            .iter()
            .position(|&b| b == b'\n')
            .map_or(window.len(), |lf| lf + 1);
        self.line.extend_from_slice(&window[..n]);
        let line = next_line(&self.line, limits.line_max);
        let next = match self.state {
            State::Size => size_line(&line, limits.line_max)?,
            _ => trailer_line(&line, self.trailers, &limits)?,
        };
        if let Some(next) = next {
            if (self.state, next) == (State::Trailer, State::Trailer) {
                self.trailers += 1;
            }
            self.state = next;
            self.line.clear();
        }
        Ok(n)
    }
}

/// Trailers get gunicorn's default header limits: the decoder has no settings of its own.
fn trailer_limits() -> FieldLimits {
    FieldLimits::from(&Limits::default())
}

/// The state after a chunk-size line, or `None` while it is incomplete.
fn size_line(line: &Line<'_>, max: usize) -> Result<Option<State>, ParseError> {
    if line.too_long(max) {
        let detail = format!("chunk-size line longer than {max} bytes");
        return Err(ParseError::InvalidChunkSize(detail));
    }
    match line {
        Line::Partial(_) => Ok(None),
        Line::BareLf(content) => Err(ParseError::InvalidChunkSize(format!(
            "bare LF after {}",
            show(content)
        ))),
        Line::Done(content, _) => Ok(Some(match chunk_size(content)? {
            0 => State::Trailer,
            size => State::Data(size),
        })),
    }
}

fn is_forbidden_trailer(name: &str) -> bool {
    FORBIDDEN_TRAILERS
        .iter()
        .any(|forbidden| name.eq_ignore_ascii_case(forbidden))
}

/// The state after a trailer line, or `None` while it is incomplete. Trailers are checked like
/// header fields and then dropped: they never reach the application.
fn trailer_line(
    line: &Line<'_>,
    seen: usize,
    limits: &FieldLimits,
) -> Result<Option<State>, ParseError> {
    match classify(line, seen, limits)? {
        None => Ok(None),
        Some(FieldLine::End(_)) => Ok(Some(State::Done)),
        Some(FieldLine::Field(name, _, _)) if is_forbidden_trailer(name) => Err(
            ParseError::InvalidHeaderName(format!("{name} is not allowed in trailers")),
        ),
        Some(FieldLine::Field(..)) => Ok(Some(State::Trailer)),
    }
}

/// `chunk-size [ chunk-ext ]`: 1*HEXDIG, then optional BWS and extensions.
fn chunk_size(line: &[u8]) -> Result<u64, ParseError> {
    let digits = match line.iter().position(|&b| b == b';') {
        Some(semicolon) => {
            check_extensions(&line[semicolon..])?;
            trim_ows(&line[..semicolon])
        }
        None => line,
    };
    let invalid = || ParseError::InvalidChunkSize(show(digits));
    if digits.is_empty() {
        return Err(invalid());
    }
    digits
        .iter()
        .try_fold(0u64, |size, &b| {
            let digit = char::from(b).to_digit(16)?;
            size.checked_mul(16)?.checked_add(u64::from(digit))
        })
        .ok_or_else(invalid)
}

/// `*( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )` with ext-val a token or quoted-string.
fn check_extensions(extensions: &[u8]) -> Result<(), ParseError> {
    let invalid = || ParseError::InvalidChunkExtension(show(extensions));
    let mut rest = extensions;
    while !rest.is_empty() {
        rest = skip_bws(rest).strip_prefix(b";").ok_or_else(invalid)?;
        rest = skip_bws(rest);
        let name = token_len(rest);
        if name == 0 {
            return Err(invalid());
        }
        rest = &rest[name..];
        if let Some(value) = skip_bws(rest).strip_prefix(b"=") {
            let value = skip_bws(value);
            let len = match value.first() {
                Some(b'"') => quoted_len(value).ok_or_else(invalid)?,
                _ => token_len(value),
            };
            if len == 0 {
                return Err(invalid());
            }
            rest = &value[len..];
        }
    }
    Ok(())
}
