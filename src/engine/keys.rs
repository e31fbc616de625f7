//! Named API keys with capabilities, beside the all-powerful Jidoteki admin token: a monitor
//! can read health and backup results without holding the key that can reflash the box.
//! Stored as the sha256 of the secret (the secret is shown once, at creation).

use std::sync::Arc;

use crate::store::audit::Actor;
use std::path::{Path, PathBuf};

use miniserde::json::{self, Number, Value};

use crate::json::{Object, str_array};
use crate::store::atomic;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cap {
    /// Every GET but secrets and downloads.
    Read,
    BackupsView,
    BackupsManage,
    Update,
    Network,
    StorageDestructive,
    /// Everything, keys included: what the Jidoteki token can do.
    Admin,
}

impl Cap {
    pub const ALL: [Cap; 7] = [
        Cap::Read,
        Cap::BackupsView,
        Cap::BackupsManage,
        Cap::Update,
        Cap::Network,
        Cap::StorageDestructive,
        Cap::Admin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Cap::Read => "read",
            Cap::BackupsView => "backups-view",
            Cap::BackupsManage => "backups-manage",
            Cap::Update => "update",
            Cap::Network => "network",
            Cap::StorageDestructive => "storage-destructive",
            Cap::Admin => "admin",
        }
    }

    /// Names other systems give the same capabilities, accepted where keys are made (Cycle's
    /// platform calls the backup ones `containers-backups-*`); a key stores steward's name.
    pub const ALIASES: [(&'static str, Cap); 2] =
        [("containers-backups-view", Cap::BackupsView), ("containers-backups-manage", Cap::BackupsManage)];

    pub fn parse(s: &str) -> Option<Cap> {
        Cap::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .or_else(|| Cap::ALIASES.iter().find(|(alias, _)| *alias == s).map(|(_, c)| *c))
    }
}

/// Who a request acts as. Names and capabilities are shared with the key or certificate
/// they come from, so authenticating a request copies no string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// The Jidoteki token (or its HMAC): everything.
    Admin,
    Key {
        name: Arc<str>,
        caps: Arc<[Cap]>,
    },
    Cert {
        name: Arc<str>,
        caps: Arc<[Cap]>,
    },
}

impl Principal {
    /// A request that carried no credentials (a public route, first-run `/setup`): it may
    /// do nothing that needs a capability.
    pub fn nobody() -> Principal {
        Principal::Key { name: Arc::from(""), caps: Arc::from([]) }
    }

    pub fn allows(&self, need: Cap) -> bool {
        match self {
            Principal::Admin => true,
            Principal::Key { caps, .. } | Principal::Cert { caps, .. } => {
                caps.contains(&Cap::Admin) || caps.contains(&need)
            }
        }
    }

