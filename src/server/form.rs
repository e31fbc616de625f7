//! Form bodies read as they stream in: multipart/form-data (what `curl -F` sends), with file
//! parts spooled to disk where the route allows uploads, and
//! application/x-www-form-urlencoded (what `curl -d` sends).

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use super::http::percent_decode;
use super::multipart::{Parser, Parts};
use crate::limits::SMALL_FORM_BODY;

/// An uploaded file part on disk; removed when dropped unless the handler moved it away.
pub struct Spooled {
    pub path: PathBuf,
    pub len: u64,
}

impl Drop for Spooled {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

pub struct Field {
    pub name: String,
    /// In-memory content (empty for spooled parts).
    pub data: Vec<u8>,
    pub file: Option<Spooled>,
    /// For the streamed part (`Spool::stream`): how many bytes went to its consumer.
    pub streamed: Option<u64>,
}

pub struct Form {
    pub fields: Vec<Field>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum FormError {
    NotAForm,
    Malformed(String),
}

impl Form {
    pub fn get(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn take(&mut self, name: &str) -> Option<Field> {
        let i = self.fields.iter().position(|f| f.name == name)?;
        Some(self.fields.remove(i))
    }

    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|f| f.file.is_none()).and_then(|f| std::str::from_utf8(&f.data).ok())
    }

    /// The first field whose name is not in `allowed`.
    pub fn unknown_field(&self, allowed: &[&str]) -> Option<&str> {
        self.fields.iter().map(|f| f.name.as_str()).find(|n| !allowed.contains(n))
    }
}

/// Where file parts go: `None` keeps every part in memory (small-body routes).
pub struct Spool {
    pub dir: PathBuf,
    /// One file part handed to a consumer as it arrives instead of written to `dir`.
    pub stream: Option<StreamedPart>,
}

/// The file part named `field` goes, byte for byte as it arrives, to `sink` (an update's
/// worker): nothing of it is stored, and a second part of that name is refused.
pub struct StreamedPart {
    pub field: &'static str,
    pub sink: PartSink,
}

/// Takes a streamed part's bytes as they arrive.
pub type PartSink = Box<dyn FnMut(&[u8])>;

struct Builder {
    fields: Vec<Field>,
    spool: Option<Spool>,
    open: Option<File>,
    memory: usize,
}

static NEXT_SPOOL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Parts for Builder {
    fn start(&mut self, name: &str, filename: Option<&str>) -> Result<(), String> {
        // Names and records count against the same budget as the data: 200,000 parts of
        // 1,000-character names are 200 MB of names.
        self.memory += name.len() + filename.map_or(0, str::len) + crate::limits::PART_OVERHEAD;
        if self.memory > SMALL_FORM_BODY as usize {
            return Err("form fields too large".into());
        }
        let mut file = None;
        let mut streamed = None;
        if let (Some(stream), Some(_)) = (self.spool.as_ref().and_then(|s| s.stream.as_ref()), filename)
            && stream.field == name
        {
            if self.fields.iter().any(|f| f.streamed.is_some()) {
                return Err(format!("more than one {name} file in the form"));
            }
            streamed = Some(0);
        } else if let (Some(spool), Some(_)) = (&self.spool, filename) {
            if self.fields.iter().filter(|f| f.file.is_some()).count() >= crate::limits::MAX_FILE_PARTS {
                return Err(format!("more than {} files in the form", crate::limits::MAX_FILE_PARTS));
            }
            let n = NEXT_SPOOL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = spool.dir.join(format!("upload-{}-{n}.part", std::process::id()));
            let f = File::create(&path).map_err(|e| format!("cannot store the upload: {e}"))?;
            self.open = Some(f);
            file = Some(Spooled { path, len: 0 });
        }
        self.fields.push(Field { name: name.to_owned(), data: Vec::new(), file, streamed });
        Ok(())
    }

    fn data(&mut self, bytes: &[u8]) -> Result<(), String> {
        let field = self.fields.last_mut().ok_or("data outside a part")?;
        // Only the streamed part carries a byte count.
        if let (Some(stream), Some(len)) =
            (self.spool.as_mut().and_then(|s| s.stream.as_mut()), field.streamed.as_mut())
        {
            (stream.sink)(bytes);
            *len += bytes.len() as u64;
            return Ok(());
        }
        match (&mut field.file, &mut self.open) {
            (Some(spooled), Some(f)) => {
                f.write_all(bytes).map_err(|e| format!("cannot store the upload: {e}"))?;
                spooled.len += bytes.len() as u64;
            }
            _ => {
                self.memory += bytes.len();
                if self.memory > SMALL_FORM_BODY as usize {
                    return Err("form fields too large".into());
                }
                field.data.extend_from_slice(bytes);
            }
        }
        Ok(())
    }

    fn end(&mut self) -> Result<(), String> {
        // No fsync: a spooled upload lives only as long as its request, and a crash loses
        // the request anyway; whatever is built from it (slot, restored state) is synced.
        self.open = None;
        Ok(())
    }
}

/// A non-form body (an archive) written to a file in the spool dir as it arrives.
pub struct RawSpool {
    dir: PathBuf,
    file: Option<(File, Spooled)>,
    error: Option<String>,
}

impl RawSpool {
    pub fn new(dir: PathBuf) -> RawSpool {
        RawSpool { dir, file: None, error: None }
    }

