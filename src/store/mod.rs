//! steward's own state in the data dir: crash-safe files and the audit log.

pub mod atomic;
pub mod audit;
pub mod bootenv;
pub mod bulk;
pub mod certfiles;
pub mod oplog;
