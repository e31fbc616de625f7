//! `/1.0/keys`: named API keys with capabilities (admin only). The secret is in the answer
//! to the create, once; lists and reads never show it.

use miniserde::json::{self, Number, Value};

use super::incus::{error, sync};
use super::{Api, Call, Handled};
use crate::json::Object;

pub fn list(api: &mut Api, call: &mut Call) -> Handled {
    let recursion = crate::server::http::query_param(call.head.query(), "recursion").is_some_and(|r| r == "1");
    let items: Vec<String> = if recursion {
        api.engine.keys.list.iter().map(|k| k.to_json()).collect()
    } else {
        let urls: Vec<String> = api.engine.keys.list.iter().map(|k| format!("/1.0/keys/{}", k.name)).collect();
        return Ok(sync(&crate::json::str_array(urls.iter().map(String::as_str))).into());
    };
    Ok(sync(&format!("[{}]", items.join(","))).into())
}

pub fn create(api: &mut Api, call: &mut Call) -> Handled {
    let text = match call.body_text() {
        Ok(t) => t,
        Err(m) => return Ok(error(400, m).into()),
    };
    let Ok(Value::Object(m)) = json::from_str::<Value>(&text) else {
        return Ok(error(400, "the body must be a JSON object: {\"name\", \"capabilities\", \"expires\"}").into());
    };
    if let Some(k) = m.keys().find(|k| !["name", "capabilities", "expires"].contains(&k.as_str())) {
        return Ok(error(400, &format!("unknown field {k:?}")).into());
    }
    let name = match m.get("name") {
        Some(Value::String(s)) => s.clone(),
        _ => return Ok(error(400, "name is required").into()),
    };
    let caps = match crate::engine::keys::parse_caps(m.get("capabilities")) {
        Ok(c) => c,
        Err(e) => return Ok(error(400, &e).into()),
    };
    let expires = match m.get("expires") {
        None | Some(Value::Null) => 0,
        Some(Value::Number(Number::U64(n))) if *n > 0 && *n < i64::MAX as u64 => *n as i64,
        Some(_) => return Ok(error(400, "expires must be a Unix time in seconds").into()),
    };
    let now = crate::time::unix_millis() / 1000;
    Ok(match api.engine.keys.create(&name, caps, expires, now) {
        Ok(secret) => {
            api.engine.audit.record(&call.who(), "key.create", &name);
            let key = api.engine.keys.by_name(&name).map(|k| k.to_json()).unwrap_or_else(|| "{}".into());
            let body = Object::new().raw("key", &key).str("secret", &secret).finish();
            sync(&body).header("Location", format!("/1.0/keys/{name}")).into()
        }
        Err(e) if e.contains("exists") => error(409, &e).into(),
        Err(e) if e.starts_with("storing") => error(500, &e).into(),
        Err(e) => error(400, &e).into(),
    })
}

pub fn show(api: &mut Api, call: &mut Call) -> Handled {
    Ok(match api.engine.keys.by_name(&call.param("name")) {
        Some(k) => sync(&k.to_json()).into(),
        None => error(404, "key not found").into(),
    })
}

pub fn revoke(api: &mut Api, call: &mut Call) -> Handled {
    let name = call.param("name");
    Ok(match api.engine.keys.revoke(&name) {
        Ok(true) => {
            api.engine.audit.record(&call.who(), "key.revoke", &name);
            sync("{}").into()
        }
        Ok(false) => error(404, "key not found").into(),
        Err(e) => error(500, &e).into(),
    })
}
