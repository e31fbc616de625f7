//! Request body framing: Content-Length and chunked, decoded incrementally with a cap.

use super::http::Framing;
use crate::limits::MAX_CHUNK_LINE;

#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// The body is larger than the route accepts (413).
    TooLarge,
    /// Broken chunked framing (400).
    Bad(&'static str),
}

#[derive(Debug)]
enum State {
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkDataEnd,
    Trailer,
    Done,
}

#[derive(Debug)]
pub struct Decoder {
    state: State,
    limit: u64,
    received: u64,
}

impl Decoder {
    /// Refuses a declared length over `limit` before a byte of the body is read.
    pub fn new(framing: Framing, limit: u64) -> Result<Decoder, BodyError> {
        let state = match framing {
            Framing::None | Framing::Length(0) => State::Done,
            Framing::Length(n) if n > limit => return Err(BodyError::TooLarge),
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkSize,
        };
        Ok(Decoder { state, limit, received: 0 })
    }

    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Decodes from `input` into `out`; returns how many input bytes were used. Stops at the
    /// end of the body, so pipelined bytes after it stay in `input`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, BodyError> {
        let mut pos = 0;
        loop {
            let rest = &input[pos..];
            match self.state {
                State::Done => return Ok(pos),
                State::Length(remaining) => {
                    let take = remaining.min(rest.len() as u64) as usize;
                    out.extend_from_slice(&rest[..take]);
                    pos += take;
                    self.state =
                        if remaining == take as u64 { State::Done } else { State::Length(remaining - take as u64) };
                    return Ok(pos);
                }
                State::ChunkSize => {
                    let Some(line_end) = find_crlf(rest, MAX_CHUNK_LINE)? else {
                        return Ok(pos);
                    };
                    let line = &rest[..line_end];
                    let digits = line.split(|&b| b == b';').next().unwrap_or(b"");
                    let size = parse_hex(trim(digits)).ok_or(BodyError::Bad("invalid chunk size"))?;
                    pos += line_end + 2;
                    if size == 0 {
                        self.state = State::Trailer;
                    } else {
                        if self.received.checked_add(size).is_none_or(|t| t > self.limit) {
                            return Err(BodyError::TooLarge);
                        }
                        self.received += size;
                        self.state = State::ChunkData(size);
                    }
                }
                State::ChunkData(remaining) => {
                    if rest.is_empty() {
                        return Ok(pos);
                    }
                    let take = remaining.min(rest.len() as u64) as usize;
                    out.extend_from_slice(&rest[..take]);
                    pos += take;
                    self.state = if remaining == take as u64 {
                        State::ChunkDataEnd
                    } else {
                        State::ChunkData(remaining - take as u64)
                    };
                }
                State::ChunkDataEnd => {
                    if rest.len() < 2 {
                        if rest.first().is_some_and(|&b| b != b'\r') {
                            return Err(BodyError::Bad("chunk data longer than its declared size"));
                        }
                        return Ok(pos);
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(BodyError::Bad("chunk data longer than its declared size"));
                    }
                    pos += 2;
                    self.state = State::ChunkSize;
                }
                State::Trailer => {
                    let Some(line_end) = find_crlf(rest, MAX_CHUNK_LINE)? else {
                        return Ok(pos);
                    };
                    pos += line_end + 2;
                    if line_end == 0 {
                        self.state = State::Done;
                    }
                }
            }
        }
    }
}

/// Position of the first CRLF, `None` if more input is needed; a line longer than `max`
/// or a bare LF is an error.
fn find_crlf(buf: &[u8], max: usize) -> Result<Option<usize>, BodyError> {
    match buf.iter().position(|&b| b == b'\n') {
        Some(0) => Err(BodyError::Bad("bare LF in chunked framing")),
        Some(i) if buf[i - 1] == b'\r' => Ok(Some(i - 1)),
        Some(_) => Err(BodyError::Bad("bare LF in chunked framing")),
        None if buf.len() > max => Err(BodyError::Bad("chunk line too long")),
        None => Ok(None),
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &b[start..end]
}

fn parse_hex(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &d| Some(acc * 16 + u64::from((d as char).to_digit(16)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(framing: Framing, limit: u64, input: &[u8]) -> Result<(Vec<u8>, usize, bool), BodyError> {
        let mut d = Decoder::new(framing, limit)?;
        let mut out = Vec::new();
        let used = d.feed(input, &mut out)?;
        Ok((out, used, d.is_done()))
    }

    #[test]
    fn refuses_oversize_and_lying_chunks() {
        assert_eq!(Decoder::new(Framing::Length(11), 10).unwrap_err(), BodyError::TooLarge);
        assert_eq!(decode_all(Framing::Chunked, 4, b"5\r\nhello\r\n0\r\n\r\n").unwrap_err(), BodyError::TooLarge);
        assert!(matches!(decode_all(Framing::Chunked, 100, b"2\r\nhello\r\n"), Err(BodyError::Bad(_))));
        assert!(matches!(decode_all(Framing::Chunked, 100, b"zz\r\n"), Err(BodyError::Bad(_))));
        assert!(matches!(decode_all(Framing::Chunked, 100, b"5\nhello"), Err(BodyError::Bad(_))));
        let long = vec![b'1'; MAX_CHUNK_LINE + 1];
        assert!(matches!(decode_all(Framing::Chunked, 100, &long), Err(BodyError::Bad(_))));
        assert!(matches!(decode_all(Framing::Chunked, u64::MAX, b"ffffffffffffffff\r\n"), Err(BodyError::Bad(_))));
    }

    #[test]
    fn decodes_and_leaves_pipelined_bytes() {
        let input = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\nGET / HTTP/1.1";
        let (out, used, done) = decode_all(Framing::Chunked, 100, input).unwrap();
        assert_eq!(out, b"hello world");
        assert!(done);
        assert_eq!(&input[used..], b"GET / HTTP/1.1");
        let (out, used, done) = decode_all(Framing::Length(3), 3, b"abcdef").unwrap();
        assert_eq!((out.as_slice(), used, done), (&b"abc"[..], 3, true));
    }

    #[test]
    fn decodes_byte_by_byte() {
        let input = b"3\r\nabc\r\n0\r\n\r\n";
        let mut d = Decoder::new(Framing::Chunked, 10).unwrap();
        let mut out = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        for &b in input.iter() {
            pending.push(b);
            let used = d.feed(&pending, &mut out).unwrap();
            pending.drain(..used);
        }
        assert!(d.is_done());
        assert_eq!(out, b"abc");
    }
}
