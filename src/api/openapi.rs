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
        Surface::Backrest => &[200, 400, 401, 403, 404, 405, 413, 417, 429, 499, 503],
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

pub fn docs(_api: &mut Api, _call: &mut Call) -> Handled {
    Ok(Response::json(200, document()).into())
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
