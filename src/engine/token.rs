//! The Jidoteki admin token: stored as the lowercase hex of its sha256, which is all that is
//! needed to check both `?token=` (hash what was sent, compare) and `?hash=` (the HMAC key
//! *is* that hex string). First-run passphrases live here too.

use std::io;
use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::hex;
use crate::store::atomic;

pub struct Tokens {
    token_path: PathBuf,
    first_run_path: PathBuf,
    /// Lowercase hex of sha256(token); `None` before initial setup.
    key: Option<[u8; 64]>,
    first_run_pending: bool,
}

/// What `/setup` rejects, with the Jidoteki validator's wording.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    Length,
    Charset,
}

impl TokenError {
    pub fn message(&self) -> &'static str {
        match self {
            TokenError::Length => "Invalid string length for option: newtoken. Allowed: >= 1 and <= 255",
            TokenError::Charset => {
                "Missing or invalid string for option: newtoken. Allowed: printable ASCII characters (codes 33 to 126)"
            }
        }
    }
}

/// `^[\x21-\x7E]{1,255}$`
pub fn validate(token: &str) -> Result<(), TokenError> {
    if token.is_empty() || token.len() > 255 {
        return Err(TokenError::Length);
    }
    if !token.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(TokenError::Charset);
    }
    Ok(())
}

pub fn sha256_hex(data: &[u8]) -> [u8; 64] {
    hex::encode32(&Sha256::digest(data).into())
}

/// The Jidoteki HMAC: key = hex(sha256(token)) as ASCII, message = METHOD + path.
pub fn hmac_hex(key_hex: &[u8], method: &str, path: &str) -> [u8; 64] {
    hmac_parts_hex(key_hex, &[method.as_bytes(), path.as_bytes()])
}

/// Hex HMAC-SHA256 of the concatenated parts, keyed like every steward HMAC (`?hash=`, API
/// keys, signed requests): by the hex sha256 of the secret, as ASCII.
pub fn hmac_parts_hex(key_hex: &[u8], parts: &[&[u8]]) -> [u8; 64] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key_hex).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    hex::encode32(&mac.finalize().into_bytes().into())
}

/// The stored token file's form: the lowercase hex sha256 of the token, one line. Applied at
/// start and to a restored token before it replaces the live one.
pub fn check_stored_hash(bytes: &[u8]) -> Result<[u8; 64], &'static str> {
    let line = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if line.len() != 64 || !hex::is_lower_hex(line) {
        return Err("is not a token hash");
    }
    let mut key = [0u8; 64];
    key.copy_from_slice(line);
    Ok(key)
}

impl Tokens {
    /// Loads the stored token. With first-run on and no token yet, generates a passphrase,
    /// makes it the token and returns it so the caller can show it on the console.
    pub fn load(data: &Path, first_run_words: Option<u32>) -> io::Result<(Tokens, Option<String>)> {
        let mut tokens = Tokens {
            token_path: data.join("token"),
            first_run_path: data.join("first-run-passphrase"),
            key: None,
            first_run_pending: false,
        };
        match std::fs::read(&tokens.token_path) {
            Ok(bytes) => {
                let key = check_stored_hash(&bytes).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{} {e}; remove it to run setup again", tokens.token_path.display()),
                    )
                })?;
                tokens.key = Some(key);
                tokens.first_run_pending =
                    std::fs::metadata(&tokens.first_run_path).map(|m| m.len() > 0).unwrap_or(false);
                Ok((tokens, None))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let Some(words) = first_run_words else {
                    return Ok((tokens, None));
                };
                let passphrase = crate::engine::passphrase::generate(words)?;
                // The passphrase file first: a crash before the token lands just means a new
                // passphrase at the next start.
                atomic::write(&tokens.first_run_path, format!("{passphrase}\n").as_bytes(), 0o600)?;
                tokens.store(&sha256_hex(passphrase.as_bytes()))?;
                tokens.first_run_pending = true;
                Ok((tokens, Some(passphrase)))
            }
            Err(e) => Err(e),
        }
    }

    pub fn is_set(&self) -> bool {
        self.key.is_some()
    }

    pub fn first_run_pending(&self) -> bool {
        self.first_run_pending
    }

    pub fn check_token(&self, token: &[u8]) -> bool {
        match &self.key {
            Some(key) => hex::ct_eq(&sha256_hex(token), key),
            None => false,
        }
    }

    /// `given` must be the lowercase hex HMAC of `method + path`; uppercase hex is refused,
    /// as the reference implementation does.
    pub fn check_hash(&self, method: &str, path: &str, given: &[u8]) -> bool {
        match &self.key {
            Some(key) => hex::ct_eq(&hmac_hex(key, method, path), given),
            None => false,
        }
    }

    /// Checks a hex HMAC-SHA256 over `message`, keyed like `?hash=` (sha256 hex of the token).
    pub fn check_signature(&self, message: &[u8], given: &[u8]) -> bool {
        let Some(key) = &self.key else { return false };
        hex::ct_eq(&hmac_parts_hex(key, &[message]), given)
    }

    /// Validates, then replaces the token durably; ends first-run.
    pub fn set(&mut self, new_token: &str) -> Result<(), SetError> {
        validate(new_token).map_err(SetError::Invalid)?;
        self.store(&sha256_hex(new_token.as_bytes())).map_err(SetError::Io)?;
        if self.first_run_pending {
            atomic::remove(&self.first_run_path).map_err(SetError::Io)?;
            self.first_run_pending = false;
        }
        Ok(())
    }

    fn store(&mut self, key: &[u8; 64]) -> io::Result<()> {
        let mut line = key.to_vec();
        line.push(b'\n');
        atomic::write(&self.token_path, &line, 0o600)?;
        self.key = Some(*key);
        Ok(())
    }
}

