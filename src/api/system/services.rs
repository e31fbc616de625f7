//! `/1.0/services`: the board's services, their state and their stored config.

use super::*;

fn service_name(api: &Api, call: &Call) -> Result<String, Reply> {
    let name = call.param("name");
    match api.engine.services().into_iter().find(|(n, _)| *n == name) {
        Some((n, _)) => Ok(n.to_owned()),
        None => Err(error(404, "service not found").into()),
    }
}

fn service_config(api: &Api, name: &str) -> String {
    stored(api, &format!("service-{name}"), r#"{"enabled":true}"#)
}

pub fn services(api: &mut Api, _call: &mut Call) -> Handled {
    let mut urls: Vec<String> = api.engine.services().iter().map(|(n, _)| format!("/1.0/services/{n}")).collect();
    urls.sort();
    Ok(sync(&crate::json::str_array(urls.iter().map(String::as_str))).into())
}

pub fn service(api: &mut Api, call: &mut Call) -> Handled {
    let name = service_name(api, call)?;
    let running = api.engine.services().into_iter().any(|(n, up)| n == name && up);
    Ok(resource(&service_config(api, &name), &Object::new().bool("running", running).finish()))
}

/// `:reset`: the service's stored config is dropped, so the board's default (enabled) is in
/// force again.
pub fn reset_service(api: &mut Api, call: &mut Call) -> Handled {
    let name = service_name(api, call)?;
    api.engine.forget_config(&format!("service-{name}"))?;
    api.engine.audit.record(&call.who(), "service.reset", &name);
    Ok(sync("{}").into())
}

/// Stores whether the service should be enabled; the board's init system acts on it (the
/// file is in the data dir), steward reports the running state it measures.
pub fn put_service(api: &mut Api, call: &mut Call) -> Handled {
    let name = service_name(api, call)?;
    check_if_match(call, &service_config(api, &name), "configuration")?;
    let c = put_config(call)?;
    only(&c, "config", &["enabled"])?;
    let enabled = match c.get("enabled") {
        Some(Value::Bool(b)) => *b,
        _ => return Ok(error(400, "enabled (true or false) is required").into()),
    };
    if name == "steward" && !enabled {
        return Ok(error(400, "steward cannot disable itself").into());
    }
    let config = Object::new().bool("enabled", enabled).finish();
    store(api, &format!("service-{name}"), &config)?;
    api.engine.audit.record(&call.who(), "service.update", &name);
    Ok(sync("{}").header("ETag", etag(&config)).into())
}
