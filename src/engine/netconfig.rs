//! Network changes with commit-confirm: a change made with a confirmation timeout is rolled
//! back unless confirmed in time, and at once if applying it fails. The settings are the ones
//! both surfaces show (`settings::Network`); each surface's wire module translates them.

use miniserde::json::{self, Value};

use super::settings::{NETWORK_FILE as SETTINGS_FILE, Network, parse_network};
use super::{Engine, Error};
use crate::json::Object;
use crate::store::atomic;

const PENDING_FILE: &str = "network-pending.json";
/// The longest a change may wait for its confirmation.
pub const MAX_CONFIRM_MS: i64 = 24 * 3_600_000;

#[derive(Debug, PartialEq)]
pub struct Pending {
    pub deadline_ms: i64,
    /// The settings document before the change; `None` if there was none.
    pub previous: Option<String>,
    /// No confirmation was asked for: the change stands once it applies.
    pub auto_confirm: bool,
}

/// Hears how applying a network change went (after any rollback).
pub type Responder = Box<dyn FnOnce(Result<(), String>) + Send>;
pub type Applied = (Result<(), String>, Responder);

impl Engine {
    pub fn network_pending(&self) -> Option<Pending> {
        let text = std::fs::read_to_string(self.data.join(PENDING_FILE)).ok()?;
        let Value::Object(m) = json::from_str::<Value>(&text).ok()? else { return None };
        let deadline_ms = match m.get("deadline_ms")? {
            Value::Number(json::Number::U64(n)) => *n as i64,
            _ => return None,
        };
        let previous = match m.get("previous") {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        };
        let auto_confirm = matches!(m.get("auto_confirm"), Some(Value::Bool(true)));
        Some(Pending { deadline_ms, previous, auto_confirm })
    }

    /// Applies an IncusOS network change; `respond` hears the outcome once the board's apply
    /// hook has run. The previous settings are kept (durably, before anything changes) until
    /// the change is confirmed — by `:confirm` within the timeout, or by a successful apply
    /// when no timeout was asked for — and restored otherwise, at once if applying fails.
    pub fn network_put(
        &mut self,
        network: &Network,
        timeout_ms: Option<i64>,
        now_ms: i64,
        respond: Responder,
    ) -> Result<(), Error> {
        if self.network_pending().is_some() {
            return Err(Error::Invalid("a network change is waiting for confirmation".into()));
        }
        self.check_interface(network)?;
        let previous = std::fs::read_to_string(self.data.join(SETTINGS_FILE)).ok();
        let mut doc = Object::new()
            .num("deadline_ms", now_ms + timeout_ms.unwrap_or(MAX_CONFIRM_MS))
            .bool("auto_confirm", timeout_ms.is_none());
        if self.uses_netlink() {
            // The kernel's state, not only the settings, is what a rollback puts back.
            let mut ifaces = vec![network.get("interface").unwrap_or("eth0").to_owned()];
            ifaces.extend(self.network_settings().and_then(|n| n.get("interface").map(str::to_owned)));
            let ifaces: Vec<&str> = ifaces.iter().map(String::as_str).collect();
            // The families the change manages, and those the settings it replaces managed.
            let mut families = self.network_plan(network).map(|p| p.wanted.families()).unwrap_or_default();
            for f in self
                .network_settings()
                .and_then(|n| self.network_plan(&n).ok())
                .map(|p| p.wanted.families())
                .unwrap_or_default()
            {
                if !families.contains(&f) {
                    families.push(f);
                }
            }
            let before = self
                .network_before(&ifaces, &families)
                .map_err(|e| Error::Io(format!("reading the interfaces' state from the kernel: {e}")))?;
            doc = doc.raw("before", &before.to_json());
        }
        doc = match &previous {
            Some(p) => doc.str("previous", p),
            None => doc.raw("previous", "null"),
        };
        self.net_deadline = None;
        atomic::write(&self.data.join(PENDING_FILE), doc.finish().as_bytes(), 0o600)
            .map_err(|e| Error::Io(format!("storing the pending network change: {e}")))?;
        // IncusOS's settings cover the network only: the rest of the document stays.
        let network = Network {
            fields: network.fields.clone(),
            app: network.app.clone().or_else(|| self.network_settings().and_then(|n| n.app)),
            system: network.system.clone(),
        };
        if let Err(e) = self.store_network(&network) {
            // A failed store changed nothing (store_rendered puts back what it wrote), so
            // there is nothing to roll back: only the pending mark goes.
            if let Err(r) = atomic::remove(&self.data.join(PENDING_FILE)) {
                crate::log::warn(format_args!("network: dropping the pending mark after a failed store: {r}"));
            }
            return Err(e);
        }
        let tx = self.net_applied.0.clone();
        let wake = self.plans.wake();
        self.apply_network(network.is_static(), move |result| {
            let _ = tx.send((result, respond));
            if let Some(wake) = wake {
                wake();
            }
        })
    }

