//! The route table: data that drives dispatch, `/endpoints`, and the auth-coverage test.

use super::{Api, Call, backrest, dashboard, incus, jidoteki, keys, metrics, openapi, plans, records, system};
use crate::engine::keys::Cap;
use crate::limits::{MAX_UPDATE_BODY, SMALL_FORM_BODY};
use crate::server::http::Method;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    Jidoteki,
    /// IncusOS: `/` and `/1.0/...` (patterns are whole paths).
    Incus,
    /// Backrest's Connect RPCs: `/v1.Backrest/<Method>`, `/v1.Authentication/Login` (whole paths).
    Backrest,
    /// The container-backups records: `/v1/containers/...` and `/v1/jobs/...` (whole paths).
    Records,
}

impl Surface {
    /// The surface's name in audit lines.
    pub fn name(self) -> &'static str {
        match self {
            Surface::Jidoteki => "jidoteki",
            Surface::Incus => "incus",
            Surface::Backrest => "backrest",
            Surface::Records => "records",
        }
    }

    pub fn prefix(self) -> &'static str {
        match self {
            Surface::Jidoteki => "/api/v1/admin",
            // Backrest's services are two (`v1.Backrest`, `v1.Authentication`): whole paths.
            Surface::Incus | Surface::Records | Surface::Backrest => "",
        }
    }

    pub fn of_path(path: &str) -> Option<Surface> {
        let under = |p: &str| path.starts_with(p) && (path.len() == p.len() || path.as_bytes()[p.len()] == b'/');
        if under("/api/v1/admin") {
            Some(Surface::Jidoteki)
        } else if path == "/" || under("/1.0") || path == "/metrics" || under("/docs") || under("/ui") {
            Some(Surface::Incus)
        } else if under("/v1.Backrest") || under("/v1.Authentication") {
            Some(Surface::Backrest)
        } else if under("/v1") {
            Some(Surface::Records)
        } else {
            None
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// The admin token (or its HMAC) is required.
    Token,
    /// `/setup`: open while no token exists, else like `Token`, with failures paused.
    Setup,
    /// No credentials needed: the API versions and the dashboard's static assets, which
    /// hold nothing of the box's.
    Public,
}

/// A route's body: its kind decides how it is read (the size cap is `body_limit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// None is expected (GETs; `body_limit` 0).
    None,
    /// A form (multipart or urlencoded), every part kept in memory: settings, actions.
    Form,
    /// A form whose file parts are spooled to `uploads/` as they arrive (packages, archives).
    Uploads,
    /// An update's form: its `update` part streams into a running update job as it arrives
    /// (the job starts once the head is admitted); other parts as in `Form`.
    Update,
    /// One JSON document, kept in memory (IncusOS PUTs and actions, Backrest RPCs): a
    /// read-only call works on a full data disk, and nothing is written to be read back.
    Json,
    /// One archive, spooled to `uploads/` as it arrives (IncusOS restores).
    Archive,
}

pub type HandlerFn = fn(&mut Api, &mut Call) -> super::Handled;

pub struct Route {
    pub method: Method,
    /// Path below the surface prefix; `{name}` matches one segment.
    pub pattern: &'static str,
    pub surface: Surface,
    pub access: Access,
    /// The Jidoteki optional endpoint this route belongs to, switched on by the profile.
    pub optional: Option<&'static str>,
    pub body_limit: u64,
    /// What the body is and where it goes while it arrives.
    pub body: Body,
    /// What an API key or client certificate must be allowed to do to call it (the
    /// Jidoteki token may do everything).
    pub cap: Cap,
    /// A GET route that HEAD may also ask: false where the GET has effects or starts a
    /// producer (a reboot, a download), which HEAD must never do (RFC 9110 §9.3.2).
    pub head: bool,
    pub doc: &'static str,
    pub handler: HandlerFn,
}

const fn get(pattern: &'static str, doc: &'static str, handler: HandlerFn) -> Route {
    Route {
        method: Method::Get,
        pattern,
        surface: Surface::Jidoteki,
        access: Access::Token,
        optional: None,
        body_limit: 0,
        body: Body::None,
        cap: Cap::Read,
        head: true,
        doc,
        handler,
    }
}

/// A GET that HEAD may not stand in for (it has effects, or streams a download).
const fn no_head(route: Route) -> Route {
    Route { head: false, ..route }
}

