//! The OpenAPI 3 description of every route, generated from the route table (so it cannot
//! drift from what is served): paths, methods, path parameters, bodies, the statuses each
//! surface answers with and the shape of its answers. Served at `/api/v1/admin/docs`; a copy
//! is kept in `docs/openapi.json` and a test checks the two agree.

use super::routes::{Access, ROUTES, Route, Surface};
use super::{Api, Call, Handled};
use crate::json::{Object, push_str};
use crate::server::http::{Method, Response};

/// What each surface answers; every route of the surface may give any of these (429: the
/// caller's failed authentications are throttled; 507: the data disk is full).
fn statuses(route: &Route) -> &'static [u16] {
    match route.surface {
        Surface::Jidoteki => &[200, 202, 400, 403, 404, 405, 409, 413, 417, 429, 503, 507],
        Surface::Incus => &[200, 202, 400, 403, 404, 405, 409, 412, 413, 417, 429, 503, 507],
        Surface::Backrest => &[200, 400, 401, 403, 404, 405, 413, 415, 417, 429, 499, 501, 503],
        Surface::Records => &[200, 202, 400, 401, 403, 404, 405, 409, 413, 417, 429, 503, 507],
    }
}

/// The answer's schema per surface (error bodies share it where the surface does).
fn answer_schema(route: &Route) -> &'static str {
    match route.surface {
        Surface::Incus => {
            r#"{"type":"object","required":["type","status","status_code","operation","error_code","error","metadata"],"properties":{"type":{"type":"string","enum":["sync","async","error"]},"status":{"type":"string"},"status_code":{"type":"integer"},"operation":{"type":"string"},"error_code":{"type":"integer"},"error":{"type":"string"},"metadata":{}}}"#
        }
        Surface::Backrest => r#"{"type":"object"}"#,
        Surface::Records => r#"{"type":"object"}"#,
        Surface::Jidoteki => r#"{"type":"object"}"#,
    }
}

fn content_types(route: &Route) -> &'static [&'static str] {
    // Downloads, logs and the dashboard are not JSON.
    let p = route.pattern;
    if p.ends_with("/download") || p == "/debug" || p == "/logs" || p.ends_with(":backup") {
        &["application/x-tar", "application/gzip", "application/octet-stream", "application/json"]
    } else if p.ends_with("/log") || p == "/changelog" || p == "/metrics" {
        &["text/plain", "application/json"]
    } else if p == "/" || p.starts_with("/ui/") {
        &["text/html", "text/javascript", "text/css", "application/json"]
    } else {
        &["application/json"]
    }
}

fn operation(route: &Route) -> String {
    let mut o = Object::new().str("summary", route.doc).str("x-capability", route.cap.name());
    let params: Vec<String> = route
        .pattern
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            Object::new()
                .str("name", name)
                .str("in", "path")
                .bool("required", true)
                .raw("schema", r#"{"type":"string","pattern":"^[A-Za-z0-9_.:-]+$"}"#)
                .finish()
        })
        .collect();
    if !params.is_empty() {
        o = o.raw("parameters", &format!("[{}]", params.join(",")));
    }
    if route.method == Method::Post || route.method == Method::Put {
        let media = if matches!(route.body, super::routes::Body::Json | super::routes::Body::Archive) {
            r#"{"application/json":{"schema":{"type":"object"}}}"#
        } else {
            r#"{"multipart/form-data":{"schema":{"type":"object","additionalProperties":{"type":"string"}}}}"#
        };
        o = o.raw("requestBody", &Object::new().bool("required", false).raw("content", media).finish());
    }
    let mut responses = Object::new();
    for status in statuses(route) {
        let mut content = Object::new();
        for ct in content_types(route) {
            let schema = if *ct == "application/json" { answer_schema(route) } else { r#"{"type":"string"}"# };
            content = content.raw(ct, &Object::new().raw("schema", schema).finish());
        }
        let description = crate::server::http::reason(*status);
        responses = responses.raw(
            &status.to_string(),
            &Object::new().str("description", description).raw("content", &content.finish()).finish(),
        );
    }
    o = o.raw("responses", &responses.finish());
    if route.access == Access::Public {
        o = o.raw("security", "[]");
    }
    o.finish()
}

