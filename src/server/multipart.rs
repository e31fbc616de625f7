//! Streaming multipart/form-data: bytes go in as they arrive, part boundaries and data come
//! out, and only a delimiter's length of input is ever held back. Uploads therefore go
//! straight to disk however large they are.

use crate::limits::{MAX_FORM_PARTS, MAX_PART_HEAD};

/// Receives the parts as the parser finds them.
pub trait Parts {
    fn start(&mut self, name: &str, filename: Option<&str>) -> Result<(), String>;
    fn data(&mut self, bytes: &[u8]) -> Result<(), String>;
    fn end(&mut self) -> Result<(), String>;
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    Preamble,
    AfterDelimiter,
    Headers,
    Data,
    Done,
}

pub struct Parser {
    /// `\r\n--boundary`: what ends a part's data.
    delimiter: Vec<u8>,
    state: State,
    buf: Vec<u8>,
    /// Parts begun so far.
    parts: usize,
}

impl Parser {
    pub fn new(boundary: &str) -> Parser {
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        // The first delimiter may open the body, with no CRLF before it.
        Parser { delimiter, state: State::Preamble, buf: b"\r\n".to_vec(), parts: 0 }
    }

    /// The boundary parameter of a multipart/form-data Content-Type, if that is what it is.
    pub fn boundary(content_type: &str) -> Option<&str> {
        let mut params = content_type.split(';').map(str::trim);
        if !params.next()?.eq_ignore_ascii_case("multipart/form-data") {
            return None;
        }
        params
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
            .map(|(_, v)| v.trim().trim_matches('"'))
            .filter(|b| !b.is_empty() && b.len() <= 70)
    }

    pub fn feed(&mut self, input: &[u8], parts: &mut dyn Parts) -> Result<(), String> {
        if self.state == State::Done {
            return Ok(()); // the epilogue is ignored
        }
        self.buf.extend_from_slice(input);
        let mut pos = 0;
        loop {
            let rest = &self.buf[pos..];
            match self.state {
                State::Done => {
                    pos = self.buf.len();
                    break;
                }
                State::Preamble => match find(rest, &self.delimiter) {
                    Some(i) => {
                        pos += i + self.delimiter.len();
                        self.state = State::AfterDelimiter;
                    }
                    None => {
                        pos += rest.len().saturating_sub(self.delimiter.len() - 1);
                        break;
                    }
                },
                State::AfterDelimiter => {
                    if rest.len() < 2 {
                        break;
                    }
                    if rest.starts_with(b"--") {
                        self.state = State::Done;
                        continue;
                    }
                    // Transport padding (spaces, tabs) may follow a delimiter.
                    let Some(eol) = find(rest, b"\r\n") else {
                        if rest.len() > 64 {
                            return Err("bad multipart delimiter line".into());
                        }
                        break;
                    };
                    if !rest[..eol].iter().all(|&b| b == b' ' || b == b'\t') {
                        return Err("bad multipart delimiter line".into());
                    }
                    pos += eol + 2;
                    self.state = State::Headers;
                }
                State::Headers => {
                    // The limit holds however the bytes arrived: a whole 9 KiB head in one
                    // read is as much too large as one that trickles in.
                    let Some(end) = find(rest, b"\r\n\r\n") else {
                        if rest.len() > MAX_PART_HEAD {
                            return Err("multipart part headers too large".into());
                        }
                        break;
                    };
                    if end > MAX_PART_HEAD {
                        return Err("multipart part headers too large".into());
                    }
                    self.parts += 1;
                    if self.parts > MAX_FORM_PARTS {
                        return Err(format!("more than {MAX_FORM_PARTS} parts in the form"));
                    }
                    let head =
                        std::str::from_utf8(&rest[..end]).map_err(|_| "part headers are not UTF-8".to_owned())?;
                    let (name, filename) = disposition(head)?;
                    parts.start(&name, filename.as_deref())?;
                    pos += end + 4;
                    self.state = State::Data;
                }
                State::Data => match find(rest, &self.delimiter) {
                    Some(i) => {
                        parts.data(&rest[..i])?;
                        parts.end()?;
                        pos += i + self.delimiter.len();
                        self.state = State::AfterDelimiter;
                    }
                    None => {
                        // Hold back what could be the start of a delimiter split across reads.
                        let safe = rest.len().saturating_sub(self.delimiter.len() - 1);
                        parts.data(&rest[..safe])?;
                        pos += safe;
                        break;
                    }
                },
            }
        }
        self.buf.drain(..pos);
        Ok(())
    }