const fn incus_get(pattern: &'static str, doc: &'static str, handler: HandlerFn) -> Route {
    Route { surface: Surface::Incus, ..get(pattern, doc, handler) }
}

/// An IncusOS POST action (`:reboot`...); its small JSON body, if any, is ignored.
const fn incus_post(pattern: &'static str, doc: &'static str, handler: HandlerFn) -> Route {
    Route {
        method: Method::Post,
        surface: Surface::Incus,
        body_limit: SMALL_FORM_BODY,
        body: Body::Json,
        cap: Cap::Admin,
        ..get(pattern, doc, handler)
    }
}

/// An IncusOS request whose small JSON body the handler reads.
const fn incus_json(method: Method, pattern: &'static str, doc: &'static str, handler: HandlerFn) -> Route {
    Route { method, ..incus_post(pattern, doc, handler) }
}

/// A Backrest RPC: POST with a small JSON body.
const fn rpc(pattern: &'static str, doc: &'static str, handler: HandlerFn) -> Route {
    Route { surface: Surface::Backrest, cap: Cap::BackupsManage, ..incus_json(Method::Post, pattern, doc, handler) }
}

/// A records request without a body.
const fn records_get(method: Method, pattern: &'static str, doc: &'static str, handler: HandlerFn) -> Route {
    Route { method, surface: Surface::Records, cap: Cap::BackupsView, ..get(pattern, doc, handler) }
}

const fn records_route(method: Method, pattern: &'static str, doc: &'static str, handler: HandlerFn) -> Route {
    Route { surface: Surface::Records, cap: Cap::BackupsManage, ..incus_json(method, pattern, doc, handler) }
}

/// A form POST with a small body (no file parts spooled).
const fn post(pattern: &'static str, doc: &'static str, handler: HandlerFn) -> Route {
    Route {
        method: Method::Post,
        body_limit: SMALL_FORM_BODY,
        body: Body::Form,
        cap: Cap::Admin,
        ..get(pattern, doc, handler)
    }
}

/// The route needs `cap` rather than its constructor's default.
const fn needs(cap: Cap, route: Route) -> Route {
    Route { cap, ..route }
}

/// The route belongs to the Jidoteki optional endpoint `name`.
const fn optional(name: &'static str, route: Route) -> Route {
    Route { optional: Some(name), ..route }
}

/// A Backrest RPC steward answers with Connect's `unimplemented` (501).
const UNOFFERED: &str = "Not offered (no restic, SFTP or peers here): Connect's unimplemented (501)";

