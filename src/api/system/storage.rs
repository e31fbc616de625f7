//! `/1.0/system/storage`: drives and pools, and the destructive actions on them.

use super::*;

fn drive_json(api: &Api, d: &crate::system::hardware::Drive) -> String {
    let partitions: Vec<String> = d
        .partitions
        .iter()
        .map(|p| {
            Object::new()
                .str("name", &p.name)
                .num("number", p.number)
                .num("size_in_bytes", p.size)
                .num("start_sector", p.start)
                .finish()
        })
        .collect();
    let mut o = Object::new()
        .str("id", &d.id)
        .str("model_family", "")
        .str("model_name", &d.model)
        .str("serial_number", &d.serial)
        .str("bus", &d.bus)
        .num("capacity_in_bytes", d.size)
        .bool("boot", false)
        .bool("multipath", false)
        .bool("removable", d.removable)
        .bool("remote", false)
        .bool("rotational", d.rotational)
        .bool("mounted", crate::system::hardware::is_mounted(&api.engine.root, d))
        .raw("partitions", &format!("[{}]", partitions.join(",")));
    if let Some(pool) = api.engine.member_pool(d) {
        o = o.str("member_pool", &pool);
    }
    o.finish()
}

pub fn storage(api: &mut Api, _call: &mut Call) -> Handled {
    let drives = api.engine.drives();
    let drives: Vec<String> = drives.iter().map(|d| drive_json(api, d)).collect();
    let pools: Vec<String> = api
        .engine
        .pools()
        .iter()
        .map(|p| {
            Object::new()
                .str("name", &p.name)
                .str("type", &p.kind)
                .raw("devices", &crate::json::str_array(p.devices.iter().map(String::as_str)))
                .bool("managed", true)
                .str("state", "ONLINE")
                .str("encryption_key_status", if p.encryption_key.is_some() { "available" } else { "NONE" })
                .finish()
        })
        .collect();
    let root = crate::system::health::disk(api.engine.root.dir()).ok();
    let avail = rustix::fs::statvfs(api.engine.root.dir()).map(|s| s.f_bavail * s.f_frsize).unwrap_or(0);
    let config = Object::new().str("scrub_schedule", &api.engine.scrub_schedule()).finish();
    let state = Object::new()
        .raw("drives", &format!("[{}]", drives.join(",")))
        .raw("pools", &format!("[{}]", pools.join(",")))
        .raw(
            "root_partition",
            &Object::new().num("size_in_bytes", root.map_or(0, |r| r.total)).num("available_in_bytes", avail).finish(),
        )
        .finish();
    Ok(resource(&config, &state))
}

pub fn put_storage(api: &mut Api, call: &mut Call) -> Handled {
    let current = Object::new().str("scrub_schedule", &api.engine.scrub_schedule()).finish();
    check_if_match(call, &current, "configuration")?;
    let c = put_config(call)?;
    api.engine.storage_put(&c)?;
    api.engine.audit.record(&call.who(), "storage.update", "");
    Ok(sync("{}").into())
}

/// A small JSON action body as an object.
fn action_body(call: &mut Call) -> Result<json::Object, Reply> {
    let text = call.body_text().map_err(|m| Reply::from(error(400, m)))?;
    match json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(error(400, "the body must be a JSON object").into()),
    }
}

pub fn delete_pool(api: &mut Api, call: &mut Call) -> Handled {
    let name = match action_body(call).and_then(|m| string_field(&m, "name")) {
        Ok(Some(n)) => n,
        Ok(None) => return Ok(error(400, "name is required").into()),
        Err(r) => return Err(r.into()),
    };
    let result = api.engine.delete_pool(&name);
    Ok(audited(api, call, result, "storage.pool.delete", &name))
}

/// A pool action's answer: audited and an empty sync answer when it went through.
fn audited(api: &mut Api, call: &Call, result: Result<(), Error>, action: &str, pool: &str) -> Reply {
    match result {
        Ok(()) => {
            api.engine.audit.record(&call.who(), action, pool);
            sync("{}").into()
        }
        Err(e) => engine_error(e),
    }
}

/// `:scrub-pool {"name"}`: the board's pool hook starts the scrub.
pub fn scrub_pool(api: &mut Api, call: &mut Call) -> Handled {
    let m = action_body(call)?;
    only(&m, "scrub", &["name"])?;
    let Some(name) = string_field(&m, "name")? else { return Ok(error(400, "name is required").into()) };
    let result = api.engine.scrub_pool(&name);
    Ok(audited(api, call, result, "storage.pool.scrub", &name))
}

pub fn import_key(api: &mut Api, call: &mut Call) -> Handled {
    let m = action_body(call)?;
    // Upstream's SystemStoragePoolKey also names the pool's type; zfs is the only one.
    if let Ok(Some(kind)) = string_field(&m, "type")
        && kind != "zfs"
    {
        return Ok(error(400, &format!("unsupported pool type {kind:?} (supported: zfs)")).into());
    }
    let (name, key) = match (string_field(&m, "name"), string_field(&m, "encryption_key")) {
        (Ok(Some(n)), Ok(Some(k))) => (n, k),
        (Err(r), _) | (_, Err(r)) => return Ok(r),
        _ => return Ok(error(400, "name and encryption_key are required").into()),
    };
    let result = api.engine.import_pool_key(&name, &key);
    Ok(audited(api, call, result, "storage.pool.key", &name))
}

/// `:wipe-drive {"id", "secure_wipe"}`: checked now, done as an operation in the history,
/// and answered as upstream does, an empty sync answer once the drive is wiped (the
/// connection waits; the loop serves everyone else meanwhile).
pub fn wipe_drive(api: &mut Api, call: &mut Call) -> Handled {
    let m = action_body(call)?;
    only(&m, "wipe", &["id", "secure_wipe"])?;
    let id = match string_field(&m, "id") {
        Ok(Some(id)) => id,
        Ok(None) => return Ok(error(400, "id (the drive) is required").into()),
        Err(r) => return Err(r.into()),
    };
    let secure = match m.get("secure_wipe") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Ok(error(400, "secure_wipe must be true or false").into()),
    };
    let Some(waker) = api.waker.clone() else { return Ok(error(503, "the wipe cannot be waited for here").into()) };
    let op = api.engine.wipe_job(&id, secure)?;
    api.engine.audit.record(&call.who(), "storage.wipe", &id);
    let (tx, rx) = std::sync::mpsc::channel();
    api.engine.op_wait(
        op,
        Box::new(move |op| {
            use crate::store::oplog::Status;
            let response = match op {
                Some(op) if op.status == Status::Success => sync("{}"),
                Some(op) if op.status == Status::UserCancelled => error(400, "the wipe was cancelled"),
                Some(op) if op.message.starts_with(crate::engine::storage::REFUSED) => error(400, &op.message),
                Some(op) => error(500, &format!("wiping the drive failed: {}", op.message)),
                None => error(500, "the wipe's operation is gone"),
            };
            let _ = tx.send(response);
            waker.wake();
        }),
    );
    Ok(Reply { response: error(500, "the wipe ended without an answer"), not_before: None, pending: Some(rx) })
}