    /// Call when the body ended: a form that never closed is an error.
    pub fn finish(&self) -> Result<(), String> {
        match self.state {
            State::Done => Ok(()),
            State::Preamble => Err("multipart boundary not found".into()),
            _ => Err("multipart body is truncated".into()),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let mut start = 0;
    while let Some(i) = haystack[start..=haystack.len() - needle.len()].iter().position(|&b| b == first) {
        let at = start + i;
        if &haystack[at..at + needle.len()] == needle {
            return Some(at);
        }
        start = at + 1;
    }
    None
}

/// `name` and `filename` from a part's Content-Disposition header.
fn disposition(head: &str) -> Result<(String, Option<String>), String> {
    let line = head
        .split("\r\n")
        .find(|l| l.split(':').next().is_some_and(|n| n.trim().eq_ignore_ascii_case("content-disposition")))
        .ok_or("part without Content-Disposition")?;
    let value = line.split_once(':').map(|(_, v)| v).unwrap_or("");
    let mut name = None;
    let mut filename = None;
    for param in value.split(';').skip(1) {
        let Some((k, v)) = param.split_once('=') else { continue };
        let v = v.trim();
        let v = v.strip_prefix('"').and_then(|x| x.strip_suffix('"')).unwrap_or(v).to_owned();
        match k.trim().to_ascii_lowercase().as_str() {
            "name" => name = Some(v),
            "filename" => filename = Some(v),
            _ => {}
        }
    }
    Ok((name.ok_or("part without a name")?, filename))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect {
        parts: Vec<(String, Option<String>, Vec<u8>, bool)>,
    }

    impl Parts for Collect {
        fn start(&mut self, name: &str, filename: Option<&str>) -> Result<(), String> {
            self.parts.push((name.into(), filename.map(Into::into), Vec::new(), false));
            Ok(())
        }
        fn data(&mut self, bytes: &[u8]) -> Result<(), String> {
            self.parts.last_mut().unwrap().2.extend_from_slice(bytes);
            Ok(())
        }
        fn end(&mut self) -> Result<(), String> {
            self.parts.last_mut().unwrap().3 = true;
            Ok(())
        }
    }

    const BODY: &[u8] = b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue\r\n--XyZ  \r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n\r\n--Xy\r\n--XY\x00\r\r\n--XyZ--\r\nepilogue";

    fn parse_in_pieces(body: &[u8], piece: usize) -> Result<Collect, String> {
        let mut p = Parser::new("XyZ");
        let mut c = Collect::default();
        for chunk in body.chunks(piece) {
            p.feed(chunk, &mut c)?;
        }
        p.finish()?;
        Ok(c)
    }

    #[test]
    fn refuses_broken_bodies() {
        assert!(parse_in_pieces(b"no delimiter at all", 4).is_err());
        assert!(parse_in_pieces(b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue", 3).is_err());
        assert!(parse_in_pieces(b"--XyZ\r\nContent-Disposition: form-data\r\n\r\nv\r\n--XyZ--", 50).is_err());
        assert!(parse_in_pieces(b"--XyZjunk\r\n", 50).is_err());
        let huge_head = [b"--XyZ\r\nX: ".as_slice(), &vec![b'a'; MAX_PART_HEAD + 10]].concat();
        assert!(parse_in_pieces(&huge_head, 1000).is_err());
        assert_eq!(Parser::boundary("multipart/form-data; boundary=\"ab\""), Some("ab"));
        assert_eq!(Parser::boundary("multipart/form-data"), None);
        assert_eq!(Parser::boundary("text/plain; boundary=ab"), None);
    }

    #[test]
    fn same_parts_whatever_the_read_sizes() {
        for piece in [1, 2, 3, 5, 7, 16, 1000] {
            let c = parse_in_pieces(BODY, piece).unwrap();
            assert_eq!(c.parts.len(), 2, "piece {piece}");
            assert_eq!(c.parts[0], ("a".into(), None, b"value".to_vec(), true));
            assert_eq!(c.parts[1].1.as_deref(), Some("x.bin"));
            assert_eq!(c.parts[1].2, b"\r\n--Xy\r\n--XY\x00\r", "piece {piece}");
        }
    }

    #[test]
    fn part_heads_and_counts_are_bounded_whatever_the_reads() {
        let long = format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\nX-Pad: {}\r\n\r\nv\r\n--XyZ--\r\n",
            "p".repeat(9 * 1024)
        );
        for piece in [1, 100, long.len()] {
            let err = parse_in_pieces(long.as_bytes(), piece).err().unwrap_or_default();
            assert!(err.contains("headers too large"), "piece {piece}: {err:?}");
        }
        let many: String = (0..=MAX_FORM_PARTS)
            .map(|i| format!("--XyZ\r\nContent-Disposition: form-data; name=\"p{i}\"\r\n\r\n\r\n"))
            .collect();
        let many = format!("{many}--XyZ--\r\n");
        assert!(parse_in_pieces(many.as_bytes(), many.len()).err().unwrap_or_default().contains("parts"));
    }
}
