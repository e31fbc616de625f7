//! `/1.0/services`: the board's services, their state and their stored config.

use super::*;

fn service_name(api: &Api, call: &Call) -> Result<String, Reply> {
    let name = call.segment(2);
    match api.engine.services().into_iter().find(|(n, _)| *n == name) {
        Some((n, _)) => Ok(n.to_owned()),
        None => Err(error(404, "service not found").into()),
    }
}

fn service_config(api: &Api, name: &str) -> String {
    stored(api, &format!("service-{name}"), r#"{"enabled":true}"#)
}

pub fn services(api: &mut Api, _call: &mut Call) -> Reply {
    let mut urls: Vec<String> = api.engine.services().iter().map(|(n, _)| format!("/1.0/services/{n}")).collect();
    urls.sort();
    sync(&crate::json::str_array(urls.iter().map(String::as_str))).into()
}

pub fn service(api: &mut Api, call: &mut Call) -> Reply {
    let name = match service_name(api, call) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let running = api.engine.services().into_iter().any(|(n, up)| n == name && up);
    resource(&service_config(api, &name), &Object::new().bool("running", running).finish())
}

/// Stores whether the service should be enabled; the board's init system acts on it (the
/// file is in the data dir), steward reports the running state it measures.
pub fn put_service(api: &mut Api, call: &mut Call) -> Reply {
    let name = match service_name(api, call) {
        Ok(n) => n,
        Err(r) => return r,
    };
    if let Err(r) = check_if_match(call, &service_config(api, &name), "configuration") {
        return r;
    }
    let c = match put_config(call) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(r) = only(&c, "config", &["enabled"]) {
        return r;
    }
    let enabled = match c.get("enabled") {
        Some(Value::Bool(b)) => *b,
        _ => return error(400, "enabled (true or false) is required").into(),
    };
    if name == "steward" && !enabled {
        return error(400, "steward cannot disable itself").into();
    }
    let config = Object::new().bool("enabled", enabled).finish();
    if let Err(r) = store(api, &format!("service-{name}"), &config) {
        return r;
    }
    api.engine.audit.record(call.peer, "service.update", &name);
    sync("{}").header("ETag", etag(&config)).into()
}