/// The whole document.
pub fn document() -> String {
    let mut paths: Vec<(String, Vec<&Route>)> = Vec::new();
    for r in ROUTES {
        let path = format!("{}{}", r.surface.prefix(), r.pattern);
        match paths.iter_mut().find(|(p, _)| *p == path) {
            Some((_, list)) => list.push(r),
            None => paths.push((path, vec![r])),
        }
    }
    let mut out = String::from("{");
    out.push_str(r#""openapi":"3.0.3","info":{"title":"steward","version":""#);
    out.push_str(env!("CARGO_PKG_VERSION"));
    out.push_str(r#"","description":"Jidoteki Admin API, IncusOS API, Backrest RPCs and backup records, as served by steward. Generated from its route table."},"#);
    // `?token=`, `?hash=`, Basic and signed requests work too (README); one scheme here
    // keeps generated clients and checkers simple.
    out.push_str(r#""components":{"securitySchemes":{"bearer":{"type":"http","scheme":"bearer"}}},"#);
    out.push_str(r#""security":[{"bearer":[]}],"paths":{"#);
    for (i, (path, routes)) in paths.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(&mut out, path);
        out.push_str(":{");
        for (j, r) in routes.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            push_str(&mut out, &r.method.as_str().to_ascii_lowercase());
            out.push(':');
            out.push_str(&operation(r));
        }
        out.push('}');
    }
    out.push_str("}}");
    out
}

/// `/docs`: the OpenAPI document; `/docs/` (where the Jidoteki dashboard's "Admin API
/// documentation" link goes): the same routes as a page to read.
pub fn docs(_api: &mut Api, call: &mut Call) -> Handled {
    if call.head.path().ends_with('/') {
        let page = Response::new(200, "text/html; charset=utf-8", page().into_bytes())
            .header("Content-Security-Policy", PAGE_CSP)
            .header("X-Content-Type-Options", "nosniff")
            .header("Referrer-Policy", "no-referrer");
        return Ok(page.into());
    }
    Ok(Response::json(200, document()).into())
}

/// The page has no script and loads nothing; its one style sheet is inline.
const PAGE_CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

fn push_html(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

/// Every route, by surface: method, path, what it needs, what it does.
fn page() -> String {
    let surfaces = [
        (Surface::Jidoteki, "Jidoteki Admin API", "?token=, ?hash= (HMAC), or Authorization: Bearer"),
        (Surface::Incus, "IncusOS API, plans, operations and keys", "Authorization: Bearer (a token or an API key)"),
        (Surface::Backrest, "Backrest RPCs (Connect: JSON or binary protobuf over POST)", "Basic or Bearer"),
        (Surface::Records, "Backup records (Cycle's container-backups API)", "Authorization: Bearer"),
    ];
    let mut out = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>steward API</title>\
         <style>body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em}\
         table{border-collapse:collapse;width:100%;margin-bottom:2em}td,th{border-bottom:1px solid #ddd;\
         padding:.3em .5em;text-align:left;vertical-align:top}code{font-size:.95em}th{background:#f4f4f4}\
         .m{font-weight:600;width:5em}</style></head><body><h1>steward API</h1>\
         <p>Every endpoint this appliance serves, from its route table. The machine-readable \
         description is <a href=\"/docs\">/docs</a> (OpenAPI 3). Capabilities bound API keys; the \
         admin token may do everything.</p>",
    );
    for (surface, title, auth) in surfaces {
        out.push_str("<h2>");
        push_html(&mut out, title);
        out.push_str("</h2><p>Credentials: ");
        push_html(&mut out, auth);
        out.push_str("</p><table><tr><th>method</th><th>path</th><th>needs</th><th>what it does</th></tr>");
        for r in ROUTES.iter().filter(|r| r.surface == surface) {
            out.push_str("<tr><td class=\"m\">");
            out.push_str(r.method.as_str());
            out.push_str("</td><td><code>");
            push_html(&mut out, surface.prefix());
            push_html(&mut out, r.pattern);
            out.push_str("</code></td><td>");
            let needs = match r.access {
                Access::Public => "nothing",
                Access::Setup => "nothing on first run, then the token",
                _ => r.cap.name(),
            };
            push_html(&mut out, needs);
            if let Some(optional) = r.optional {
                out.push_str(" (optional endpoint: ");
                push_html(&mut out, optional);
                out.push(')');
            }
            out.push_str("</td><td>");
            push_html(&mut out, r.doc);
            out.push_str("</td></tr>");
        }
        out.push_str("</table>");
    }
    out.push_str("</body></html>");
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_committed_copy_matches_the_route_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
        let generated = super::document();
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(path, format!("{generated}\n")).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert_eq!(committed.trim_end(), generated, "docs/openapi.json is stale: UPDATE_OPENAPI=1 cargo test openapi");
        let parsed: miniserde::json::Value = miniserde::json::from_str(&generated).expect("valid JSON");
        let miniserde::json::Value::Object(doc) = parsed else { panic!("not an object") };
        assert!(doc.contains_key("paths") && doc.contains_key("openapi"));
    }
}
