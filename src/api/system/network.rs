//! `/1.0/system/network`: the Jidoteki network settings seen the IncusOS way, changed with
//! commit-confirm (rolled back unless confirmed in time).

use super::*;

fn iface_file(api: &Api, iface: &str, file: &str) -> Option<String> {
    if iface.is_empty() || iface.contains('/') || iface.starts_with('.') {
        return None;
    }
    let bytes = api.engine.root.read_limited(&format!("/sys/class/net/{iface}/{file}"), 4096).ok()?;
    Some(String::from_utf8_lossy(&bytes).trim().to_owned())
}

fn configured_iface(api: &Api) -> String {
    api.engine
        .network_settings()
        .and_then(|t| json::from_str::<Value>(&t).ok())
        .and_then(|v| match v {
            Value::Object(m) => match m.get("network") {
                Some(Value::Object(n)) => match n.get("interface") {
                    Some(Value::String(s)) => Some(s.clone()),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        })
        .unwrap_or_else(|| "eth0".to_owned())
}

pub fn network(api: &mut Api, _call: &mut Call) -> Handled {
    let iface = configured_iface(api);
    let hwaddr = iface_file(api, &iface, "address").unwrap_or_default();
    let config = crate::engine::netconfig::to_incus(api.engine.network_settings().as_deref(), &hwaddr);
    let num = |f: &str| iface_file(api, &iface, f).and_then(|v| v.parse::<i64>().ok());
    let operstate = iface_file(api, &iface, "operstate").unwrap_or_else(|| "unknown".into());
    let mut st = Object::new()
        .str("state", if operstate == "up" { "routable" } else { "off" })
        .str("type", "ethernet")
        .str("hwaddr", &hwaddr);
    if let Some(mtu) = num("mtu") {
        st = st.num("mtu", mtu);
    }
    if let Some(speed) = num("speed").filter(|s| *s > 0) {
        st = st.str("speed", &speed.to_string());
    }
    let stat = |f: &str| num(&format!("statistics/{f}")).unwrap_or(0);
    st = st.raw(
        "stats",
        &Object::new()
            .num("rx_bytes", stat("rx_bytes"))
            .num("rx_errors", stat("rx_errors"))
            .num("tx_bytes", stat("tx_bytes"))
            .num("tx_errors", stat("tx_errors"))
            .finish(),
    );
    let pending = api.engine.network_pending();
    let mut state = Object::new()
        .raw("interfaces", &Object::new().raw(&iface, &st.finish()).finish())
        .bool("configuration_in_process", pending.as_ref().is_some_and(|p| !p.auto_confirm));
    if let Some(p) = pending.filter(|p| !p.auto_confirm) {
        state = state.str("confirmation_deadline", &crate::time::rfc3339_ms(p.deadline_ms));
    }
    Ok(resource(&config, &state.finish()))
}

pub fn put_network(api: &mut Api, call: &mut Call) -> Handled {
    let iface = configured_iface(api);
    let hwaddr = iface_file(api, &iface, "address").unwrap_or_default();
    let current = crate::engine::netconfig::to_incus(api.engine.network_settings().as_deref(), &hwaddr);
    check_if_match(call, &current, "configuration")?;
    let config = match put_config(call) {
        Ok(c) => Value::Object(c),
        Err(r) => return Err(r.into()),
    };
    let hostname = api.engine.current_hostname();
    let (network, timeout) = crate::engine::netconfig::from_incus(&config, &hostname)?;
    let Some(waker) = api.waker.clone() else { return Ok(error(503, "unavailable").into()) };
    let (tx, rx) = std::sync::mpsc::channel();
    let respond = Box::new(move |result: Result<(), String>| {
        let response = match result {
            Ok(()) => sync("{}"),
            Err(e) => error(500, &e),
        };
        let _ = tx.send(response);
        waker.wake();
    });
    api.engine.network_put(&network, timeout, crate::time::unix_millis(), respond)?;
    api.engine.audit.record(call.peer, "network.update", if timeout.is_some() { "confirm-pending" } else { "" });
    Ok(Reply {
        response: error(500, "the network change ended without an answer"),
        not_before: None,
        pending: Some(rx),
    })
}

pub fn network_confirm(api: &mut Api, call: &mut Call) -> Handled {
    api.engine.network_confirm()?;
    api.engine.audit.record(call.peer, "network.confirm", "");
    Ok(sync("{}").into())
}