    /// How the audit log names it.
    pub fn actor(&self) -> Actor {
        match self {
            Principal::Admin => Actor::Token,
            Principal::Key { name, .. } => Actor::Key(name.clone()),
            Principal::Cert { name, .. } => Actor::Cert(name.clone()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub name: Arc<str>,
    /// Lowercase hex sha256 of the secret: also the HMAC key of `?hash=` for this key, as the
    /// Jidoteki scheme keys its HMAC with sha256(token).
    pub hash: String,
    pub caps: Arc<[Cap]>,
    pub created: i64,
    /// Unix seconds; 0 for none.
    pub expires: i64,
}

impl Key {
    pub fn principal(&self) -> Principal {
        Principal::Key { name: self.name.clone(), caps: self.caps.clone() }
    }

    /// Whether `given` is this key's hex HMAC of the parts (constant time).
    pub fn signs(&self, parts: &[&[u8]], given: &[u8]) -> bool {
        crate::hex::ct_eq(&super::token::hmac_parts_hex(self.hash.as_bytes(), parts), given)
    }

    pub fn expired(&self, now: i64) -> bool {
        self.expires != 0 && now >= self.expires
    }

    /// The key as listed: never the secret or its hash.
    pub fn to_json(&self) -> String {
        let mut o = Object::new()
            .str("name", &self.name)
            .raw("capabilities", &str_array(self.caps.iter().map(|c| c.name())))
            .num("created", self.created);
        o = if self.expires != 0 { o.num("expires", self.expires) } else { o.raw("expires", "null") };
        o.finish()
    }
}

pub struct Keys {
    path: PathBuf,
    pub list: Vec<Key>,
}

pub fn parse_caps(v: Option<&Value>) -> Result<Vec<Cap>, String> {
    let Some(Value::Array(items)) = v else { return Err("capabilities must be a list".into()) };
    let mut caps = Vec::new();
    for i in items.iter() {
        match i {
            Value::String(s) => caps.push(Cap::parse(s).ok_or_else(|| {
                format!(
                    "unknown capability {s:?} (known: {})",
                    Cap::ALL.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
                )
            })?),
            _ => return Err("capabilities must be strings".into()),
        }
    }
    caps.sort();
    caps.dedup();
    if caps.is_empty() {
        return Err("a key needs at least one capability".into());
    }
    Ok(caps)
}

impl Keys {
    pub fn load(data: &Path) -> Keys {
        let path = data.join("keys.json");
        let mut list = Vec::new();
        if let Ok(Value::Array(items)) =
            std::fs::read_to_string(&path).map(|t| json::from_str::<Value>(&t)).unwrap_or(Ok(Value::Null))
        {
            for item in items.iter() {
                let Value::Object(m) = item else { continue };
                let text = |k: &str| match m.get(k) {
                    Some(Value::String(s)) => Some(s.clone()),
                    _ => None,
                };
                let int = |k: &str| match m.get(k) {
                    Some(Value::Number(Number::U64(n))) => *n as i64,
                    _ => 0,
                };
                if let (Some(name), Some(hash), Ok(caps)) =
                    (text("name"), text("hash"), parse_caps(m.get("capabilities")))
                {
                    list.push(Key {
                        name: name.into(),
                        hash,
                        caps: caps.into(),
                        created: int("created"),
                        expires: int("expires"),
                    });
                }
            }
        }
        Keys { path, list }
    }

    fn store(&self) -> std::io::Result<()> {
        let items: Vec<String> = self
            .list
            .iter()
            .map(|k| {
                Object::new()
                    .str("name", &k.name)
                    .str("hash", &k.hash)
                    .raw("capabilities", &str_array(k.caps.iter().map(|c| c.name())))
                    .num("created", k.created)
                    .num("expires", k.expires)
                    .finish()
            })
            .collect();
        atomic::write(&self.path, format!("[{}]", items.join(",")).as_bytes(), 0o600)
    }

    /// Creates a key; returns its secret, which is not kept.
    pub fn create(&mut self, name: &str, caps: Vec<Cap>, expires: i64, now: i64) -> Result<String, String> {
        if !crate::board::valid_id(name) {
            return Err("name must be 1-64 letters, digits, '-' or '_'".into());
        }
        if self.list.iter().any(|k| &*k.name == name) {
            return Err(format!("a key named {name:?} exists"));
        }
        if expires != 0 && expires <= now {
            return Err("expires must be in the future".into());
        }
        let mut raw = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw).map_err(|_| "no randomness")?;
        let secret = format!("stw_{}", crate::hex::to_hex(&raw));
        self.list.push(Key {
            name: name.into(),
            hash: String::from_utf8_lossy(&super::token::sha256_hex(secret.as_bytes())).into_owned(),
            caps: caps.into(),
            created: now,
            expires,
        });
        if let Err(e) = self.store() {
            self.list.pop();
            return Err(format!("storing the key: {e}"));
        }
        Ok(secret)
    }

    pub fn revoke(&mut self, name: &str) -> Result<bool, String> {
        let before = self.list.len();
        self.list.retain(|k| &*k.name != name);
        if self.list.len() == before {
            return Ok(false);
        }
        self.store().map_err(|e| format!("storing the keys: {e}"))?;
        Ok(true)
    }

    /// The live key whose secret this is (every key is compared, in constant time each).
    pub fn by_secret(&self, secret: &str, now: i64) -> Option<&Key> {
        let hash = super::token::sha256_hex(secret.as_bytes());
        let mut found = None;
        for k in &self.list {
            if crate::hex::ct_eq(&hash, k.hash.as_bytes()) {
                found = Some(k);
            }
        }
        found.filter(|k| !k.expired(now))
    }

    /// The live key whose Jidoteki-style `?hash=` (HMAC of method + path) this is.
    pub fn by_hmac(&self, parts: &[&[u8]], given: &[u8], now: i64) -> Option<&Key> {
        let mut found = None;
        for k in &self.list {
            if k.signs(parts, given) {
                found = Some(k);
            }
        }
        found.filter(|k| !k.expired(now))
    }

    pub fn by_name(&self, name: &str) -> Option<&Key> {
        self.list.iter().find(|k| &*k.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_created_found_expired_and_revoked() {
        let dir = std::env::temp_dir().join(format!("steward-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut keys = Keys::load(&dir);
        let secret = keys.create("monitor", vec![Cap::Read], 0, 100).unwrap();
        let short = keys.create("temp", vec![Cap::Update], 200, 100).unwrap();
        assert!(keys.create("monitor", vec![Cap::Read], 0, 100).is_err());
        assert!(keys.create("bad name", vec![Cap::Read], 0, 100).is_err());
        assert!(keys.create("past", vec![Cap::Read], 50, 100).is_err());
        let keys = Keys::load(&dir);
        assert_eq!(keys.by_secret(&secret, 150).map(|k| &*k.name), Some("monitor"));
        assert!(keys.by_secret(&short, 150).is_some());
        assert!(keys.by_secret(&short, 200).is_none(), "expired");
        assert!(keys.by_secret("stw_nope", 150).is_none());
        assert!(!std::fs::read_to_string(dir.join("keys.json")).unwrap().contains(&secret));
        let mut keys = keys;
        assert!(keys.revoke("monitor").unwrap());
        assert!(!keys.revoke("monitor").unwrap());
        assert!(Keys::load(&dir).by_secret(&secret, 150).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