#[derive(Debug)]
pub enum SetError {
    Invalid(TokenError),
    Io(io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_hmac_vector() {
        let key = sha256_hex(b"yourtoken");
        assert_eq!(&key, b"13e2ff941bbc8692cad141c8d293dda2c4f1c1a3c51b93d54f1a1693e1206107");
        let mac = hmac_hex(&key, "GET", "/api/v1/admin/version");
        assert_eq!(&mac, b"b714a60732e096ccef06e360eefe0f1ba4fa5d16ef7da726612e2026e5523241");
        let key = sha256_hex(b"testtoken");
        assert_eq!(
            &hmac_hex(&key, "GET", "/api/v1/admin/version"),
            b"39791be66bfbce4966b6c3feb7bfcb9118c285fa952b030a9af2fcf64f1a67ac"
        );
    }

    #[test]
    fn validation_follows_the_documented_range() {
        assert_eq!(validate(""), Err(TokenError::Length));
        assert_eq!(validate(&"a".repeat(256)), Err(TokenError::Length));
        assert_eq!(validate("has space"), Err(TokenError::Charset));
        assert_eq!(validate("tab\t"), Err(TokenError::Charset));
        assert_eq!(validate("é"), Err(TokenError::Charset));
        assert!(validate(&"~".repeat(255)).is_ok());
        assert!(validate("!").is_ok());
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("steward-token-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn unset_store_accepts_nothing_not_even_an_empty_key_hmac() {
        let d = temp_dir("unset");
        let (t, shown) = Tokens::load(&d, None).unwrap();
        assert!(shown.is_none() && !t.is_set());
        assert!(!t.check_token(b""));
        assert!(!t.check_hash("GET", "/api/v1/admin/version", &hmac_hex(b"", "GET", "/api/v1/admin/version")));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn set_persists_and_first_run_ends() {
        let d = temp_dir("set");
        let (mut t, shown) = Tokens::load(&d, Some(3)).unwrap();
        let pass = shown.unwrap();
        assert!(t.first_run_pending() && t.check_token(pass.as_bytes()));
        assert!(matches!(t.set("bad token"), Err(SetError::Invalid(TokenError::Charset))));
        assert!(t.first_run_pending(), "a rejected token must not end first-run");
        t.set("newtoken").unwrap();
        let (t2, shown) = Tokens::load(&d, Some(3)).unwrap();
        assert!(shown.is_none() && !t2.first_run_pending());
        assert!(t2.check_token(b"newtoken") && !t2.check_token(pass.as_bytes()));
        std::fs::write(d.join("token"), b"garbage\n").unwrap();
        assert!(Tokens::load(&d, None).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