pub static ROUTES: &[Route] = &[
    Route {
        access: Access::Setup,
        ..post("/setup", "Set the API token (open until the first token is set), or change it", jidoteki::setup)
    },
    needs(
        Cap::Update,
        Route {
            body_limit: MAX_UPDATE_BODY,
            body: Body::Update,
            ..post(
                "/update",
                "Upload a signed, encrypted update package; it is applied in the background",
                jidoteki::post_update,
            )
        },
    ),
    get("/update", "Status, percentage and the last 10 log lines of the update", jidoteki::get_update),
    get("/update/log", "The whole update log (text)", jidoteki::update_log),
    needs(
        Cap::Admin,
        no_head(get("/debug", "Download debug-bundle.tar, encrypted to the vendor's key", jidoteki::debug)),
    ),
    needs(
        Cap::Admin,
        no_head(get("/logs", "Download logs.tar.gz of the system's logs, made on the fly", jidoteki::logs)),
    ),
    needs(Cap::Admin, no_head(get("/reboot", "Reboot the system (answers 202 first)", jidoteki::reboot))),
    optional("license", post("/license", "Install a vendor-signed license file", jidoteki::post_license)),
    optional("license", get("/license", "The installed license", jidoteki::get_license)),
    get("/version", "The system version", jidoteki::version),
    get("/changelog", "The changelog of the installed version (text)", jidoteki::changelog),
    get("/build", "Build information", jidoteki::build),
    get("/health", "Disk, memory and CPU figures, computed live", jidoteki::health),
    get("/services", "State of the board's services", jidoteki::services),
    get("/endpoints", "The API endpoints available on this system", jidoteki::endpoints),
    needs(
        Cap::Network,
        optional(
            "settings",
            post("/settings", "Change network (DHCP or static) and application settings", jidoteki::post_settings),
        ),
    ),
    optional("settings", get("/settings", "The stored network and application settings", jidoteki::get_settings)),
    optional(
        "certs",
        post("/certs", "Replace the TLS certificate (public, private, optional ca; PEM)", jidoteki::post_certs),
    ),
    optional("certs", get("/certs", "Status and last 10 log lines of the certificate change", jidoteki::get_certs)),
    needs(
        Cap::StorageDestructive,
        optional(
            "storage",
            post("/storage", "Change the persistent storage option (applied at the next boot)", jidoteki::post_storage),
        ),
    ),
    needs(
        Cap::BackupsManage,
        optional(
            "backup",
            post("/backup", "START a backup in the background, or STOP (cancel or delete) it", jidoteki::post_backup),
        ),
    ),
    needs(
        Cap::BackupsView,
        optional(
            "backup",
            get("/backup", "Status of the backup, with size and sha256 when done", jidoteki::get_backup),
        ),
    ),
    // The archive holds steward's own state: the token hash is the HMAC key of `?hash=`,
    // and the TLS key is the box's identity. Reading it is an admin power.
    needs(
        Cap::Admin,
        optional(
            "backup",
            no_head(get(
                "/backup/download",
                "Download backup.tar (it holds the token hash and TLS key)",
                jidoteki::backup_download,
            )),
        ),
    ),
    needs(
        Cap::BackupsManage,
        optional(
            "backup",
            Route {
                body_limit: MAX_UPDATE_BODY,
                body: Body::Uploads,
                ..post("/backup/restore", "Restore a backup archive (answers when done)", jidoteki::backup_restore)
            },
        ),
    ),
    needs(Cap::BackupsView, optional("backup", get("/backup/log", "The backup log (text)", jidoteki::backup_log))),
    optional("storage", get("/storage", "The stored storage settings and the options offered", jidoteki::get_storage)),
    Route {
        access: Access::Public,
        ..incus_get("/", "The API versions: [\"/1.0\"] (a browser gets the dashboard)", incus::root)
    },
    Route { access: Access::Public, ..incus_get("/ui/{file}", "The dashboard's assets", dashboard::asset) },
    incus_get("/1.0", "Hostname, OS name and version, machine id, uptime", incus::environment),
    incus_get("/1.0/system", "The system endpoints", incus::system_index),
    incus_get("/1.0/applications", "The board's applications", incus::applications),
    incus_get("/1.0/applications/{name}", "An application's state and configuration", incus::application),
    incus_post("/1.0/applications/{name}/:restart", "Restart the application", incus::app_restart),
    needs(
        Cap::BackupsManage,
        Route {
            body: Body::Json,
            ..incus_post(
                "/1.0/applications/{name}/:backup",
                "Stream a tar.gz of the application's data",
                incus::app_backup,
            )
        },
    ),
    needs(
        Cap::BackupsManage,
        Route {
            body_limit: MAX_UPDATE_BODY,
            body: Body::Archive,
            ..incus_post(
                "/1.0/applications/{name}/:restore",
                "Restore the application's data (body: archive)",
                incus::app_restore,
            )
        },
    ),
    incus_post(
        "/1.0/applications/{name}/:factory-reset",
        "Erase the application's data and restart it",
        incus::app_reset,
    ),
    // Admin for the same reason as /backup/download.
    needs(
        Cap::Admin,
        incus_post(
            "/1.0/system/:backup",
            "Stream a tar.gz backup of the system state (it holds the token hash and TLS key)",
            incus::system_backup,
        ),
    ),
    needs(
        Cap::BackupsManage,
        Route {
            body_limit: MAX_UPDATE_BODY,
            body: Body::Archive,
            ..incus_post("/1.0/system/:restore", "Restore a backup archive (body), then reboot", incus::system_restore)
        },
    ),
    Route {
        body: Body::Json,
        ..incus_post(
            "/1.0/system/:factory-reset",
            "Erase steward's state, keep or replace seeds (a steward seed sets the token), reboot",
            incus::factory_reset,
        )
    },
    incus_post("/1.0/system/:reboot", "Reboot the system", incus::reboot),
    incus_get(
        "/1.0/system/network",
        "Network config (the same settings as /api/v1/admin/settings) and state",
        system::network,
    ),
    needs(
        Cap::Network,
        incus_json(
            Method::Put,
            "/1.0/system/network",
            "Change the network; confirmation_timeout rolls back unless confirmed",
            system::put_network,
        ),
    ),
    needs(
        Cap::Network,
        incus_post("/1.0/system/network/:confirm", "Keep the pending network change", system::network_confirm),
    ),
    incus_get("/1.0/system/logging", "Remote syslog config", system::logging),
    incus_json(Method::Put, "/1.0/system/logging", "Change the remote syslog config", system::put_logging),
    incus_get("/1.0/system/provider", "Provider config (secrets redacted)", system::provider),
    incus_json(Method::Put, "/1.0/system/provider", "Change the provider config", system::put_provider),
    incus_get("/1.0/system/update", "Update config and state (the update job of /api/v1/admin/update)", system::update),
    needs(Cap::Update, incus_json(Method::Put, "/1.0/system/update", "Change the update config", system::put_update)),
    needs(Cap::Update, incus_post("/1.0/system/update/:check", "Check for updates", system::update_check)),
    incus_get("/1.0/system/resources", "CPU, memory, drives, network interfaces, load", system::resources),
    incus_get(
        "/1.0/system/security",
        "Secure Boot, TPM, PCRs; recovery keys (?secrets=1 to see them)",
        system::security,
    ),
    incus_json(
        Method::Put,
        "/1.0/system/security",
        "Set the recovery keys and custom CA certificates",
        system::put_security,
    ),
    incus_post(
        "/1.0/system/security/:retrieved",
        "Acknowledge that the recovery keys were saved",
        system::security_retrieved,
    ),
    incus_post("/1.0/system/security/:tpm-rebind", "Renew TPM bindings", system::tpm_rebind),
    incus_get("/1.0/system/storage", "Drives, pools, root partition", system::storage),
    needs(
        Cap::StorageDestructive,
        incus_json(
            Method::Put,
            "/1.0/system/storage",
            "Scrub schedule and pools (through the board's pool hook)",
            system::put_storage,
        ),
    ),
    needs(
        Cap::StorageDestructive,
        incus_json(Method::Post, "/1.0/system/storage/:delete-pool", "Delete a pool ({\"name\"})", system::delete_pool),
    ),
    needs(
        Cap::StorageDestructive,
        incus_json(
            Method::Post,
            "/1.0/system/storage/:import-pool",
            "Import an existing pool with its key ({\"name\", \"type\", \"encryption_key\"}; upstream's name)",
            system::import_key,
        ),
    ),
    needs(
        Cap::StorageDestructive,
        incus_json(
            Method::Post,
            "/1.0/system/storage/:import-encryption-key",
            "Import a pool's raw key ({\"name\", \"encryption_key\"})",
            system::import_key,
        ),
    ),
    needs(
        Cap::StorageDestructive,
        incus_json(
            Method::Post,
            "/1.0/system/storage/:wipe-drive",
            "Wipe a drive ({\"id\", \"secure_wipe\"}): answered once it is wiped; the operation is in /1.0/operations",
            system::wipe_drive,
        ),
    ),
    needs(
        Cap::StorageDestructive,
        incus_json(
            Method::Post,
            "/1.0/system/storage/:scrub-pool",
            "Start a scrub of a pool ({\"name\"}) through the board's pool hook",
            system::scrub_pool,
        ),
    ),
    incus_post(
        "/1.0/system/storage/:create-volume",
        "Not on steward boards: pools hold no volumes here (the board's pool hook makes whole pools)",
        system::not_here,
    ),
    incus_post(
        "/1.0/system/storage/:delete-volume",
        "Not on steward boards: pools hold no volumes here (the board's pool hook makes whole pools)",
        system::not_here,
    ),
    incus_post(
        "/1.0/system/storage/:encrypt-drive",
        "Not on steward boards: drives are not encrypted by steward (a pool's key is imported with :import-pool)",
        system::not_here,
    ),
    incus_post(
        "/1.0/system/storage/:import-encrypted-drive",
        "Not on steward boards: drives are not encrypted by steward (a pool's key is imported with :import-pool)",
        system::not_here,
    ),
    incus_post(
        "/1.0/system/storage/:cleanup-root",
        "Not on steward boards: the root partition holds the two update slots only, which updates manage",
        system::not_here,
    ),
    incus_get("/1.0/system/kernel", "Kernel settings: none on a steward board (they are the board's)", system::kernel),
    incus_json(
        Method::Put,
        "/1.0/system/kernel",
        "Change the kernel settings: only the empty config is taken",
        system::put_kernel,
    ),
    incus_get(
        "/1.0/system/fallback-listener",
        "The fallback listener: never active (steward is the API itself)",
        system::fallback_listener,
    ),
    incus_json(
        Method::Put,
        "/1.0/system/fallback-listener",
        "Change the fallback listener: only the empty config is taken",
        system::put_fallback_listener,
    ),
    incus_post(
        "/1.0/system/:suspend",
        "Not on steward boards: the appliance does not suspend (a sleeping box cannot be administered); :poweroff and :reboot are served",
        system::not_here,
    ),
    needs(
        Cap::Network,
        incus_post(
            "/1.0/system/network/:flush-dns",
            "Flush the DNS cache: steward boards keep none, so this is done at once",
            system::flush_dns,
        ),
    ),
    incus_post(
        "/1.0/services/{name}/:reset",
        "Reset a service's config to the board's default (enabled)",
        system::reset_service,
    ),
    incus_get("/1.0/debug/kernel", "Kernel release, architecture and loaded modules", system::debug_kernel),
    needs(
        Cap::Admin,
        incus_get(
            "/1.0/debug/processes",
            "Every process: pid, parent, state, command line (read from /proc)",
            system::debug_processes,
        ),
    ),
    incus_post(
        "/1.0/debug/:run-script",
        "Not on steward boards: no key is provisioned to check a signed recovery script against, and steward runs no scripts a client sends",
        system::not_here,
    ),
    incus_get("/1.0/debug/secureboot", "Secure Boot debug endpoints (the event log)", system::secureboot_index),
    incus_get(
        "/1.0/debug/secureboot/event-log",
        "The measured-boot event log's PCR 4, 7 and 11 events, with PCRs 4 and 7 from the TPM; 400 without a log",
        system::secureboot_event_log,
    ),
    incus_post(
        "/1.0/debug/secureboot/:update",
        "Not on steward boards: steward does not change the Secure Boot databases",
        system::not_here,
    ),
    incus_post(
        "/1.0/applications",
        "Not on steward boards: the applications are the board's; none can be added",
        system::not_here,
    ),
    incus_json(
        Method::Put,
        "/1.0/applications/{name}",
        "Change an application's config: it has no settings, so only {} is taken",
        incus::put_application,
    ),
    incus_post(
        "/1.0/applications/{name}/:check-update",
        "Check for an application update: it updates with the system (signed uploads), so this is done at once",
        incus::app_check_update,
    ),
    incus_post(
        "/1.0/applications/{name}/:action",
        "Not on steward boards: the board's applications define no actions",
        system::not_here,
    ),
    incus_post(
        "/1.0/applications/{name}/:debug",
        "Not on steward boards: the board's applications expose no debug data (their logs are in /1.0/debug/log)",
        system::not_here,
    ),
    incus_post(
        "/1.0/applications/{name}/:remove",
        "Not on steward boards: the applications are the board's; none can be removed",
        system::not_here,
    ),
    incus_post(
        "/1.0/applications/{name}/:switch-version",
        "Not on steward boards: one version of each application is installed (it changes with a system update)",
        system::not_here,
    ),
    needs(Cap::Admin, incus_get("/1.0/keys", "API keys (?recursion=1: with capabilities)", keys::list)),
    incus_json(Method::Post, "/1.0/keys", "Create an API key: the secret is in this answer only", keys::create),
    needs(Cap::Admin, incus_get("/1.0/keys/{name}", "One API key (never its secret)", keys::show)),
    needs(
        Cap::Admin,
        Route { method: Method::Delete, ..incus_get("/1.0/keys/{name}", "Revoke an API key", keys::revoke) },
    ),
    Route {
        access: Access::Public,
        ..incus_get(
            "/docs",
            "The OpenAPI 3 description of every endpoint (generated from the route table); /docs/ is the same as a page to read",
            openapi::docs,
        )
    },
    incus_get("/metrics", "Prometheus metrics: requests, latency, connections, jobs, plans, memory", metrics::metrics),
    incus_get("/1.0/services", "The board's services", system::services),
    incus_get("/1.0/services/{name}", "A service: config (enabled) and state (running)", system::service),
    incus_json(Method::Put, "/1.0/services/{name}", "Enable or disable a service", system::put_service),
    incus_get("/1.0/debug", "Debug endpoints", system::debug_index),
    incus_get("/1.0/debug/log", "Recent log records (?unit=, ?entries=, ?boot=0)", system::debug_log),
    incus_json(
        Method::Post,
        "/1.0/debug/tui/:write-message",
        "Write a message to the console log",
        system::write_message,
    ),
    needs(Cap::BackupsView, incus_get("/1.0/plans", "Backup plans (?recursion=1: with their state)", plans::list)),
    needs(Cap::BackupsManage, incus_json(Method::Post, "/1.0/plans", "Create a backup plan", plans::create)),
    needs(
        Cap::BackupsView,
        incus_get("/1.0/plans/{id}", "A plan's config and state: last backup, next run, backups kept", plans::show),
    ),
    needs(
        Cap::BackupsManage,
        incus_json(Method::Put, "/1.0/plans/{id}", "Replace a plan's config (If-Match: its ETag)", plans::replace),
    ),
    needs(
        Cap::BackupsManage,
        Route {
            method: Method::Delete,
            ..incus_get("/1.0/plans/{id}", "Delete a plan (its backups stay)", plans::delete)
        },
    ),
    needs(
        Cap::BackupsManage,
        incus_post("/1.0/plans/{id}/:run", "Queue a backup of the plan now: 202 with the operation", plans::run),
    ),
    needs(
        Cap::BackupsView,
        incus_get("/1.0/operations", "Plan operations (?plan=, ?status=, ?recursion=1)", plans::operations),
    ),
    needs(Cap::BackupsView, incus_get("/1.0/operations/{id}", "One operation", plans::operation)),
    needs(
        Cap::BackupsManage,
        Route {
            method: Method::Delete,
            ..incus_get("/1.0/operations/{id}", "Cancel a queued or running operation", plans::cancel)
        },
    ),
    needs(Cap::BackupsView, incus_get("/1.0/operations/{id}/log", "The operation's log (text)", plans::operation_log)),
    rpc(
        "/v1.Backrest/Backup",
        "Run a plan's backup now; answers when it has ended ({\"value\": planId})",
        backrest::backup,
    ),
    needs(
        Cap::BackupsView,
        rpc(
            "/v1.Backrest/GetOperations",
            "Operation history ({\"selector\": {planId, flowId, ids, snapshotId, modnoGte}, \"lastN\"})",
            backrest::get_operations,
        ),
    ),
    rpc(
        "/v1.Backrest/Cancel",
        "Cancel a queued or running operation ({\"operationId\"}, or {\"value\"})",
        backrest::cancel,
    ),
    needs(
        Cap::BackupsView,
        rpc(
            "/v1.Backrest/ListSnapshots",
            "The backups kept, as Backrest's snapshots ({\"planId\", \"repoId\"})",
            backrest::list_snapshots,
        ),
    ),
    needs(
        Cap::BackupsView,
        rpc(
            "/v1.Backrest/GetConfig",
            "Backrest's Config: the one repository (local) and the plans (no auth section)",
            backrest::get_config,
        ),
    ),
    needs(
        Cap::BackupsView,
        rpc(
            "/v1.Backrest/GetSummaryDashboard",
            "Per plan and for the repository: the last 30 days of backups, the next run, recent backups",
            backrest::get_summary_dashboard,
        ),
    ),
    needs(
        Cap::BackupsView,
        rpc(
            "/v1.Backrest/GetOperationEvents",
            "Server stream (connect+json, connect+proto): created, updated and deleted operations from now on",
            backrest::get_operation_events,
        ),
    ),
    needs(
        Cap::BackupsView,
        rpc("/v1.Backrest/GetLogs", "Server stream: an operation's log ({\"ref\": logref})", backrest::get_logs),
    ),
    Route {
        access: Access::Public,
        ..rpc(
            "/v1.Authentication/Login",
            "{\"username\", \"password\"}: the password is the token or a key's secret; answers it as the Bearer token",
            backrest::login,
        )
    },
    Route {
        access: Access::Public,
        ..rpc("/v1.Authentication/GetAuthInfo", "How to sign in: {\"authDriver\": \"local\"}", backrest::get_auth_info)
    },
    rpc(
        "/v1.Backrest/DoRepoTask",
        "{\"repoId\", \"task\"}: TASK_CHECK verifies every kept backup's sha256, TASK_PRUNE/TASK_FORGET run retention",
        backrest::do_repo_task,
    ),
    rpc(
        "/v1.Backrest/Forget",
        "{\"snapshotId\"} deletes that backup; {\"planId\"} alone runs the plan's retention now",
        backrest::forget,
    ),
    rpc(
        "/v1.Backrest/Restore",
        "{\"snapshotId\"}: the whole backup restored in place (a path or target elsewhere is refused)",
        backrest::restore,
    ),
    rpc(
        "/v1.Backrest/ClearHistory",
        "{\"selector\", \"onlyFailed\"}: finished operations dropped from the history (kept backups stay)",
        backrest::clear_history,
    ),
    needs(
        Cap::BackupsView,
        rpc(
            "/v1.Backrest/PathAutocomplete",
            "{\"value\"}: the backup paths the board offers that begin with it",
            backrest::path_autocomplete,
        ),
    ),
    needs(
        Cap::BackupsView,
        rpc(
            "/v1.Backrest/ListSnapshotFiles",
            "{\"snapshotId\", \"path\"}: the backup's entries directly below the path",
            backrest::list_snapshot_files,
        ),
    ),
    needs(Cap::BackupsView, rpc("/v1.Backrest/SetConfig", UNOFFERED, backrest::unimplemented)),
    needs(Cap::BackupsView, rpc("/v1.Backrest/SetupSftp", UNOFFERED, backrest::unimplemented)),
    needs(Cap::BackupsView, rpc("/v1.Backrest/CheckRepoExists", UNOFFERED, backrest::unimplemented)),
    needs(Cap::BackupsView, rpc("/v1.Backrest/AddRepo", UNOFFERED, backrest::unimplemented)),
    needs(Cap::BackupsView, rpc("/v1.Backrest/RemoveRepo", UNOFFERED, backrest::unimplemented)),
    needs(Cap::BackupsView, rpc("/v1.Backrest/RunCommand", UNOFFERED, backrest::unimplemented)),
    needs(Cap::BackupsView, rpc("/v1.Backrest/GetDownloadURL", UNOFFERED, backrest::unimplemented)),
    needs(Cap::BackupsView, rpc("/v1.Backrest/GeneratePairingToken", UNOFFERED, backrest::unimplemented)),
    needs(Cap::BackupsView, rpc("/v1.Authentication/HashPassword", UNOFFERED, backrest::unimplemented)),
    records_get(
        Method::Get,
        "/v1/containers/{container}/backups",
        "Backup records holding the container (an application, or steward)",
        records::list,
    ),
    records_get(Method::Get, "/v1/containers/{container}/backups/{backup}", "One backup record", records::show),
    needs(
        Cap::BackupsManage,
        records_get(
            Method::Delete,
            "/v1/containers/{container}/backups/{backup}",
            "Delete the backup: 202 with a job descriptor",
            records::delete,
        ),
    ),
    records_route(
        Method::Post,
        "/v1/containers/{container}/backups/{backup}/tasks",
        "{\"action\":\"restore\"}: 202 with a job descriptor",
        records::task,
    ),
    records_get(
        Method::Get,
        "/v1/containers/{container}/backups/{backup}/logs",
        "One log per backup or restore run",
        records::logs,
    ),
    records_get(Method::Get, "/v1/jobs/{job}", "A restore or delete job's progress", records::job),
    incus_post("/1.0/system/:poweroff", "Power the system off", incus::poweroff),
];

