//! Form bodies: multipart/form-data (what `curl -F` sends) and
//! application/x-www-form-urlencoded (what `curl -d` sends), parsed from a buffered body.

use super::http::percent_decode;

pub struct Field {
    pub name: String,
    #[allow(dead_code)] // read by the upload routes
    pub filename: Option<String>,
    pub data: Vec<u8>,
}

pub struct Form {
    pub fields: Vec<Field>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum FormError {
    NotAForm,
    Malformed(&'static str),
}

impl Form {
    pub fn get(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|f| std::str::from_utf8(&f.data).ok())
    }

    /// The first field whose name is not in `allowed`.
    pub fn unknown_field(&self, allowed: &[&str]) -> Option<&str> {
        self.fields.iter().map(|f| f.name.as_str()).find(|n| !allowed.contains(n))
    }
}

pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Form, FormError> {
    let ct = content_type.ok_or(FormError::NotAForm)?;
    let mut params = ct.split(';').map(str::trim);
    let media = params.next().unwrap_or("").to_ascii_lowercase();
    match media.as_str() {
        "multipart/form-data" => {
            let boundary = params
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
                .map(|(_, v)| v.trim().trim_matches('"'))
                .filter(|b| !b.is_empty() && b.len() <= 70)
                .ok_or(FormError::Malformed("multipart body without a boundary"))?;
            parse_multipart(boundary.as_bytes(), body)
        }
        "application/x-www-form-urlencoded" => parse_urlencoded(body),
        _ => Err(FormError::NotAForm),
    }
}

fn parse_urlencoded(body: &[u8]) -> Result<Form, FormError> {
    let text = std::str::from_utf8(body).map_err(|_| FormError::Malformed("form body is not UTF-8"))?;
    let mut fields = Vec::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let name = percent_decode(k).ok_or(FormError::Malformed("bad percent-encoding in form"))?;
        let value = percent_decode(v).ok_or(FormError::Malformed("bad percent-encoding in form"))?;
        fields.push(Field { name, filename: None, data: value.into_bytes() });
    }
    Ok(Form { fields })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_multipart(boundary: &[u8], body: &[u8]) -> Result<Form, FormError> {
    let mut delimiter = b"--".to_vec();
    delimiter.extend_from_slice(boundary);
    let first = find(body, &delimiter).ok_or(FormError::Malformed("multipart boundary not found"))?;
    let mut rest = &body[first + delimiter.len()..];
    let mut fields = Vec::new();
    let mut next_delimiter = b"\r\n".to_vec();
    next_delimiter.extend_from_slice(&delimiter);
    loop {
        if rest.starts_with(b"--") {
            return Ok(Form { fields });
        }
        rest = rest.strip_prefix(b"\r\n").ok_or(FormError::Malformed("bad multipart delimiter line"))?;
        let head_end = find(rest, b"\r\n\r\n").ok_or(FormError::Malformed("multipart part without headers"))?;
        let head =
            std::str::from_utf8(&rest[..head_end]).map_err(|_| FormError::Malformed("part headers not UTF-8"))?;
        let (name, filename) = disposition(head)?;
        let content = &rest[head_end + 4..];
        let end = find(content, &next_delimiter).ok_or(FormError::Malformed("multipart body is truncated"))?;
        fields.push(Field { name, filename, data: content[..end].to_vec() });
        rest = &content[end + next_delimiter.len()..];
    }
}

/// `name` and `filename` from a part's Content-Disposition header.
fn disposition(head: &str) -> Result<(String, Option<String>), FormError> {
    let line = head
        .split("\r\n")
        .find(|l| l.split(':').next().is_some_and(|n| n.trim().eq_ignore_ascii_case("content-disposition")))
        .ok_or(FormError::Malformed("part without Content-Disposition"))?;
    let value = line.split_once(':').map(|(_, v)| v).unwrap_or("");
    let mut name = None;
    let mut filename = None;
    for param in value.split(';').skip(1) {
        let Some((k, v)) = param.split_once('=') else {
            continue;
        };
        let v = v.trim();
        let v = v.strip_prefix('"').and_then(|x| x.strip_suffix('"')).unwrap_or(v).to_owned();
        match k.trim().to_ascii_lowercase().as_str() {
            "name" => name = Some(v),
            "filename" => filename = Some(v),
            _ => {}
        }
    }
    Ok((name.ok_or(FormError::Malformed("part without a name"))?, filename))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "multipart/form-data; boundary=XyZ";

    #[test]
    fn refuses_malformed_multipart() {
        assert_eq!(parse(None, b"").err(), Some(FormError::NotAForm));
        assert_eq!(parse(Some("text/plain"), b"").err(), Some(FormError::NotAForm));
        assert!(matches!(parse(Some("multipart/form-data"), b""), Err(FormError::Malformed(_))));
        assert!(matches!(parse(Some(CT), b"no boundary here"), Err(FormError::Malformed(_))));
        let truncated = b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue";
        assert!(matches!(parse(Some(CT), truncated), Err(FormError::Malformed(_))));
        let nameless = b"--XyZ\r\nContent-Disposition: form-data\r\n\r\nv\r\n--XyZ--\r\n";
        assert!(matches!(parse(Some(CT), nameless), Err(FormError::Malformed(_))));
        assert!(matches!(parse(Some("application/x-www-form-urlencoded"), b"a=%zz"), Err(FormError::Malformed(_))));
    }

    #[test]
    fn parses_curl_style_multipart() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"newtoken\"\r\n\r\nsecret\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n\r\n--Xy\x00\r\n--XyZ--\r\n";
        let form = parse(Some("Multipart/Form-Data; boundary=\"XyZ\""), body).unwrap();
        assert_eq!(form.text("newtoken"), Some("secret"));
        let file = form.get("file").unwrap();
        assert_eq!(file.filename.as_deref(), Some("a.bin"));
        assert_eq!(file.data, b"\r\n--Xy\x00");
        assert_eq!(form.unknown_field(&["newtoken"]), Some("file"));
    }

    #[test]
    fn parses_urlencoded() {
        let form = parse(Some("application/x-www-form-urlencoded"), b"newtoken=a%21b&x=").unwrap();
        assert_eq!(form.text("newtoken"), Some("a!b"));
        assert_eq!(form.text("x"), Some(""));
    }
}
