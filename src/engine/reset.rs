//! Factory reset: validate the whole request, erase steward's state, keep or replace the seeds,
//! apply the steward seed (a token) so the box comes back reachable, then reboot.

use miniserde::json::{self, Value};

use super::{Engine, Error};
use crate::store::atomic;

/// What steward itself erases, relative to the data dir. Seeds survive unless wiped.
/// Kept across a reset: the seeds (replaced or wiped as the request says).
const KEPT: &str = "seeds";

pub struct ResetRequest {
    wipe_existing_seeds: bool,
    seeds: Vec<(String, String)>,
    token: Option<String>,
    /// Client certificates the steward seed trusts (as admins).
    clients: Vec<super::clients::TrustedClient>,
}

/// The IncusOS body: `{"allow_tpm_reset_failure":bool,"wipe_existing_seeds":bool,"seeds":{name:{…}}}`.
/// An empty body means all defaults. Everything is checked before anything is erased.
pub fn parse(body: &[u8]) -> Result<ResetRequest, Error> {
    let invalid = |m: &str| Error::Invalid(m.to_owned());
    let text = std::str::from_utf8(body).map_err(|_| invalid("the body is not UTF-8"))?;
    let mut req = ResetRequest { wipe_existing_seeds: false, seeds: Vec::new(), token: None, clients: Vec::new() };
    if text.trim().is_empty() {
        return Ok(req);
    }
    let Ok(Value::Object(map)) = json::from_str::<Value>(text) else {
        return Err(invalid("the body is not a JSON object"));
    };
    for (key, value) in map.iter() {
        match (key.as_str(), value) {
            // steward does not own the TPM: nothing to clear, so nothing can fail.
            ("allow_tpm_reset_failure", Value::Bool(_)) => {}
            ("wipe_existing_seeds", Value::Bool(b)) => req.wipe_existing_seeds = *b,
            ("seeds", Value::Object(seeds)) => {
                for (name, seed) in seeds.iter() {
                    if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_') {
                        return Err(Error::Invalid(format!("invalid seed name {name:?}")));
                    }
                    let Value::Object(fields) = seed else {
                        return Err(Error::Invalid(format!("seed {name:?} must be a JSON object")));
                    };
                    if name == "steward" {
                        match fields.get("token") {
                            Some(Value::String(t)) => {
                                super::token::validate(t).map_err(|e| {
                                    Error::Invalid(e.message().replace("newtoken", "seeds.steward.token"))
                                })?;
                                req.token = Some(t.clone());
                            }
                            None => {}
                            Some(_) => return Err(invalid("seeds.steward.token must be a string")),
                        }
                        match fields.get("client_certificates") {
                            None | Some(Value::Null) => {}
                            Some(Value::Array(pems)) => {
                                for pem in pems.iter() {
                                    let fingerprint = match pem {
                                        Value::String(p) => super::clients::fingerprint_of_pem(p),
                                        _ => None,
                                    };
                                    let fingerprint = fingerprint.ok_or_else(|| {
                                        invalid("seeds.steward.client_certificates must be PEM certificates")
                                    })?;
                                    let name = format!("seed-{}", &fingerprint[..12]);
                                    req.clients.push(super::clients::TrustedClient {
                                        fingerprint,
                                        name: name.into(),
                                        caps: [super::keys::Cap::Admin].into(),
                                    });
                                }
                            }
                            Some(_) => return Err(invalid("seeds.steward.client_certificates must be a list")),
                        }
                    }
                    req.seeds.push((name.clone(), json::to_string(seed)));
                }
            }
            (other, _) => return Err(Error::Invalid(format!("unknown or mistyped option {other:?}"))),
        }
    }
    Ok(req)
}

impl Engine {
    pub fn factory_reset(&mut self, req: ResetRequest) -> Result<(), Error> {
        let io = |what: &str, e: std::io::Error| Error::Io(format!("factory reset, {what}: {e}"));
        // Everything steward keeps is in the data dir: all of it goes but the seeds, so
        // state added later (plans, history, pools...) cannot be forgotten here.
        let entries = std::fs::read_dir(&self.data).map_err(|e| io("data dir", e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io("data dir", e))?;
            if entry.file_name() == KEPT {
                continue;
            }
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let result = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            match result {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&name, e)),
            }
        }
        let seeds = self.data.join("seeds");
        if req.wipe_existing_seeds {
            let _ = std::fs::remove_dir_all(&seeds);
        }
        atomic::ensure_private_dir(&seeds).map_err(|e| io("seeds", e))?;
        for (name, text) in &req.seeds {
            atomic::write(&seeds.join(format!("{name}.json")), text.as_bytes(), 0o600).map_err(|e| io("seeds", e))?;
        }
        atomic::sync_dir(&self.data).map_err(|e| io("data dir", e))?;
        // Back to a fresh box, in memory too.
        for dir in ["uploads", "jobs"] {
            atomic::ensure_private_dir(&self.data.join(dir)).map_err(|e| io(dir, e))?;
        }
        self.jobs = super::jobs::Jobs::open(self.data.join("jobs")).map_err(|e| io("jobs", e))?;
        self.audit = crate::store::audit::Audit::open(&self.data.join("audit.log")).map_err(|e| io("audit log", e))?;
        let (mut tokens, passphrase) =
            super::token::Tokens::load(&self.data, self.board.first_run_words()).map_err(|e| io("token", e))?;
        if let Some(token) = &req.token {
            tokens.set(token).map_err(|e| Error::Io(format!("factory reset, seeded token: {e:?}")))?;
        } else if let Some(p) = passphrase {
            crate::log::info(format_args!("first-run passphrase after the factory reset: {p}"));
        }
        self.tokens = tokens;
        let wake = self.plans.wake();
        self.plans = super::planrun::Runner::open(&self.data, crate::time::unix_millis()).map_err(Error::Io)?;
        if let Some(wake) = wake {
            self.plans.set_wake(wake);
        }
        if !req.clients.is_empty() {
            super::clients::store(&self.data, &req.clients).map_err(|e| io("trusted clients", e))?;
        }
        self.trusted_clients = super::clients::load(&self.data);
        self.keys = super::keys::Keys::load(&self.data);
        self.net_deadline = None;
        if let Some(slot) = &self.tls {
            let cfg = crate::store::certfiles::load_or_create(&self.data).map_err(Error::Io)?;
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = cfg;
        }
        Ok(())
    }

    /// At start: a steward seed left by a factory reset sets the token of a box that has none.
    pub fn apply_token_seed(&mut self) {
        if self.tokens.is_set() {
            return;
        }
        let Ok(text) = std::fs::read_to_string(self.data.join("seeds/steward.json")) else { return };
        if let Ok(Value::Object(map)) = json::from_str::<Value>(&text) {
            if let Some(Value::String(t)) = map.get("token") {
                if let Err(e) = self.tokens.set(t) {
                    crate::log::warn(format_args!("steward seed token not applied: {e:?}"));
                }
            }
        }
    }
}