    pub fn feed(&mut self, data: &[u8]) {
        if self.error.is_some() {
            return;
        }
        if self.file.is_none() {
            let n = NEXT_SPOOL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = self.dir.join(format!("body-{}-{n}.part", std::process::id()));
            match File::create(&path) {
                Ok(f) => self.file = Some((f, Spooled { path, len: 0 })),
                Err(e) => {
                    self.error = Some(format!("cannot store the upload: {e}"));
                    return;
                }
            }
        }
        if let Some((f, spooled)) = self.file.as_mut() {
            match f.write_all(data) {
                Ok(()) => spooled.len += data.len() as u64,
                Err(e) => self.error = Some(format!("cannot store the upload: {e}")),
            }
        }
    }

    /// The spooled body (`None` for an empty one).
    pub fn finish(self) -> Result<Option<Spooled>, String> {
        if let Some(e) = self.error {
            return Err(e);
        }
        match self.file {
            // Not synced, for the reason given in `Builder::end`.
            Some((_, spooled)) => Ok(Some(spooled)),
            None => Ok(None),
        }
    }
}

enum Kind {
    Multipart(Parser),
    Urlencoded(Vec<u8>),
    NotAForm,
}

/// Reads one form body incrementally.
pub struct FormReader {
    kind: Kind,
    builder: Builder,
    error: Option<String>,
}

impl FormReader {
    pub fn new(content_type: Option<&str>, spool: Option<Spool>) -> FormReader {
        let media = content_type.and_then(|c| c.split(';').next()).map(|m| m.trim().to_ascii_lowercase());
        let (kind, error) = match media.as_deref() {
            Some("multipart/form-data") => match content_type.and_then(Parser::boundary) {
                Some(b) => (Kind::Multipart(Parser::new(b)), None),
                None => (Kind::NotAForm, Some("multipart body without a boundary".to_owned())),
            },
            Some("application/x-www-form-urlencoded") => (Kind::Urlencoded(Vec::new()), None),
            _ => (Kind::NotAForm, None),
        };
        FormReader { kind, builder: Builder { fields: Vec::new(), spool, open: None, memory: 0 }, error }
    }

    /// Feeds body bytes; after the first error the rest is ignored and `finish` reports it.
    pub fn feed(&mut self, data: &[u8]) {
        if self.error.is_some() {
            return;
        }
        let result = match &mut self.kind {
            Kind::Multipart(p) => p.feed(data, &mut self.builder),
            Kind::Urlencoded(buf) => {
                buf.extend_from_slice(data);
                if buf.len() > SMALL_FORM_BODY as usize { Err("form body too large".into()) } else { Ok(()) }
            }
            Kind::NotAForm => Ok(()),
        };
        if let Err(e) = result {
            self.error = Some(e);
        }
    }