pub enum Lookup {
    Found(usize),
    /// The path exists, not with this method; the methods it has.
    WrongMethod(Vec<Method>),
    NotFound,
}

/// Matches `path` (one trailing slash tolerated) against enabled routes of `surface`.
pub fn lookup(surface: Surface, path: &str, method: Method, enabled: impl Fn(&Route) -> bool) -> Lookup {
    let rest = &path[surface.prefix().len()..];
    let rest = if rest.len() > 1 { rest.strip_suffix('/').unwrap_or(rest) } else { rest };
    let mut allowed = Vec::new();
    // HEAD is answered by GET routes, without the body.
    let wanted = if method == Method::Head { Method::Get } else { method };
    for (index, route) in ROUTES.iter().enumerate() {
        if route.surface != surface || !enabled(route) || !pattern_matches(route.pattern, rest) {
            continue;
        }
        if route.method == wanted && (method != Method::Head || route.head) {
            return Lookup::Found(index);
        }
        allowed.push(route.method);
        if route.method == Method::Get && route.head {
            allowed.push(Method::Head);
        }
    }
    if allowed.is_empty() { Lookup::NotFound } else { Lookup::WrongMethod(allowed) }
}

fn pattern_matches(pattern: &str, path: &str) -> bool {
    let mut p = pattern.split('/');
    let mut s = path.split('/');
    loop {
        match (p.next(), s.next()) {
            (None, None) => return true,
            (Some(want), Some(got)) if want.starts_with('{') && !got.is_empty() => {}
            (Some(want), Some(got)) if want == got => {}
            _ => return false,
        }
    }
}

