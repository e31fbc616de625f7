//! Replacing the HTTPS certificate: validated as a job, written atomically, and swapped
//! into the listener so the next handshake uses it, with no restart.

use super::Engine;
use super::jobs::{AlreadyRunning, Kind};
use crate::store::certfiles;
use crate::tls;

impl Engine {
    pub fn start_certs(
        &mut self,
        public: Vec<u8>,
        private: Vec<u8>,
        ca: Option<Vec<u8>>,
    ) -> Result<(), AlreadyRunning> {
        let data = self.data.clone();
        let slot = self.tls.clone();
        self.jobs.start(Kind::Certs, move |p| {
            p.log("Validating and adding TLS certificates");
            // The served chain is the certificate followed by the intermediates/CA.
            let mut chain = normalise(&public);
            if let Some(ca) = &ca {
                chain.extend_from_slice(&normalise(ca));
            }
            let key = normalise(&private);
            let config = match tls::from_pem(&chain, &key) {
                Ok(c) => c,
                Err(e) => return p.fail(None, &e),
            };
            p.log("The private key matches the certificate");
            // The pair is staged whole first, then swapped in; a stop in between is finished
            // at the next start (certfiles::load_or_create), so the box never holds a key and a
            // certificate that do not belong together.
            if let Err(e) = certfiles::stage_pair(&data, &key, &chain).and_then(|()| certfiles::swap_staged(&data)) {
                return p.fail(None, &format!("cannot store the certificate: {e}"));
            }
            match &slot {
                Some(slot) => {
                    *slot.lock().unwrap_or_else(|e| e.into_inner()) = config;
                    p.log("New connections now get the new certificate");
                }
                None => p.log("Serving plain HTTP: the certificate is stored for the next HTTPS start"),
            }
            p.succeed(100);
        })
    }
}

/// CRLF line ends (certificates made on Windows) are turned into LF.
fn normalise(pem: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = pem.iter().copied().filter(|&b| b != b'\r').collect();
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out
}
