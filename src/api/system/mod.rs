//! IncusOS `/1.0/system/*` configuration resources: `{"config": …, "state": …}` objects where
//! GET returns both with an ETag, PUT replaces `config` (ignoring `state`) after checking it
//! completely and honouring `If-Match`. Network changes can be confirmed or rolled back.
//! One file per resource; what they share (ETag, If-Match, the PUT body, stored configs) is
//! here.

use miniserde::json::{self, Number, Value};

use super::incus::{engine_error, error, sync};
use super::{Api, Call, Handled};
use crate::engine::Error;
use crate::json::Object;
use crate::server::Reply;

mod configs;
mod debug;
pub mod network;
mod security;
mod services;
mod storage;

pub use configs::*;
pub use debug::*;
pub use network::*;
pub use security::*;
pub use services::*;
pub use storage::*;

pub fn etag(config: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, config.as_bytes());
    format!("\"{}\"", crate::hex::to_hex(&d.as_ref()[..12]))
}

/// `{"config":…,"state":…}` with the config's ETag.
fn resource(config: &str, state: &str) -> Reply {
    sync(&Object::new().raw("config", config).raw("state", state).finish()).header("ETag", etag(config)).into()
}

/// 412 when the client's `If-Match` names another version of the config.
pub fn check_if_match(call: &Call, current: &str, what: &str) -> Result<(), Reply> {
    match call.head.if_match() {
        Some(want) if want.trim() != "*" && !want.split(',').any(|t| t.trim() == etag(current)) => {
            Err(error(412, &format!("the {what} changed since it was read (ETag mismatch)")).into())
        }
        _ => Ok(()),
    }
}

/// The PUT body's `config` object (a `state` next to it is ignored).
fn put_config(call: &mut Call) -> Result<json::Object, Reply> {
    let text = call.body_text().map_err(|m| Reply::from(error(400, m)))?;
    let Ok(Value::Object(mut body)) = json::from_str::<Value>(&text) else {
        return Err(error(400, "the body must be a JSON object with a config").into());
    };
    if let Some(k) = body.keys().find(|k| *k != "config" && *k != "state") {
        return Err(error(400, &format!("unknown field {k:?}")).into());
    }
    match body.remove("config") {
        Some(Value::Object(c)) => Ok(c),
        Some(Value::Null) | None => Err(error(400, "config is required").into()),
        Some(_) => Err(error(400, "config must be an object").into()),
    }
}

fn only(m: &json::Object, what: &str, known: &[&str]) -> Result<(), Reply> {
    match m.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(error(400, &format!("{what}: unknown field {k:?}")).into()),
        None => Ok(()),
    }
}

fn string_field(m: &json::Object, key: &str) -> Result<Option<String>, Reply> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(error(400, &format!("{key} must be a string")).into()),
    }
}

/// An upstream endpoint for something a steward board does not have: answered in the
/// envelope, with the reason its route documents (so `/docs/` says it too).
pub fn not_here(_api: &mut Api, call: &mut Call) -> Handled {
    Ok(error(400, call.route.doc).into())
}

/// A config resource whose settings a steward board does not have: GET shows it empty, a
/// PUT of the empty config (what a client's `edit` sends back) is taken, anything else is
/// refused with `why`.
fn empty_config(call: &mut Call, why: &str) -> Handled {
    let c = put_config(call)?;
    if let Some(k) = c.keys().next() {
        return Ok(error(400, &format!("config.{k}: {why}")).into());
    }
    Ok(sync("{}").into())
}

/// A config document kept in the data dir, or its default.
fn stored(api: &Api, name: &str, default: &str) -> String {
    api.engine.stored_config(name, default)
}

fn store(api: &Api, name: &str, config: &str) -> Result<(), Error> {
    api.engine.store_config(name, config)
}

#[cfg(test)]
mod tests {
    //! The IncusOS PUT body, bad inputs first.

    use super::*;
    use crate::api::test_call::{call_for, head, refusal};

    fn config(body: &str) -> Result<json::Object, (u16, String)> {
        let h = head("PUT", "/1.0/system/logging");
        put_config(&mut call_for(&h, body.as_bytes())).map_err(refusal)
    }

    #[test]
    fn a_put_needs_an_object_with_a_config_object() {
        for (bad, why) in [
            ("", "JSON object"),
            ("[]", "JSON object"),
            (r#"{"config":null}"#, "config is required"),
            ("{}", "config is required"),
            (r#"{"config":[]}"#, "config must be an object"),
            (r#"{"config":{},"extra":1}"#, "unknown field \\\"extra\\\""),
        ] {
            let (status, body) = config(bad).unwrap_err();
            assert_eq!(status, 400, "{bad}");
            assert!(body.contains(why), "{bad}: {body}");
        }
    }

    #[test]
    fn the_state_a_get_returned_may_come_back_and_is_ignored() {
        let c = config(r#"{"config":{"syslog":{}},"state":{"anything":1}}"#).unwrap();
        assert_eq!(c.keys().collect::<Vec<_>>(), ["syslog"]);
    }
}
