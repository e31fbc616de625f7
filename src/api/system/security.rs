//! `/1.0/system/resources` and `/1.0/system/security`: hardware figures, Secure Boot and TPM
//! state, recovery keys and trusted client certificates.

use super::*;

pub fn resources(api: &mut Api, _call: &mut Call) -> Handled {
    Ok(sync(&crate::system::hardware::resources(&api.engine.root, api.engine.board.storage.disks.as_deref())).into())
}

const SECURITY_DEFAULT: &str = r#"{"encryption_recovery_keys":[],"custom_ca_certs":[],"retrieved":false}"#;

fn security_doc(api: &Api) -> json::Object {
    match json::from_str::<Value>(&stored(api, "security", SECURITY_DEFAULT)) {
        Ok(Value::Object(m)) => m,
        _ => json::Object::new(),
    }
}

fn list_of(m: &json::Object, key: &str) -> Vec<String> {
    crate::json::strings_in(m.get(key))
}

/// The config as stored (with the keys) and as shown (keys redacted unless `secrets`).
fn security_config(doc: &json::Object, secrets: bool, clients: &[crate::engine::clients::TrustedClient]) -> String {
    let keys = list_of(doc, "encryption_recovery_keys");
    let shown: Vec<&str> = keys.iter().map(|k| if secrets { k.as_str() } else { "[redacted]" }).collect();
    Object::new()
        .raw("encryption_recovery_keys", &crate::json::str_array(shown))
        .raw("custom_ca_certs", &crate::json::str_array(list_of(doc, "custom_ca_certs").iter().map(String::as_str)))
        .raw(
            "client_certificates",
            &format!(
                "[{}]",
                clients
                    .iter()
                    .map(|c| Object::new()
                        .str("name", &c.name)
                        .str("fingerprint", &c.fingerprint)
                        .raw("capabilities", &crate::json::str_array(c.caps.iter().map(|c| c.name())))
                        .finish())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        )
        .finish()
}

/// Secure Boot, TPM and PCRs as the machine reports them; a board without UEFI or TPM
/// says so (`secure_boot_available`, `tpm_status: "absent"`) rather than failing.
pub fn security(api: &mut Api, call: &mut Call) -> Handled {
    let secrets =
        crate::server::http::query_param(call.head.query(), "secrets").is_some_and(|v| v == "1" || v == "true");
    // Reading the keys themselves is an admin's business, not a monitor's.
    if secrets && !matches!(&call.auth, crate::api::AuthState::Granted(p) if p.allows(crate::engine::keys::Cap::Admin))
    {
        return Ok(error(403, "not authorized").into());
    }
    let doc = security_doc(api);
    if secrets {
        api.engine.audit.record(&call.who(), "security.secrets.read", "");
    }
    let hw = api.engine.security();
    let mut state = Object::new().bool("secure_boot_available", hw.uefi);
    state = match hw.secure_boot {
        Some(on) => state.bool("secure_boot_enabled", on),
        None => state.bool("secure_boot_enabled", false),
    };
    if let Some(setup) = hw.setup_mode {
        state = state.bool("secure_boot_setup_mode", setup);
    }
    match &hw.tpm {
        Some(tpm) => {
            let mut pcrs = Object::new();
            for (n, value) in &tpm.pcrs {
                pcrs = pcrs.str(&n.to_string(), value);
            }
            state = state.str("tpm_status", tpm.status()).str("tpm_version", &tpm.version);
            if let Some(id) = &tpm.identity {
                state = state
                    .str("tpm_manufacturer", &id.manufacturer)
                    .str("tpm_vendor", &id.vendor)
                    .str("tpm_firmware_version", &id.firmware)
                    .raw("tpm_pcr_banks", &crate::json::str_array(id.banks.iter().copied()));
            }
            state = state.raw("tpm_pcrs_sha256", &pcrs.finish());
        }
        None => state = state.str("tpm_status", "absent"),
    }
    let trusted = hw.secure_boot == Some(true) && hw.tpm.as_ref().is_some_and(|t| t.status() == "ok");
    // steward encrypts no drives or pools and reads no Secure Boot key databases, so these
    // are empty; upstream always sends them, and a strict client expects them.
    state = state
        .raw("encrypted_volumes", "[]")
        .raw("drive_recovery_keys", "{}")
        .raw("pool_recovery_keys", "{}")
        .raw("secure_boot_certificates", "[]")
        .bool("encryption_recovery_keys_retrieved", matches!(doc.get("retrieved"), Some(Value::Bool(true))))
        .bool("system_state_is_trusted", trusted)
        .str(
            "system_state_status",
            if trusted { "Secure Boot is on and a TPM is present" } else { "Secure Boot is off or no TPM is present" },
        );
    let stored_config = security_config(&doc, true, &api.engine.trusted_clients);
    Ok(sync(
        &Object::new()
            .raw("config", &security_config(&doc, secrets, &api.engine.trusted_clients))
            .raw("state", &state.finish())
            .finish(),
    )
    .header("ETag", etag(&stored_config))
    .into())
}

/// A recovery passphrase as IncusOS asks for it: at least 15 characters, a symbol, and five
/// different characters.
fn key_problem(key: &str) -> Option<&'static str> {
    let mut unique: Vec<char> = key.chars().collect();
    unique.sort_unstable();
    unique.dedup();
    if key.chars().count() < 15 {
        Some("a recovery key needs at least 15 characters")
    } else if !key.chars().any(|c| !c.is_alphanumeric() && !c.is_whitespace()) {
        Some("a recovery key needs at least one symbol")
    } else if unique.len() < 5 {
        Some("a recovery key needs at least 5 different characters")
    } else {
        None
    }
}

