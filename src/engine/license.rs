//! The vendor-signed license: line 1 is the license as a JSON object (served back byte for
//! byte, so the vendor's key order survives), line 2 the hex Ed25519 signature over line 1,
//! made with the same vendor signing key as updates (`steward sign-license`).

use ring::signature::{ED25519, Ed25519KeyPair, UnparsedPublicKey};

use super::{Engine, Error};
use crate::hex::{parse_hex, to_hex};
use crate::store::atomic;

const LICENSE_FILE: &str = "license";
const MAX_LICENSE: usize = 64 * 1024;

/// The license JSON if `text` is a license signed by `public_key`.
pub fn verify(text: &[u8], public_key: &[u8]) -> Result<String, &'static str> {
    if text.len() > MAX_LICENSE {
        return Err("license file too large");
    }
    let text = std::str::from_utf8(text).map_err(|_| "license file is not text")?;
    let mut lines = text.lines();
    let (Some(body), Some(sig)) = (lines.next(), lines.next()) else { return Err("not a license file") };
    if lines.any(|l| !l.trim().is_empty()) {
        return Err("not a license file");
    }
    let sig = parse_hex(sig, 64).map_err(|_| "license signature is malformed")?;
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(body.as_bytes(), &sig)
        .map_err(|_| "license is not signed by this system's vendor")?;
    match miniserde::json::from_str::<miniserde::json::Value>(body) {
        Ok(miniserde::json::Value::Object(_)) => Ok(body.to_owned()),
        _ => Err("license is not a JSON object"),
    }
}

/// Vendor side: the license file for `license_json` (one JSON object).
pub fn sign(license_json: &str, signing_pkcs8: &[u8]) -> Result<String, String> {
    let body: String = license_json.lines().map(str::trim).collect::<Vec<_>>().join("");
    if !matches!(miniserde::json::from_str::<miniserde::json::Value>(&body), Ok(miniserde::json::Value::Object(_))) {
        return Err("the license must be one JSON object".into());
    }
    let pair = Ed25519KeyPair::from_pkcs8(signing_pkcs8).map_err(|_| "the signing key is not an Ed25519 PKCS#8 key")?;
    Ok(format!("{body}\n{}\n", to_hex(pair.sign(body.as_bytes()).as_ref())))
}

impl Engine {
    fn vendor_key(&self) -> Result<Vec<u8>, Error> {
        parse_hex(&self.board.update.signing_public_key, 32).map_err(|e| Error::Io(format!("board signing key: {e}")))
    }

    /// Verifies and stores a license; returns its JSON.
    pub fn set_license(&mut self, text: &[u8]) -> Result<String, LicenseError> {
        let key = self.vendor_key().map_err(LicenseError::Store)?;
        let json = verify(text, &key).map_err(LicenseError::Invalid)?;
        atomic::write(&self.data.join(LICENSE_FILE), text, 0o600)
            .map_err(|e| LicenseError::Store(Error::Io(format!("storing the license: {e}"))))?;
        Ok(json)
    }

    /// The stored license's JSON, re-verified (a file edited on disk is not a license).
    pub fn license(&self) -> Result<String, Error> {
        let text = match std::fs::read(self.data.join(LICENSE_FILE)) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::NotFound("license")),
            Err(e) => return Err(Error::Io(format!("reading the license: {e}"))),
        };
        verify(&text, &self.vendor_key()?).map_err(|_| Error::NotFound("license"))
    }
}

pub enum LicenseError {
    Invalid(&'static str),
    Store(Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_licenses_verify_and_edits_do_not() {
        let keys = crate::engine::package::generate_keys().unwrap();
        let file = sign("{\"app\":\"enterprise\",\n \"users\":20}", &keys.signing_pkcs8).unwrap();
        assert_eq!(verify(file.as_bytes(), &keys.signing_public).unwrap(), "{\"app\":\"enterprise\",\"users\":20}");
        let edited = file.replace("20", "99");
        assert!(verify(edited.as_bytes(), &keys.signing_public).is_err());
        let other = crate::engine::package::generate_keys().unwrap();
        assert!(verify(file.as_bytes(), &other.signing_public).is_err());
        assert!(verify(b"garbage", &keys.signing_public).is_err());
        assert!(sign("[1]", &keys.signing_pkcs8).is_err());
    }
}
