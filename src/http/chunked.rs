//! TEMP stub until the http branch lands.
use super::request::ParseError;
#[derive(Default)]
pub struct ChunkedDecoder {
    remaining: u64,
    state: u8,
}
impl ChunkedDecoder {
    pub fn decode(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max_out: usize,
    ) -> Result<usize, ParseError> {
        let mut i = 0;
        loop {
            match self.state {
                0 => {
                    let Some(e) = input[i..].windows(2).position(|w| w == b"\r\n") else {
                        return Ok(i);
                    };
                    let s = std::str::from_utf8(&input[i..i + e])
                        .map_err(|_| ParseError::InvalidChunkSize("x"))?;
                    self.remaining = u64::from_str_radix(s.split(';').next().unwrap(), 16)
                        .map_err(|_| ParseError::InvalidChunkSize("x"))?;
                    i += e + 2;
                    self.state = if self.remaining == 0 { 3 } else { 1 };
                }
                1 => {
                    let n = (input.len() - i)
                        .min(self.remaining as usize)
                        .min(max_out.saturating_sub(out.len()));
                    if n == 0 {
                        return Ok(i);
                    }
                    out.extend_from_slice(&input[i..i + n]);
                    i += n;
                    self.remaining -= n as u64;
                    if self.remaining == 0 {
                        self.state = 2
                    }
                }
                2 => {
                    if input.len() - i < 2 {
                        return Ok(i);
                    }
                    i += 2;
                    self.state = 0;
                }
                3 => {
                    if input.len() - i < 2 {
                        return Ok(i);
                    }
                    i += 2;
                    self.state = 4;
                }
                _ => return Ok(i),
            }
        }
    }
    pub fn is_done(&self) -> bool {
        self.state == 4
    }
}
