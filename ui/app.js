// steward's admin dashboard. Plain JS, no build step. Served under a strict CSP: nothing
// inline, no eval, no style attributes. The token lives in this tab only (sessionStorage)
// and travels as an Authorization header, never in a URL.
"use strict";
(() => {
  const TOKEN_KEY = "steward.token";
  const ADMIN = "/api/v1/admin";
  let token = "";
  try {
    token = sessionStorage.getItem(TOKEN_KEY) || "";
  } catch (_) {
    /* storage disabled: memory only */
  }
  const timers = {};
  const $ = (id) => document.getElementById(id);

  // --- small helpers ------------------------------------------------------------------

  function el(tag, props, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null) continue;
      if (k === "class") e.className = v;
      else if (k === "data") for (const [dk, dv] of Object.entries(v)) e.dataset[dk] = dv;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k in e) e[k] = v;
      else e.setAttribute(k, v);
    }
    for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid);
    return e;
  }

  /** Shows `text` in a message element (hidden when empty); kind: error, ok, info, warn. */
  function say(id, text, kind) {
    const e = typeof id === "string" ? $(id) : id;
    e.textContent = text || "";
    e.hidden = !text;
    e.dataset.kind = kind || "error";
  }

  function setTimer(name, fn, ms) {
    clearTimeout(timers[name]);
    timers[name] = setTimeout(fn, ms);
  }
  function stopTimer(name) {
    clearTimeout(timers[name]);
    delete timers[name];
  }

  function fmtBytes(n) {
    n = Number(n);
    if (!isFinite(n)) return "";
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) {
      n /= 1024;
      i++;
    }
    return (i ? n.toFixed(1) : String(n)) + " " + u[i];
  }
  const pad = (n) => String(n).padStart(2, "0");
  function fmtTime(t) {
    if (t === null || t === undefined || t === "") return "";
    const d = typeof t === "string" && !/^\d+$/.test(t) ? new Date(t) : new Date(Number(t));
    if (isNaN(d)) return String(t);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
  function fmtMs(ms) {
    ms = Number(ms);
    if (!isFinite(ms) || ms < 0) return "";
    if (ms < 1000) return ms + " ms";
    if (ms < 60000) return (ms / 1000).toFixed(1) + " s";
    return Math.floor(ms / 60000) + " min " + Math.round((ms % 60000) / 1000) + " s";
  }

  // --- talking to the API -------------------------------------------------------------

  /** The API's own words for a failed answer, whichever surface it came from. */
  function errorText(status, statusText, data, text, header) {
    if (data && typeof data === "object") {
      if (typeof data["Error-Message"] === "string" && data["Error-Message"]) return data["Error-Message"];
      if (data.type === "error" && data.error) return data.error;
      if (typeof data.message === "string" && data.message && data.code) return data.message;
      if (typeof data["error-message"] === "string" && data["error-message"]) return data["error-message"];
      if (typeof data.Status === "string" && data.Status) return data.Status;
    }
    const h = header && header("Error-Message");
    if (h) return h;
    if (text && text.length < 400 && !/^\s*</.test(text)) return text.trim();
    if (!status) return "The appliance did not answer (connection failed)";
    return `${status} ${statusText || ""}`.trim();
  }

  /** fetch() with the bearer header. Resolves to {ok, status, data, text, error, headers}. */
  async function api(method, path, opts = {}) {
    const headers = {};
    if (token && !opts.noAuth) headers.Authorization = "Bearer " + token;
    let body;
    if (opts.json !== undefined) {
      body = JSON.stringify(opts.json);
      headers["Content-Type"] = "application/json";
    } else if (opts.form) {
      body = opts.form;
    }
    Object.assign(headers, opts.headers || {});
    let res;
    try {
      res = await fetch(path, { method, headers, body, cache: "no-store", credentials: "omit", redirect: "error" });
    } catch (e) {
      return { ok: false, status: 0, data: null, text: "", error: "The appliance did not answer: " + e.message };
    }
    if (opts.blob && res.ok) {
      try {
        return { ok: true, status: res.status, blob: await res.blob(), headers: res.headers };
      } catch (e) {
        return { ok: false, status: res.status, error: "The download broke off: " + e.message };
      }
    }
    const text = await res.text().catch(() => "");
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (_) {
      /* text answer */
    }
    const r = { ok: res.ok, status: res.status, data, text, headers: res.headers };
    if (!res.ok) r.error = errorText(res.status, res.statusText, data, text, (n) => res.headers.get(n));
    return r;
  }

  /** A multipart POST through XMLHttpRequest, for its upload progress events. */
  function upload(path, form, bar, label) {
    return new Promise((resolve) => {
      const x = new XMLHttpRequest();
      x.open("POST", path);
      if (token) x.setRequestHeader("Authorization", "Bearer " + token);
      const at = (p) => {
        if (bar) {
          bar.value = p;
          bar.dataset.value = String(p);
        }
      };
      at(0);
      if (bar && bar.parentElement.classList.contains("progress-row")) bar.parentElement.hidden = false;
      if (label) label.textContent = "Uploading…";
      x.upload.addEventListener("progress", (e) => {
        if (!e.lengthComputable) return;
        const p = Math.floor((e.loaded * 100) / e.total);
        at(p);
        if (label) label.textContent = `${p} % (${fmtBytes(e.loaded)} of ${fmtBytes(e.total)})`;
      });
      x.upload.addEventListener("load", () => {
        at(100);
        if (label) label.textContent = "Uploaded, waiting for the answer…";
      });
      x.addEventListener("load", () => {
        let data = null;
        try {
          data = JSON.parse(x.responseText);
        } catch (_) {
          /* not JSON */
        }
        const ok = x.status >= 200 && x.status < 300;
        if (label) label.textContent = ok ? "Uploaded" : "Upload refused";
        resolve({
          ok,
          status: x.status,
          data,
          text: x.responseText,
          error: ok ? null : errorText(x.status, x.statusText, data, x.responseText, (n) => x.getResponseHeader(n)),
        });
      });
      const fail = (why) => () => {
        if (label) label.textContent = "";
        resolve({ ok: false, status: 0, data: null, error: why });
      };
      x.addEventListener("error", fail("The upload failed: the connection was lost"));
      x.addEventListener("abort", fail("The upload was aborted"));
      x.send(form);
    });
  }

  /** Downloads with the bearer header: the answer becomes a blob saved by a scripted link. */
  async function download(path, fallbackName, msgId, button) {
    button.disabled = true;
    say(msgId, `Preparing ${fallbackName}…`, "info");
    const r = await api("GET", path, { blob: true });
    button.disabled = false;
    if (!r.ok) {
      say(msgId, r.error);
      return null;
    }
    const cd = r.headers.get("Content-Disposition") || "";
    const m = /filename="?([^";]+)"?/.exec(cd);
    const name = m ? m[1] : fallbackName;
    const url = URL.createObjectURL(r.blob);
    const a = el("a", { href: url, download: name, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    say(msgId, `Saved ${name} (${fmtBytes(r.blob.size)})`, "ok");
    return name;
  }

  const formOf = (fields) => {
    const f = new FormData();
    for (const [k, v] of Object.entries(fields)) if (v !== undefined && v !== null) f.append(k, v);
    return f;
  };

  // --- confirmation dialog ---------------------------------------------------------------

  function ask(text, okLabel) {
    const d = $("confirm-dialog");
    $("confirm-text").textContent = text;
    $("confirm-ok").textContent = okLabel || "OK";
    return new Promise((resolve) => {
      const done = (v) => () => {
        $("confirm-ok").onclick = null;
        $("confirm-cancel").onclick = null;
        d.onclose = null;
        if (d.open) d.close();
        resolve(v);
      };
      $("confirm-ok").onclick = done(true);
      $("confirm-cancel").onclick = done(false);
      d.onclose = done(false);
      d.showModal();
    });
  }

  // --- screens ---------------------------------------------------------------------------

  const PUBLIC = new Set(["signin", "setup"]);
  const loaders = {
    signin: () => $("signin-token").focus(),
    setup: () => $("setup-token").focus(),
    token: () => {},
    status: loadStatus,
    update: loadUpdate,
    network: loadNetwork,
    certs: loadCerts,
    license: loadLicense,
    storage: loadStorage,
    backup: loadBackup,
    plans: loadPlans,
    operations: loadOperations,
    support: () => {},
    reboot: () => {},
  };

  function route() {
    let name = location.hash.replace(/^#\/?/, "").split(/[?/]/)[0];
    if (!token) {
      if (!PUBLIC.has(name)) name = "signin";
    } else if (!(name in loaders) || PUBLIC.has(name)) {
      name = "status";
    }
    if (location.hash !== "#/" + name) history.replaceState(null, "", "#/" + name);
    document.body.dataset.signedIn = token ? "1" : "0";
    document.body.dataset.screen = name;
    const link = document.querySelector(`[data-nav="${name}"]`);
    document.title = "steward · " + (link ? link.textContent : name === "setup" ? "first run" : "sign in");
    document.body.dataset.nav = "closed";
    $("nav-toggle").setAttribute("aria-expanded", "false");
    for (const s of document.querySelectorAll(".screen")) s.hidden = s.dataset.screen !== name;
    for (const a of document.querySelectorAll("[data-nav]")) {
      if (a.dataset.nav === name) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    stopTimer("health");
    say("global-msg", "");
    loaders[name]();
  }

  function signedIn(t) {
    token = t;
    try {
      sessionStorage.setItem(TOKEN_KEY, t);
    } catch (_) {
      /* memory only */
    }
    loadTop();
  }

  /** The configured hostname (Jidoteki settings), else what the system reports. */
  function hostnameOf(settings, env) {
    const n = settings && settings.ok && settings.data && settings.data.network;
    return (n && n.hostname) || (env && env.hostname) || "";
  }
  const envOf = (r) => r.ok && r.data && r.data.metadata && r.data.metadata.environment;

  async function loadTop() {
    const [r, st] = await Promise.all([api("GET", "/1.0"), api("GET", ADMIN + "/settings")]);
    const env = envOf(r);
    $("top-host").textContent = env ? [hostnameOf(st, env), env.os_version && "v" + env.os_version].filter(Boolean).join(" · ") : "";
  }

  // sign-in and setup

  $("signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const t = $("signin-token").value;
    if (!t) return;
    $("signin-submit").disabled = true;
    say("signin-msg", "");
    const saved = token;
    token = t;
    const r = await api("GET", ADMIN + "/version");
    $("signin-submit").disabled = false;
    if (!r.ok) {
      token = saved;
      say("signin-msg", r.error);
      return;
    }
    $("signin-token").value = "";
    signedIn(t);
    location.hash = "#/status";
  });

  function tokenForm(prefix, withAuth, after) {
    $(prefix + "-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const a = $(prefix + "-" + (prefix === "setup" ? "token" : "new")).value;
      const b = $(prefix + "-" + (prefix === "setup" ? "token2" : "new2")).value;
      if (a !== b) {
        say(prefix + "-msg", "The two tokens differ.");
        return;
      }
      $(prefix + "-submit").disabled = true;
      say(prefix + "-msg", "Saving…", "info");
      const r = await api("POST", ADMIN + "/setup", { form: formOf({ newtoken: a }), noAuth: !withAuth });
      $(prefix + "-submit").disabled = false;
      if (prefix === "setup") $("setup-exists").hidden = r.status !== 403;
      if (!r.ok) {
        say(prefix + "-msg", r.error);
        return;
      }
      e.target.reset();
      say(prefix + "-msg", r.data && r.data.Status ? r.data.Status : "Token set", "ok");
      signedIn(a);
      after();
    });
  }
  tokenForm("setup", false, () => {
    location.hash = "#/status";
  });
  tokenForm("token", true, () => {});

  $("signout").addEventListener("click", () => {
    token = "";
    try {
      sessionStorage.removeItem(TOKEN_KEY);
    } catch (_) {
      /* nothing stored */
    }
    // A fresh page drops everything this tab learnt while signed in.
    location.replace(location.pathname + "#/signin");
    location.reload();
  });

  $("nav").addEventListener("click", (e) => {
    if (e.target.closest("a")) document.body.dataset.nav = "closed";
  });
  $("nav-toggle").addEventListener("click", () => {
    const open = document.body.dataset.nav !== "open";
    document.body.dataset.nav = open ? "open" : "closed";
    $("nav-toggle").setAttribute("aria-expanded", String(open));
  });

  // status

  function setGauge(name, pct, big, detail) {
    const fig = $("gauge-" + name);
    const p = Math.max(0, Math.min(100, Math.round(Number(pct) || 0)));
    fig.dataset.value = String(p);
    fig.dataset.level = p >= 90 ? "crit" : p >= 75 ? "warn" : "ok";
    fig.querySelector(".bar").setAttribute("stroke-dasharray", `${p} 100`);
    $("health-" + name).textContent = big;
    $("health-" + name + "-detail").textContent = detail;
  }

  async function refreshHealth() {
    const r = await api("GET", ADMIN + "/health");
    if (!r.ok || !r.data) {
      say("status-msg", r.error || "No health figures");
    } else {
      say("status-msg", "");
      const { disk = {}, memory = {}, cpu = {} } = r.data;
      setGauge("disk", disk.percentage, `${disk.percentage} %`, `${disk.used} of ${disk.total}`);
      setGauge("memory", memory.percentage, `${memory.percentage} %`, `${memory.used} of ${memory.total}`);
      const load1 = parseFloat(String(cpu.load || "0").split(",")[0]) || 0;
      const cpus = Number(cpu.num) || 1;
      setGauge("load", (load1 / cpus) * 100, load1.toFixed(2), `${cpu.load} on ${cpus} CPU${cpus > 1 ? "s" : ""}`);
    }
    if (document.body.dataset.screen === "status") setTimer("health", refreshHealth, 5000);
  }

  async function loadStatus() {
    const [v, b, s, c, env, st] = await Promise.all([
      api("GET", ADMIN + "/version"),
      api("GET", ADMIN + "/build"),
      api("GET", ADMIN + "/services"),
      api("GET", ADMIN + "/changelog"),
      api("GET", "/1.0"),
      api("GET", ADMIN + "/settings"),
      refreshHealth(),
    ]);
    $("status-version").textContent = v.ok && v.data ? v.data.version : v.error;
    if (b.ok && b.data) {
      const bd = b.data.builddate;
      $("status-build").textContent = /^\d+$/.test(String(bd)) ? fmtTime(Number(bd) * 1000) : String(bd);
      $("status-build").title = String(bd);
    } else {
      $("status-build").textContent = b.error;
    }
    const e = envOf(env);
    $("status-hostname").textContent = e ? hostnameOf(st, e) || "(not set)" : env.error;
    const list = $("services-list");
    list.replaceChildren();
    if (s.ok && s.data && Array.isArray(s.data.services)) {
      for (const entry of s.data.services) {
        for (const [name, state] of Object.entries(entry)) {
          list.append(el("li", { data: { service: name, state } }, el("span", {}, name), el("span", { class: "pill", data: { status: state } }, state)));
        }
      }
    } else {
      list.append(el("li", { class: "msg" }, s.error || "No services"));
    }
    $("status-changelog").textContent = c.ok ? c.text : c.error;
    $("screen-status").dataset.loaded = "1";
  }
  $("status-refresh").addEventListener("click", loadStatus);

  // update

  function renderUpdate(d) {
    const st = d && d.status;
    const pill = $("update-status");
    pill.textContent = st || "no update yet";
    pill.dataset.status = st || "none";
    const p = d && typeof d.percentage === "number" ? d.percentage : st === "success" ? 100 : 0;
    $("update-progress").value = p;
    $("update-progress").dataset.value = String(p);
    $("update-percentage").textContent = st ? p + " %" : "";
    $("update-log").textContent = (d && d.log) || "";
    const err = d && d["error-message"] ? d["error-message"] + (d["error-code"] ? ` (${d["error-code"]})` : "") : "";
    say("update-error", err);
  }

  let updateSent = false;
  async function pollUpdate() {
    const r = await api("GET", ADMIN + "/update");
    if (!r.ok) {
      say("update-msg", r.error);
      return;
    }
    renderUpdate(r.data);
    if (r.data && r.data.status === "running") {
      setTimer("update", pollUpdate, 700);
    } else {
      $("update-submit").disabled = false;
      if (r.data && r.data.status === "success" && updateSent) {
        updateSent = false;
        const v = await api("GET", ADMIN + "/version");
        if (v.ok && v.data) say("update-msg", `The system now reports version ${v.data.version}.`, "ok");
        loadTop();
      }
    }
  }
  function loadUpdate() {
    if (!timers.update) pollUpdate();
  }
  $("update-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const file = $("update-file").files[0];
    if (!file) return;
    $("update-submit").disabled = true;
    say("update-msg", "");
    const r = await upload(ADMIN + "/update", formOf({ update: file }), $("update-upload-progress"), $("update-upload-text"));
    if (!r.ok) {
      $("update-submit").disabled = false;
      say("update-msg", r.error);
      return;
    }
    say("update-msg", (r.data && r.data.Status) || "Accepted", "info");
    updateSent = true;
    pollUpdate();
  });

  // network (IncusOS commit-confirm)

  let netEtag = null;
  let netConfig = null;
  let netDeadline = 0; // local ms when the pending change rolls back

  function fillNetwork(cfg) {
    const iface = (cfg.interfaces && cfg.interfaces[0]) || {};
    const addrs = iface.addresses || [];
    const stat = addrs.find((a) => !["dhcp4", "dhcp6", "slaac"].includes(a));
    const route = (iface.routes || []).find((r) => ["0.0.0.0/0", "::/0", "default"].includes(r.to));
    $("net-interface").value = iface.name || "";
    $("net-hostname").value = (cfg.dns && cfg.dns.hostname) || "";
    $("net-mode").value = stat ? "static" : "dhcp";
    $("net-address").value = stat || "";
    $("net-gateway").value = (route && route.via) || "";
    const ns = (cfg.dns && cfg.dns.nameservers) || [];
    $("net-dns1").value = ns[0] || "";
    $("net-dns2").value = ns[1] || "";
    $("net-ntp").value = ((cfg.time && cfg.time.ntp_servers) || [])[0] || "";
    netMode();
  }
  function netMode() {
    $("net-form").dataset.mode = $("net-mode").value;
  }
  $("net-mode").addEventListener("change", netMode);

  async function loadNetwork(keepForm) {
    const r = await api("GET", "/1.0/system/network");
    if (!r.ok) {
      say("net-msg", r.error);
      return null;
    }
    netEtag = r.headers.get("ETag");
    const md = r.data.metadata || {};
    netConfig = md.config || {};
    if (keepForm !== true) fillNetwork(netConfig);
    const st = md.state || {};
    renderNetState(st);
    if (st.configuration_in_process && st.confirmation_deadline && !netDeadline) {
      startCountdown(Date.parse(st.confirmation_deadline));
    }
    $("screen-network").dataset.loaded = "1";
    return md;
  }

  function renderNetState(st) {
    const dl = $("net-state");
    dl.replaceChildren();
    for (const [name, i] of Object.entries(st.interfaces || {})) {
      const bits = [i.state, i.type, i.hwaddr, i.mtu && "MTU " + i.mtu, i.speed && i.speed + " Mb/s"].filter(Boolean);
      dl.append(el("dt", {}, name), el("dd", { data: { iface: name, state: i.state || "" } }, bits.join(", ")));
    }
    const pending = st.configuration_in_process ? "yes" + (st.confirmation_deadline ? ", until " + fmtTime(st.confirmation_deadline) : "") : "no";
    dl.append(el("dt", {}, "Change waiting for confirmation"), el("dd", { id: "net-pending" }, pending));
  }

  function startCountdown(deadline) {
    netDeadline = deadline;
    $("net-confirm-panel").hidden = false;
    $("net-confirm").disabled = false;
    tick();
  }
  async function tick() {
    const left = Math.max(0, Math.ceil((netDeadline - Date.now()) / 1000));
    $("net-countdown").textContent = String(left);
    $("net-countdown").dataset.value = String(left);
    if (left > 0) {
      setTimer("net", tick, 250);
      return;
    }
    // Past the deadline: the box has rolled back (or does so now). Look, for a while.
    const md = await loadNetwork();
    if (md && md.state && md.state.configuration_in_process && Date.now() - netDeadline < 30000) {
      setTimer("net", tick, 1000);
      return;
    }
    netDeadline = 0;
    $("net-confirm-panel").hidden = true;
    say("net-result", "Not confirmed in time: the previous network settings are back.", "warn");
  }

  $("net-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    say("net-msg", "");
    say("net-result", "");
    const v = (id) => $(id).value.trim();
    const cur = netConfig || {};
    const old = (cur.interfaces && cur.interfaces[0]) || {};
    const name = v("net-interface");
    const stat = $("net-mode").value === "static";
    const gw = v("net-gateway");
    const iface = {
      name,
      addresses: stat ? [v("net-address")] : ["dhcp4"],
      routes: stat && gw ? [{ to: gw.includes(":") ? "::/0" : "0.0.0.0/0", via: gw }] : [],
    };
    if (old.name === name && old.hwaddr) iface.hwaddr = old.hwaddr;
    const config = {
      dns: { hostname: v("net-hostname"), nameservers: [v("net-dns1"), v("net-dns2")].filter(Boolean) },
      time: { ntp_servers: v("net-ntp") ? [v("net-ntp")] : [], timezone: (cur.time && cur.time.timezone) || "UTC" },
      interfaces: [iface],
    };
    const secs = parseInt($("net-timeout").value, 10) || 0;
    if (secs > 0) config.confirmation_timeout = secs + "s";
    $("net-submit").disabled = true;
    say("net-msg", "Applying…", "info");
    const r = await api("PUT", "/1.0/system/network", { json: { config }, headers: netEtag ? { "If-Match": netEtag } : {} });
    $("net-submit").disabled = false;
    if (!r.ok) {
      say("net-msg", r.error);
      return;
    }
    say("net-msg", "");
    if (secs > 0) {
      netDeadline = 0;
      startCountdown(Date.now() + secs * 1000);
    } else {
      say("net-result", "Applied.", "ok");
    }
    loadNetwork(true);
  });

  $("net-confirm").addEventListener("click", async () => {
    $("net-confirm").disabled = true;
    const r = await api("POST", "/1.0/system/network/:confirm");
    if (!r.ok) {
      $("net-confirm").disabled = false;
      say("net-msg", r.error);
      return;
    }
    stopTimer("net");
    netDeadline = 0;
    $("net-confirm-panel").hidden = true;
    say("net-msg", "");
    say("net-result", "Confirmed: the new network settings stay.", "ok");
    loadNetwork();
    loadTop();
  });

  // certificates

  function renderJob(prefix, d) {
    const st = d && d.status;
    $(prefix + "-status").textContent = st || "none yet";
    $(prefix + "-status").dataset.status = st || "none";
    $(prefix + "-log").textContent = (d && d.log) || "";
    say(prefix + "-error", (d && d["error-message"]) || "");
  }
  async function loadCerts() {
    const r = await api("GET", ADMIN + "/certs");
    if (!r.ok) {
      say("certs-msg", r.error);
      return;
    }
    renderJob("certs", r.data);
    if (r.data && r.data.status === "running") setTimer("certs", loadCerts, 700);
  }
  $("certs-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = formOf({ public: $("certs-public").files[0], private: $("certs-private").files[0], ca: $("certs-ca").files[0] });
    $("certs-submit").disabled = true;
    const r = await upload(ADMIN + "/certs", f);
    $("certs-submit").disabled = false;
    say("certs-msg", r.ok ? (r.data && r.data.Status) || "Accepted" : r.error, r.ok ? "info" : "error");
    if (r.ok) setTimer("certs", loadCerts, 300);
  });

  // license

  function renderLicense(d) {
    const dl = $("license-info");
    dl.replaceChildren();
    for (const [k, v] of Object.entries(d || {})) {
      dl.append(el("dt", {}, k), el("dd", { data: { field: k } }, typeof v === "object" ? JSON.stringify(v) : String(v)));
    }
  }
  async function loadLicense() {
    const r = await api("GET", ADMIN + "/license");
    renderLicense(r.ok ? r.data : null);
    say("license-none", r.ok ? "" : r.status === 404 ? `No license installed (${r.error})` : r.error, r.status === 404 ? "info" : "error");
  }
  $("license-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("license-submit").disabled = true;
    const r = await upload(ADMIN + "/license", formOf({ license: $("license-file").files[0] }));
    $("license-submit").disabled = false;
    if (!r.ok) {
      say("license-msg", r.error);
      return;
    }
    say("license-msg", "License installed", "ok");
    say("license-none", "");
    renderLicense(r.data);
  });

  // storage

  const STORAGE_FIELDS = {
    local: [],
    nfs: ["mount_options", "ip", "share"],
    aoe: ["device"],
    iscsi: ["target", "ip", "username", "password"],
    nbd: ["export_name", "ip", "port"],
  };
  function storageType() {
    const t = $("storage-type").value;
    for (const d of document.querySelectorAll("#storage-form [data-for]")) d.hidden = !d.dataset.for.split(" ").includes(t);
  }
  $("storage-type").addEventListener("change", storageType);
  async function loadStorage() {
    const r = await api("GET", ADMIN + "/storage");
    const cur = r.ok && r.data && r.data.storage;
    const options = (r.ok && r.data && r.data.options) || Object.keys(STORAGE_FIELDS);
    $("storage-current").textContent = cur
      ? Object.entries(cur)
          .filter(([k]) => k !== "password")
          .map(([k, v]) => `${k}: ${v}`)
          .join(", ")
      : r.status === 404
        ? `No storage setting stored yet (${r.error})`
        : r.error;
    const sel = $("storage-type");
    sel.replaceChildren(...options.map((o) => el("option", { value: o }, o)));
    if (cur) {
      sel.value = cur.type;
      for (const f of STORAGE_FIELDS[cur.type] || []) if (f !== "password") $("storage-" + f).value = cur[f] || "";
    }
    storageType();
  }
  $("storage-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const type = $("storage-type").value;
    const storage = { type };
    for (const f of STORAGE_FIELDS[type] || []) storage[f] = $("storage-" + f).value.trim();
    $("storage-submit").disabled = true;
    const r = await api("POST", ADMIN + "/storage", { form: formOf({ settings: JSON.stringify({ storage }) }) });
    $("storage-submit").disabled = false;
    say("storage-msg", r.ok ? `${(r.data && r.data.Status) || "Accepted"}: applied at the next boot` : r.error, r.ok ? "ok" : "error");
    if (r.ok) setTimeout(loadStorage, 500);
  });

  // backup

  async function loadBackup() {
    const [r, log] = await Promise.all([api("GET", ADMIN + "/backup"), api("GET", ADMIN + "/backup/log")]);
    const d = r.ok ? r.data || {} : {};
    const st = d.status || (r.status === 404 ? "none" : "");
    $("backup-status").textContent = st === "none" ? "no backup" : st;
    $("backup-status").dataset.status = st;
    $("backup-progress").hidden = st !== "running";
    $("backup-size").textContent = d.filesize || "";
    $("backup-sha256").textContent = d.sha256 || "";
    $("backup-download").disabled = st !== "success";
    $("backup-log").textContent = log.ok ? log.text : "";
    if (!r.ok && r.status !== 404) say("backup-msg", r.error);
    if (st === "running") setTimer("backup", loadBackup, 700);
    $("screen-backup").dataset.loaded = "1";
  }
  async function backupAction(action) {
    say("backup-msg", "");
    const r = await api("POST", ADMIN + "/backup", { form: formOf({ action }) });
    if (!r.ok) say("backup-msg", r.error);
    else say("backup-msg", (r.data && r.data.Status) || "Accepted", "info");
    setTimer("backup", loadBackup, 200);
  }
  $("backup-start").addEventListener("click", () => backupAction("START"));
  $("backup-stop").addEventListener("click", async () => {
    if (await ask("Stop the running backup, or delete the stored backup.tar?", "Stop / delete")) backupAction("STOP");
  });
  $("backup-download").addEventListener("click", (e) => download(ADMIN + "/backup/download", "backup.tar", "backup-msg", e.currentTarget));
  $("restore-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const file = $("restore-file").files[0];
    if (!file) return;
    if (!(await ask(`Restore ${file.name}? It replaces the current state with the archive's.`, "Restore"))) return;
    $("restore-submit").disabled = true;
    say("restore-msg", "");
    const r = await upload(ADMIN + "/backup/restore", formOf({ archive: file }), $("restore-progress"), $("restore-text"));
    $("restore-submit").disabled = false;
    say("restore-msg", r.ok ? `Restored (${(r.data && r.data.Status) || r.status})` : r.error, r.ok ? "ok" : "error");
  });

  // plans and operations

  function schedule(s) {
    if (!s) return "";
    if (s.disabled) return "disabled";
    if (s.cron) return "cron " + s.cron;
    if (s.every_hours) return `every ${s.every_hours} h`;
    return JSON.stringify(s);
  }
  async function loadPlans() {
    const r = await api("GET", "/1.0/plans?recursion=1");
    const body = $("plans-table").tBodies[0];
    body.replaceChildren();
    say("plans-msg", r.ok ? "" : r.error);
    const plans = (r.ok && r.data && r.data.metadata) || [];
    $("plans-empty").hidden = !r.ok || plans.length > 0;
    for (const p of plans) {
      const c = p.config || {};
      const s = p.state || {};
      const lb = s.last_backup;
      const result = lb ? el("span", { class: "pill", data: { status: String(lb.status).toLowerCase() } }, lb.status) : "never run";
      body.append(
        el(
          "tr",
          { data: { plan: c.id } },
          el("td", { class: "mono" }, c.id),
          el("td", {}, schedule(c.schedule)),
          el("td", { class: "mono" }, (c.destination && c.destination.path) || ""),
          el("td", { data: { label: "result" } }, result, lb && lb.error ? el("div", { class: "msg", data: { kind: "error" } }, lb.error) : null),
          el("td", {}, lb ? `${fmtTime(lb.started)} (${[fmtMs(lb.duration_ms), lb.size ? fmtBytes(lb.size) : ""].filter(Boolean).join(", ")})` : ""),
          el("td", {}, fmtTime(s.next_run)),
          el("td", {}, s.backups !== undefined ? `${s.backups} (${fmtBytes(s.backups_size)})` : ""),
          el("td", {}, el("button", { type: "button", class: "ghost small", data: { run: c.id }, onclick: runPlan }, "Run now")),
        ),
      );
    }
    $("screen-plans").dataset.loaded = "1";
  }
  async function runPlan(e) {
    const id = e.currentTarget.dataset.run;
    const r = await api("POST", `/1.0/plans/${encodeURIComponent(id)}/:run`);
    say("plans-msg", r.ok ? `Queued: ${r.data.operation}` : r.error, r.ok ? "info" : "error");
    if (r.ok) setTimer("plans", loadPlans, 1500);
  }
  $("plans-refresh").addEventListener("click", loadPlans);

  async function loadOperations() {
    // steward's own history (with each archive's path and size); Backrest's GetOperations
    // carries only what its protos define.
    const r = await api("GET", "/1.0/operations?recursion=1");
    const body = $("ops-table").tBodies[0];
    body.replaceChildren();
    say("ops-msg", r.ok ? "" : r.error);
    const listed = (r.ok && r.data && Array.isArray(r.data.metadata) && r.data.metadata) || [];
    const ops = listed.slice().sort((a, b) => Number(b.id) - Number(a.id)).slice(0, 50);
    $("ops-empty").hidden = !r.ok || ops.length > 0;
    for (const op of ops) {
      const kindKey = Object.keys(op).find((k) => /^operation[A-Z]/.test(k)) || "";
      const kind = kindKey.replace(/^operation/, "");
      const detail = op[kindKey] || {};
      const status = String(op.status || "").replace(/^STATUS_/, "");
      const took = op.unixTimeEndMs ? fmtMs(Number(op.unixTimeEndMs) - Number(op.unixTimeStartMs)) : "";
      const bits = [];
      if (detail.size) bits.push(fmtBytes(detail.size));
      if (detail.path) bits.push(detail.path);
      if (Array.isArray(detail.forgotten)) bits.push(`${detail.forgotten.length} forgotten`);
      if (op.displayMessage) bits.push(op.displayMessage);
      body.append(
        el(
          "tr",
          { data: { op: op.id, status: status.toLowerCase() } },
          el("td", {}, op.id),
          el("td", { class: "mono" }, op.planId || ""),
          el("td", {}, kind),
          el("td", {}, el("span", { class: "pill", data: { status: status.toLowerCase() } }, status)),
          el("td", {}, fmtTime(op.unixTimeStartMs)),
          el("td", {}, took),
          el("td", { class: "wrap" }, bits.join(" · ")),
        ),
      );
    }
    $("screen-operations").dataset.loaded = "1";
  }
  $("ops-refresh").addEventListener("click", loadOperations);

  // support, reboot

  $("logs-download").addEventListener("click", (e) => download(ADMIN + "/logs", "logs.tar.gz", "support-msg", e.currentTarget));
  $("debug-download").addEventListener("click", (e) => download(ADMIN + "/debug", "debug-bundle.tar", "support-msg", e.currentTarget));

  $("reboot-button").addEventListener("click", async () => {
    if (!(await ask("Reboot the system now? It makes a backup of its state first.", "Reboot"))) {
      say("reboot-msg", "Not rebooted.", "info");
      return;
    }
    const r = await api("GET", ADMIN + "/reboot");
    say("reboot-msg", r.ok ? `${(r.data && r.data.Status) || r.status}: the system is rebooting.` : r.error, r.ok ? "ok" : "error");
  });

  // --- start ---------------------------------------------------------------------------

  window.addEventListener("hashchange", route);
  if (token) loadTop();
  route();
})();