pub fn put_security(api: &mut Api, call: &mut Call) -> Handled {
    let doc = security_doc(api);
    check_if_match(call, &security_config(&doc, true, &api.engine.trusted_clients), "configuration")?;
    let mut new_clients: Option<Vec<crate::engine::clients::TrustedClient>> = None;
    let checked = (|| -> Result<String, Reply> {
        let c = put_config(call)?;
        only(
            &c,
            "config",
            &["encryption_recovery_keys", "custom_ca_certs", "client_fingerprints", "client_certificates"],
        )?;
        let strings = |key: &str| -> Result<Vec<String>, Reply> {
            match c.get(key) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s.clone()),
                        _ => Err(Reply::from(error(400, &format!("{key} must be a list of strings")))),
                    })
                    .collect(),
                Some(_) => Err(error(400, &format!("{key} must be a list of strings")).into()),
            }
        };
        let old = list_of(&doc, "encryption_recovery_keys");
        // Absent: unchanged; given: the whole list, which cannot be empty.
        let keys =
            if c.contains_key("encryption_recovery_keys") { strings("encryption_recovery_keys")? } else { old.clone() };
        if keys.is_empty() && c.contains_key("encryption_recovery_keys") {
            return Err(error(400, "no encryption key provided").into());
        }
        // A GET without ?secrets shows a placeholder for each stored key: one sent back keeps
        // the key it stands for (in order), so `edit` can add a key to the redacted list.
        let mut stored = old.iter();
        let keys: Vec<String> = keys
            .into_iter()
            .map(|k| match k.as_str() {
                "[redacted]" => stored
                    .next()
                    .cloned()
                    .ok_or_else(|| Reply::from(error(400, "a [redacted] key stands for no stored key"))),
                _ => Ok(k),
            })
            .collect::<Result<_, _>>()?;
        for k in &keys {
            if let Some(problem) = key_problem(k) {
                return Err(error(400, problem).into());
            }
        }
        let certs = strings("custom_ca_certs")?;
        for cert in &certs {
            if !cert.trim_start().starts_with("-----BEGIN CERTIFICATE-----") {
                return Err(error(400, "custom_ca_certs must be PEM certificates").into());
            }
        }
        // Trusted TLS clients: left as they are unless either list is given. Entries are a
        // PEM certificate or a fingerprint (an admin), or an object naming one of them with a
        // name and capabilities.
        if c.contains_key("client_fingerprints") || c.contains_key("client_certificates") {
            use crate::engine::clients::{TrustedClient, fingerprint_of_pem, valid};
            use crate::engine::keys::Cap;
            let mut clients: Vec<TrustedClient> = Vec::new();
            let bad = |m: &str| Reply::from(error(400, m));
            let entries = [c.get("client_fingerprints"), c.get("client_certificates")];
            for list in entries.into_iter().flatten() {
                let Value::Array(items) = list else { return Err(bad("client lists must be lists")) };
                for item in items.iter() {
                    let (text, name, caps) = match item {
                        Value::String(t) => (t.clone(), None, vec![Cap::Admin]),
                        Value::Object(o) => {
                            only(o, "client certificate", &["name", "certificate", "fingerprint", "capabilities"])?;
                            let text = string_field(o, "certificate")?
                                .or(string_field(o, "fingerprint")?)
                                .ok_or_else(|| bad("a client needs a certificate or a fingerprint"))?;
                            let caps = match o.get("capabilities") {
                                None => vec![Cap::Admin],
                                v => crate::engine::keys::parse_caps(v).map_err(|m| bad(&m))?,
                            };
                            let name = string_field(o, "name")?;
                            if name.as_ref().is_some_and(|n| !crate::board::valid_id(n)) {
                                return Err(bad("a client name is 1-64 letters, digits, '-' or '_'"));
                            }
                            (text, name, caps)
                        }
                        _ => return Err(bad("client entries are strings or objects")),
                    };
                    let fingerprint = if text.trim_start().starts_with("-----BEGIN") {
                        fingerprint_of_pem(&text).ok_or_else(|| bad("client_certificates must be PEM certificates"))?
                    } else {
                        let f = text.trim().to_ascii_lowercase();
                        if !valid(&f) {
                            return Err(bad(&format!("{f:?} is not a sha256 fingerprint (64 hex digits)")));
                        }
                        f
                    };
                    let name = name.unwrap_or_else(|| fingerprint[..12].to_owned());
                    clients.retain(|c| c.fingerprint != fingerprint);
                    clients.push(TrustedClient { fingerprint, name: name.into(), caps: caps.into() });
                }
            }
            new_clients = Some(clients);
        }
        let retrieved = matches!(doc.get("retrieved"), Some(Value::Bool(true)));
        Ok(Object::new()
            .raw("encryption_recovery_keys", &crate::json::str_array(keys.iter().map(String::as_str)))
            .raw("custom_ca_certs", &crate::json::str_array(certs.iter().map(String::as_str)))
            .bool("retrieved", retrieved)
            .finish())
    })();
    let stored_doc = checked?;
    let client_count = new_clients.as_ref().map(Vec::len);
    api.engine.store_security(&stored_doc, new_clients)?;
    if let Some(n) = client_count {
        api.engine.audit.record(&call.who(), "security.clients", &n.to_string());
    }
    api.engine.audit.record(&call.who(), "security.update", "");
    let doc = security_doc(api);
    Ok(sync("{}").header("ETag", etag(&security_config(&doc, true, &api.engine.trusted_clients))).into())
}

pub fn security_retrieved(api: &mut Api, call: &mut Call) -> Handled {
    let mut doc = security_doc(api);
    doc.insert("retrieved".into(), Value::Bool(true));
    store(api, "security", &json::to_string(&Value::Object(doc)))?;
    api.engine.audit.record(&call.who(), "security.retrieved", "");
    Ok(sync("{}").into())
}

/// Nothing on this board is sealed to the TPM (no encrypted volumes), so there is no
/// binding to renew; the answer says which of the two reasons applies.
pub fn tpm_rebind(api: &mut Api, _call: &mut Call) -> Handled {
    Ok(match api.engine.security().tpm {
        None => error(400, "this board has no TPM").into(),
        Some(_) => error(400, "no encrypted volume is bound to the TPM on this board; nothing to rebind").into(),
    })
}
