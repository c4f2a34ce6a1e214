//! A minimal blocking HTTP/1.1 keep-alive client for the bench's own needs: readiness probes and
//! the mixed-latency load (where each request's latency must be kept apart by path). It never
//! pipelines: one request at a time on a connection.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One keep-alive connection that reconnects when the server closed the previous one.
pub struct Conn {
    addr: SocketAddr,
    timeout: Duration,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

/// The parts of a response head the bench looks at.
struct Head {
    status: u16,
    content_length: Option<usize>,
    chunked: bool,
    close: bool,
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

fn parse_head(head: &str) -> io::Result<Head> {
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("bad status line"))?;
    let mut parsed = Head {
        status,
        content_length: None,
        chunked: false,
        close: false,
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (
            name.trim().to_ascii_lowercase(),
            value.trim().to_ascii_lowercase(),
        );
        match name.as_str() {
            "content-length" => parsed.content_length = value.parse().ok(),
            "transfer-encoding" => parsed.chunked = value.contains("chunked"),
            "connection" => parsed.close = value.contains("close"),
            _ => {}
        }
    }
    Ok(parsed)
}

impl Conn {
    pub fn new(addr: SocketAddr, timeout: Duration) -> Self {
        Conn {
            addr,
            timeout,
            stream: None,
            buf: Vec::new(),
        }
    }

    fn connect(&mut self) -> io::Result<&mut TcpStream> {
        if self.stream.is_none() {
            let stream = TcpStream::connect_timeout(&self.addr, self.timeout)?;
            stream.set_read_timeout(Some(self.timeout))?;
            stream.set_write_timeout(Some(self.timeout))?;
            stream.set_nodelay(true)?;
            self.buf.clear();
            self.stream = Some(stream);
        }
        Ok(self.stream.as_mut().expect("just connected"))
    }

    /// Read more bytes into the buffer; an EOF is an error unless `eof_ok`.
    fn fill(&mut self, eof_ok: bool) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let stream = self
            .stream
            .as_mut()
            .ok_or_else(|| invalid("not connected"))?;
        let n = stream.read(&mut chunk)?;
        if n == 0 && !eof_ok {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    fn read_head(&mut self) -> io::Result<Head> {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = parse_head(&String::from_utf8_lossy(&self.buf[..end]))?;
                self.buf.drain(..end + 4);
                return Ok(head);
            }
            self.fill(false)?;
        }
    }

    fn read_body(&mut self, head: &Head) -> io::Result<()> {
        if head.chunked {
            return Err(invalid("chunked responses are not expected by the bench"));
        }
        match head.content_length {
            Some(len) => {
                while self.buf.len() < len {
                    self.fill(false)?;
                }
                self.buf.drain(..len);
            }
            None => while self.fill(true)? > 0 {},
        }
        Ok(())
    }

    /// GET `path`; return the status. The connection is kept unless either side asked to close.
    pub fn get(&mut self, path: &str) -> io::Result<u16> {
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: e2e-bench\r\n\r\n");
        let result = self.exchange(request.as_bytes());
        if !matches!(result, Ok((_, false))) {
            self.stream = None;
        }
        result.map(|(status, _)| status)
    }

    fn exchange(&mut self, request: &[u8]) -> io::Result<(u16, bool)> {
        self.connect()?.write_all(request)?;
        let head = self.read_head()?;
        self.read_body(&head)?;
        Ok((head.status, head.close || head.content_length.is_none()))
    }
}

/// One GET on a fresh connection: the probe used to wait until a server answers.
pub fn probe(addr: SocketAddr, path: &str) -> io::Result<u16> {
    Conn::new(addr, Duration::from_secs(2)).get(path)
}
