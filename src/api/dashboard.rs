//! The admin dashboard: one page and its assets, compiled into the binary and served under
//! a strict Content-Security-Policy. The page talks only to the documented API.

use super::{Api, Call, Handled};
use crate::server::Reply;
use crate::server::http::Response;

/// Scripts and styles from this origin only, nothing inline, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

const ASSETS: [(&str, &str, &[u8]); 3] = [
    ("index.html", "text/html; charset=utf-8", include_bytes!("../../ui/index.html")),
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("../../ui/app.js")),
    ("app.css", "text/css; charset=utf-8", include_bytes!("../../ui/app.css")),
];

fn serve(name: &str) -> Option<Response> {
    let (_, kind, body) = ASSETS.iter().find(|(n, _, _)| *n == name)?;
    Some(
        Response::new(200, kind, body.to_vec())
            .header("Content-Security-Policy", CSP)
            .header("X-Content-Type-Options", "nosniff")
            .header("Referrer-Policy", "no-referrer")
            .header("Cache-Control", "no-cache"),
    )
}

/// The page, for `GET /` from a browser.
pub fn index() -> Reply {
    serve("index.html").map(Reply::from).unwrap_or_else(|| super::incus::error(404, "not found").into())
}

/// `GET /ui/{file}`.
pub fn asset(_api: &mut Api, call: &mut Call) -> Handled {
    Ok(match serve(&call.param("file")) {
        Some(r) => r.into(),
        None => super::incus::error(404, "not found").into(),
    })
}