/// Top-level endpoint paths of a surface (`/api/v1/admin/backup` for `/backup/log`), sorted.
pub fn top_level(surface: Surface, enabled: impl Fn(&Route) -> bool) -> Vec<String> {
    let mut out: Vec<String> = ROUTES
        .iter()
        .filter(|r| r.surface == surface && enabled(r))
        .map(|r| {
            let first = r.pattern.trim_start_matches('/').split('/').next().unwrap_or("");
            format!("{}/{first}", surface.prefix())
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(pattern_matches("/version", "/version"));
        assert!(!pattern_matches("/version", "/versions"));
        assert!(!pattern_matches("/version", "/version/x"));
        assert!(pattern_matches("/a/{id}/log", "/a/7/log"));
        assert!(!pattern_matches("/a/{id}/log", "/a//log"));
    }

    #[test]
    fn lookup_tolerates_one_trailing_slash_and_reports_methods() {
        let all = |_: &Route| true;
        assert!(matches!(lookup(Surface::Jidoteki, "/api/v1/admin/version/", Method::Get, all), Lookup::Found(_)));
        assert!(matches!(lookup(Surface::Jidoteki, "/api/v1/admin/version//", Method::Get, all), Lookup::NotFound));
        assert!(matches!(lookup(Surface::Jidoteki, "/api/v1/admin/version", Method::Head, all), Lookup::Found(_)));
        match lookup(Surface::Jidoteki, "/api/v1/admin/setup", Method::Get, all) {
            Lookup::WrongMethod(m) => assert_eq!(m, vec![Method::Post]),
            _ => panic!("expected 405"),
        }
        assert!(Surface::of_path("/api/v1/adminx").is_none());
        assert_eq!(Surface::of_path("/api/v1/admin/x"), Some(Surface::Jidoteki));
    }

    #[test]
    fn head_never_reaches_a_get_with_effects() {
        let all = |_: &Route| true;
        for path in
            ["/api/v1/admin/reboot", "/api/v1/admin/debug", "/api/v1/admin/logs", "/api/v1/admin/backup/download"]
        {
            match lookup(Surface::Jidoteki, path, Method::Head, all) {
                Lookup::WrongMethod(m) => assert_eq!(m, vec![Method::Get], "{path}"),
                _ => panic!("HEAD {path} must be 405"),
            }
            assert!(matches!(lookup(Surface::Jidoteki, path, Method::Get, all), Lookup::Found(_)));
        }
    }

    #[test]
    fn every_route_is_documented_and_bodies_are_capped() {
        for r in ROUTES {
            assert!(!r.doc.is_empty(), "{} lacks a doc line", r.pattern);
            assert!(r.method != Method::Get || r.body_limit == 0, "{} GET takes no body", r.pattern);
            assert_eq!(r.body == Body::None, r.body_limit == 0, "{}: a body kind and a cap go together", r.pattern);
            assert!(
                r.body != Body::Json || r.body_limit <= SMALL_FORM_BODY,
                "{}: a JSON body stays in memory",
                r.pattern
            );
        }
    }
}