    pub fn finish(self) -> Result<Form, FormError> {
        if let Some(e) = self.error {
            return Err(FormError::Malformed(e));
        }
        let mut builder = self.builder;
        match self.kind {
            Kind::NotAForm => Err(FormError::NotAForm),
            Kind::Multipart(p) => {
                p.finish().map_err(FormError::Malformed)?;
                Ok(Form { fields: std::mem::take(&mut builder.fields) })
            }
            Kind::Urlencoded(buf) => {
                let text =
                    std::str::from_utf8(&buf).map_err(|_| FormError::Malformed("form body is not UTF-8".into()))?;
                let mut fields = Vec::new();
                for pair in text.split('&').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    let bad = || FormError::Malformed("bad percent-encoding in form".into());
                    let name = percent_decode(k).ok_or_else(bad)?.into_owned();
                    let value = percent_decode(v).ok_or_else(bad)?.into_owned();
                    fields.push(Field { name, data: value.into_bytes(), file: None, streamed: None });
                }
                Ok(Form { fields })
            }
        }
    }
}

/// Parses a whole buffered body (tests and small callers).
#[cfg(test)]
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Form, FormError> {
    let mut r = FormReader::new(content_type, None);
    r.feed(body);
    r.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "multipart/form-data; boundary=XyZ";

    #[test]
    fn refuses_malformed_forms() {
        assert_eq!(parse(None, b"").err(), Some(FormError::NotAForm));
        assert_eq!(parse(Some("text/plain"), b"").err(), Some(FormError::NotAForm));
        assert!(matches!(parse(Some("multipart/form-data"), b""), Err(FormError::Malformed(_))));
        assert!(matches!(parse(Some(CT), b"no boundary here"), Err(FormError::Malformed(_))));
        let truncated = b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue";
        assert!(matches!(parse(Some(CT), truncated), Err(FormError::Malformed(_))));
        assert!(matches!(parse(Some("application/x-www-form-urlencoded"), b"a=%zz"), Err(FormError::Malformed(_))));
        let big =
            [b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n".as_slice(), &vec![b'x'; 70_000]].concat();
        assert!(matches!(parse(Some(CT), &big), Err(FormError::Malformed(_))));
    }

    #[test]
    fn spools_file_parts_and_removes_them_when_dropped() {
        let dir = std::env::temp_dir().join(format!("steward-form-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\nt\r\n--XyZ\r\nContent-Disposition: form-data; name=\"update\"; filename=\"p.enc\"\r\n\r\n0123456789\r\n--XyZ--\r\n";
        let mut r = FormReader::new(Some(CT), Some(Spool { dir: dir.clone(), stream: None }));
        for c in body.chunks(3) {
            r.feed(c);
        }
        let mut form = r.finish().unwrap();
        assert_eq!(form.text("token"), Some("t"));
        let update = form.take("update").unwrap();
        let spooled = update.file.as_ref().unwrap();
        assert_eq!(spooled.len, 10);
        assert_eq!(std::fs::read(&spooled.path).unwrap(), b"0123456789");
        let path = spooled.path.clone();
        drop(update);
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn streams_the_named_part_and_refuses_a_second() {
        let got = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let sink = {
            let got = got.clone();
            Box::new(move |b: &[u8]| got.borrow_mut().extend_from_slice(b))
        };
        let spool = Spool { dir: "/nonexistent".into(), stream: Some(StreamedPart { field: "update", sink }) };
        let part = "--XyZ\r\nContent-Disposition: form-data; name=\"update\"; filename=\"p\"\r\n\r\n0123456789\r\n";
        let mut r = FormReader::new(Some(CT), Some(spool));
        for c in format!("{part}--XyZ--\r\n").as_bytes().chunks(4) {
            r.feed(c);
        }
        let form = r.finish().unwrap();
        assert_eq!(form.get("update").unwrap().streamed, Some(10));
        assert_eq!(&*got.borrow(), b"0123456789");
        let twice = format!("{part}{part}--XyZ--\r\n");
        let spool = Spool {
            dir: "/nonexistent".into(),
            stream: Some(StreamedPart { field: "update", sink: Box::new(|_| {}) }),
        };
        let mut r = FormReader::new(Some(CT), Some(spool));
        r.feed(twice.as_bytes());
        assert!(matches!(r.finish(), Err(FormError::Malformed(m)) if m.contains("more than one")));
    }

    #[test]
    fn parses_urlencoded() {
        let form = parse(Some("application/x-www-form-urlencoded"), b"newtoken=a%21b&x=").unwrap();
        assert_eq!(form.text("newtoken"), Some("a!b"));
        assert_eq!(form.text("x"), Some(""));
    }
}