    /// The stored network settings, read and checked once.
    pub fn network_settings(&self) -> Option<Network> {
        match std::fs::read(self.data.join(SETTINGS_FILE)) {
            Ok(stored) => parse_network(&stored).ok(),
            Err(_) => self.default_network(),
        }
    }

    /// `:confirm`: keeps the change.
    pub fn network_confirm(&mut self) -> Result<(), Error> {
        if self.network_pending().is_none() {
            return Err(Error::Invalid("no network change is waiting for confirmation".into()));
        }
        self.net_deadline = None;
        atomic::remove(&self.data.join(PENDING_FILE)).map_err(|e| Error::Io(format!("confirming: {e}")))
    }

    /// Puts the settings from before the pending change back (also after a failed apply).
    pub fn network_rollback(&mut self) -> Result<(), Error> {
        let Some(p) = self.network_pending() else { return Ok(()) };
        crate::log::warn(format_args!("network: rolling back the unconfirmed change"));
        if let Some(before) = self.pending_before()
            && let Err(e) = super::netapply::restore(&self.root, &before)
        {
            crate::log::warn(format_args!("network: putting the kernel's state back: {e}"));
        }
        match &p.previous {
            Some(text) => {
                let network = parse_network(text.as_bytes())?;
                self.store_network(&network)?;
            }
            None => {
                atomic::remove(&self.data.join(SETTINGS_FILE)).map_err(|e| Error::Io(e.to_string()))?;
            }
        }
        self.net_deadline = None;
        atomic::remove(&self.data.join(PENDING_FILE)).map_err(|e| Error::Io(format!("rollback: {e}")))
    }

    /// From the request loop: rolls back a change whose confirmation is overdue. Returns
    /// when to look again.
    pub fn network_tick(&mut self, now_ms: i64) -> Option<i64> {
        while let Ok((result, respond)) = self.net_applied.1.try_recv() {
            match result {
                Ok(()) => {
                    if self.network_pending().is_some_and(|p| p.auto_confirm) {
                        let _ = atomic::remove(&self.data.join(PENDING_FILE));
                        self.net_deadline = None;
                    }
                    respond(Ok(()));
                }
                Err(e) => {
                    let outcome = self.network_rollback().and_then(|()| self.reapply_stored());
                    let note = match outcome {
                        Ok(()) => "the previous settings are back".to_owned(),
                        Err(r) => format!("rolling back failed too: {}", r.message()),
                    };
                    respond(Err(format!("{e}; {note}")));
                }
            }
        }
        let renewal = self.dhcp_tick(now_ms);
        self.pending_tick(now_ms).into_iter().chain(renewal).min()
    }

    /// Rolls back a change whose confirmation is overdue; when to look again.
    fn pending_tick(&mut self, now_ms: i64) -> Option<i64> {
        // The loop asks on every turn: the deadline is read from disk only after it changed.
        let deadline = match self.net_deadline {
            Some(known) => known,
            None => {
                let read = self.network_pending().map(|p| p.deadline_ms);
                self.net_deadline = Some(read);
                read
            }
        }?;
        if deadline > now_ms {
            return Some(deadline);
        }
        if let Err(e) = self.network_rollback().and_then(|()| self.reapply_stored()) {
            crate::log::warn(format_args!("network rollback: {}", e.message()));
        }
        None
    }

    /// The state from before the pending change (netlink backend).
    fn pending_before(&self) -> Option<super::netapply::Before> {
        let text = std::fs::read_to_string(self.data.join(PENDING_FILE)).ok()?;
        let Value::Object(m) = json::from_str::<Value>(&text).ok()? else { return None };
        super::netapply::Before::from_json(m.get("before")?)
    }

    /// Runs the apply hook for whatever settings are stored now (after a rollback). The
    /// netlink backend has put the kernel's own state back already.
    fn reapply_stored(&mut self) -> Result<(), Error> {
        if self.uses_netlink() {
            return Ok(());
        }
        let is_static = self.network_settings().is_some_and(|n| n.is_static());
        self.apply_network(is_static, |r| {
            if let Err(e) = r {
                crate::log::warn(format_args!("network apply after rollback: {e}"));
            }
        })
    }
}
