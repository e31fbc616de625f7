// End-to-end test of the admin dashboard in headless Chromium (Debian's package), driven by
// playwright-core. It builds nothing: it runs the steward binary named by STEWARD_BIN
// (default target/debug/steward) on a fresh data dir and a copy of tests/fixtures/root,
// on loopback only, and drives the page as an owner would. Screenshots of each screen go to
// target/e2e-screenshots/. Every wait is bounded; the daemon is killed at the end, also on
// failure. Prints "N passed, N failed" last.
import { chromium } from "playwright-core";
import { spawn, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = path.resolve(REPO, process.env.STEWARD_BIN || "target/debug/steward");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = path.join(REPO, "target/e2e-screenshots");
const DEV_KEYS = path.join(REPO, "board/dev-keys");
const TOTAL_LIMIT_MS = Number(process.env.E2E_LIMIT_MS || 150_000);
const STEP_MS = 15_000;
const TOKEN = "e2e-Token_" + process.pid;

const started = Date.now();
const work = fs.mkdtempSync(path.join(os.tmpdir(), "steward-e2e-"));
let daemon = null;
let browser = null;
let passed = 0;
let failed = 0;
const daemonLog = [];

function log(...a) {
  console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s]`, ...a);
}

function killDaemon() {
  if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
    try {
      daemon.kill("SIGKILL");
    } catch (_) {
      /* already gone */
    }
  }
}
process.on("exit", () => {
  killDaemon();
  fs.rmSync(work, { recursive: true, force: true });
});
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    killDaemon();
    process.exit(130);
  });
}
// The whole run is bounded, whatever hangs.
const watchdog = setTimeout(() => {
  console.error(`e2e: over the ${TOTAL_LIMIT_MS / 1000} s limit, giving up`);
  console.error(daemonLog.slice(-20).join("\n"));
  killDaemon();
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
}, TOTAL_LIMIT_MS);
watchdog.unref();

function assert(cond, what) {
  if (!cond) throw new Error(what);
}

/** Starts `steward serve` on 127.0.0.1:0 and resolves to its https base URL. */
function startDaemon(root, data) {
  return new Promise((resolve, reject) => {
    daemon = spawn(BIN, ["serve", "--listen", "127.0.0.1:0", "--data", data, "--root", root], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const timer = setTimeout(() => reject(new Error("steward did not print its listening line within 15 s")), 15_000);
    let out = "";
    daemon.stdout.on("data", (chunk) => {
      out += chunk;
      const m = /listening on (https:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    daemon.stderr.on("data", (chunk) => {
      for (const line of String(chunk).split("\n")) if (line) daemonLog.push(line);
      if (daemonLog.length > 500) daemonLog.splice(0, daemonLog.length - 500);
    });
    daemon.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    daemon.on("exit", (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`steward exited early (${code ?? sig}): ${daemonLog.slice(-5).join(" | ")}`));
    });
  });
}

/** A signed update package made with the dev keys, as tests/it/update.rs makes them. */
function packUpdate(version) {
  const payload = path.join(work, "payload.img");
  // 3 MiB of pseudo-random bytes: big enough for upload progress events.
  const buf = Buffer.alloc(3 << 20);
  let x = 2463534242;
  for (let i = 0; i < buf.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf[i] = x & 0xff;
  }
  fs.writeFileSync(payload, buf);
  const changelog = path.join(work, "CHANGELOG.md");
  fs.writeFileSync(changelog, `# Changelog\n## ${version}\n* e2e test release\n`);
  const out = path.join(work, `update-${version}.enc`);
  execFileSync(
    BIN,
    [
      "pack-update",
      "--signing-key", path.join(DEV_KEYS, "signing.key"),
      "--encryption-key", path.join(DEV_KEYS, "update.key"),
      "--version", version,
      "--changelog", changelog,
      "--builddate", "1800000000",
      "--payload", payload,
      "--out", out,
    ],
    { stdio: ["ignore", "ignore", "pipe"], timeout: 30_000 },
  );
  return out;
}

const sha256 = (file) => createHash("sha256").update(fs.readFileSync(file)).digest("hex");

async function main() {
  assert(fs.existsSync(BIN), `no steward binary at ${BIN} (set STEWARD_BIN)`);
  assert(fs.existsSync(CHROMIUM), `no Chromium at ${CHROMIUM} (apt-get install chromium)`);
  fs.mkdirSync(SHOTS, { recursive: true });
  for (const f of fs.readdirSync(SHOTS)) if (f.endsWith(".png")) fs.rmSync(path.join(SHOTS, f));

  const root = path.join(work, "root");
  fs.cpSync(path.join(REPO, "tests/fixtures/root"), root, { recursive: true, verbatimSymlinks: true });
  fs.mkdirSync(path.join(root, "srv/backups"), { recursive: true });
  const base = await startDaemon(root, path.join(work, "data"));
  log(`steward ${BIN} at ${base}`);
  const pkg = packUpdate("1.3.0");

  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, timeout: 30_000 });
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    acceptDownloads: true,
    viewport: { width: 1280, height: 860 },
  });
  context.setDefaultTimeout(STEP_MS);
  const page = await context.newPage();
  const problems = [];
  page.on("console", (m) => {
    if (m.type() === "error" || /Content Security Policy/i.test(m.text())) {
      // The API's own 4xx answers show up as failed resource loads; everything else counts.
      if (!/Failed to load resource: the server responded with a status of (4\d\d)/.test(m.text())) problems.push(m.text());
    }
  });
  page.on("pageerror", (e) => problems.push("page error: " + e.message));
  const urls = [];
  page.on("request", (r) => urls.push(r.url()));
  const api = context.request;
  const auth = { Authorization: "Bearer " + TOKEN };
  let shot = 0;
  const screenshot = async (name, p = page) => {
    shot++;
    const file = path.join(SHOTS, `${String(shot).padStart(2, "0")}-${name}.png`);
    await p.screenshot({ path: file, fullPage: true });
  };
  const go = async (screen) => {
    await page.click(`#nav [data-nav="${screen}"]`);
    await page.waitForSelector(`#screen-${screen}:not([hidden])`);
  };
  const text = (sel) => page.textContent(sel).then((t) => (t || "").trim());

  const steps = [
    ["the page is served with one strict CSP and its assets load", async () => {
      const r = await api.get(base + "/", { headers: { Accept: "text/html" } });
      assert(r.status() === 200, `GET / answered ${r.status()}`);
      const csps = r.headersArray().filter((h) => h.name.toLowerCase() === "content-security-policy").map((h) => h.value);
      assert(csps.some((c) => c.includes("script-src 'self'")), `no dashboard CSP on GET /: ${JSON.stringify(csps)}`);
      assert(
        csps.length === 1,
        `GET / carries ${csps.length} Content-Security-Policy headers (${JSON.stringify(csps)}); a browser enforces all of them, so default-src 'none' blocks the page's own script and style`,
      );
      for (const a of ["index.html", "app.js", "app.css"]) {
        const ar = await api.get(`${base}/ui/${a}`);
        assert(ar.status() === 200, `/ui/${a} answered ${ar.status()}`);
      }
    }],
    ["first run: set up the token", async () => {
      await page.goto(base + "/", { waitUntil: "load" });
      await page.waitForSelector("#screen-signin:not([hidden])");
      await screenshot("signin");
      await page.click("#goto-setup");
      await page.waitForSelector("#screen-setup:not([hidden])");
      await page.fill("#setup-token", TOKEN);
      await page.fill("#setup-token2", TOKEN + "x");
      await page.click("#setup-submit");
      await page.waitForSelector("#setup-msg:not([hidden])");
      assert((await text("#setup-msg")) === "The two tokens differ.", "mismatch not caught");
      await page.fill("#setup-token2", TOKEN);
      await screenshot("setup");
      await page.click("#setup-submit");
      await page.waitForSelector('body[data-screen="status"]');
    }],
    ["sign out; setup is closed now; a wrong token is refused in the API's words; sign in", async () => {
      await page.click("#signout");
      await page.waitForSelector("#screen-signin:not([hidden])");
      assert((await page.evaluate(() => sessionStorage.length)) === 0, "token left in session storage after sign-out");
      await page.click("#goto-setup");
      await page.fill("#setup-token", "someone-else");
      await page.fill("#setup-token2", "someone-else");
      await page.click("#setup-submit");
      await page.waitForSelector("#setup-exists:not([hidden])"); // the API pauses 2 s first
      assert((await text("#setup-msg")) === "Authentication error", "setup error: " + (await text("#setup-msg")));
      await page.click("#setup-exists a");
      await page.waitForSelector("#screen-signin:not([hidden])");
      await page.fill("#signin-token", "not-the-token");
      await page.click("#signin-submit");
      await page.waitForSelector("#signin-msg:not([hidden])");
      const msg = await text("#signin-msg");
      assert(msg === "Authentication error", `sign-in error reads ${JSON.stringify(msg)}`);
      await screenshot("signin-refused");
      await page.fill("#signin-token", TOKEN);
      await page.click("#signin-submit");
      await page.waitForSelector('body[data-screen="status"][data-signed-in="1"]');
    }],
    ["status shows version, build, health gauges and services", async () => {
      await page.waitForSelector('#screen-status[data-loaded="1"]');
      await page.waitForSelector('#gauge-disk[data-value]:not([data-value=""])');
      assert((await text("#status-version")) === "1.2.3", "version: " + (await text("#status-version")));
      assert(/^\d+ %$/.test(await text("#health-disk")), "disk: " + (await text("#health-disk")));
      assert(/^\d+ %$/.test(await text("#health-memory")), "memory: " + (await text("#health-memory")));
      assert(/^\d+\.\d\d$/.test(await text("#health-load")), "load: " + (await text("#health-load")));
      const mem = await page.getAttribute("#gauge-memory", "data-value");
      assert(mem === "26", `memory gauge ${mem}, the fixture says 26 %`);
      assert(/of/.test(await text("#health-disk-detail")), "no disk detail");
      assert((await page.$$("#services-list li[data-service]")).length >= 2, "no services listed");
      assert(/\d{4}-\d\d-\d\d/.test(await text("#status-build")), "build date: " + (await text("#status-build")));
      await screenshot("status");
    }],
    ["upload an update built by pack-update and watch it reach success", async () => {
      await go("update");
      await page.waitForSelector('#update-status[data-status="none"]');
      await page.setInputFiles("#update-file", pkg);
      await page.click("#update-submit");
      await page.waitForSelector('#update-status[data-status="success"]', { timeout: 60_000 });
      assert((await page.getAttribute("#update-upload-progress", "data-value")) === "100", "upload bar not at 100");
      assert((await page.getAttribute("#update-progress", "data-value")) === "100", "update bar not at 100");
      assert(/successful/.test(await text("#update-log")), "log: " + (await text("#update-log")));
      await page.waitForSelector("#update-msg:has-text('version 1.3.0')");
      await screenshot("update");
    }],
    ["network: the API's validation message; change the hostname and confirm; an unconfirmed change rolls back", async () => {
      await go("network");
      await page.waitForSelector('#screen-network[data-loaded="1"]');
      assert((await page.inputValue("#net-interface")) === "eth0", "interface not filled from the API");
      await page.fill("#net-hostname", "bad host");
      await page.click("#net-submit");
      await page.waitForSelector('#net-msg[data-kind="error"]:not([hidden])');
      const err = await text("#net-msg");
      assert(err === "Missing or invalid string for option: hostname. Allowed: a-zA-Z0-9.-", "error: " + err);
      await screenshot("network-error");
      await page.fill("#net-hostname", "e2e-box.lan");
      await page.fill("#net-timeout", "60");
      await page.click("#net-submit");
      await page.waitForSelector("#net-confirm-panel:not([hidden])");
      const left = Number(await page.getAttribute("#net-countdown", "data-value"));
      assert(left > 0 && left <= 60, "countdown " + left);
      const pending = await (await api.get(base + "/1.0/system/network", { headers: auth })).json();
      assert(pending.metadata.state.configuration_in_process === true, "no change pending on the box");
      await screenshot("network-confirm");
      await page.click("#net-confirm");
      await page.waitForSelector("#net-result:has-text('Confirmed')");
      assert(await page.isHidden("#net-confirm-panel"), "confirm panel still shown");
      const after = await (await api.get(base + "/1.0/system/network", { headers: auth })).json();
      assert(after.metadata.state.configuration_in_process === false, "still pending after confirm");
      const settings = await (await api.get(base + "/api/v1/admin/settings", { headers: auth })).json();
      assert(settings.network.hostname === "e2e-box.lan", "hostname on the box: " + JSON.stringify(settings));
      await screenshot("network");
      // Unconfirmed, the change rolls back when the countdown ends.
      await page.fill("#net-hostname", "never-confirmed");
      await page.fill("#net-timeout", "2");
      await page.click("#net-submit");
      await page.waitForSelector("#net-confirm-panel:not([hidden])");
      await page.waitForSelector("#net-result:has-text('Not confirmed in time')", { timeout: 20_000 });
      const back = await (await api.get(base + "/api/v1/admin/settings", { headers: auth })).json();
      assert(back.network.hostname === "e2e-box.lan", "not rolled back: " + JSON.stringify(back));
      assert((await page.inputValue("#net-hostname")) === "e2e-box.lan", "the form does not show the rolled-back hostname");
    }],
    ["backup: start, watch it finish, download it, restore it", async () => {
      await go("backup");
      await page.waitForSelector('#screen-backup[data-loaded="1"]');
      await page.click("#backup-start");
      await page.waitForSelector('#backup-status[data-status="success"]', { timeout: 30_000 });
      const sum = await text("#backup-sha256");
      assert(/^[0-9a-f]{64}$/.test(sum), "sha256: " + sum);
      const [dl] = await Promise.all([page.waitForEvent("download"), page.click("#backup-download")]);
      assert(dl.suggestedFilename() === "backup.tar", "file name " + dl.suggestedFilename());
      const file = path.join(work, "backup.tar");
      await dl.saveAs(file);
      assert(sha256(file) === sum, "the downloaded backup does not match the sha256 the API gave");
      await page.waitForSelector("#backup-msg:has-text('Saved backup.tar')");
      await screenshot("backup");
      // Restore what was just downloaded: upload with progress, after a confirmation.
      await page.setInputFiles("#restore-file", file);
      await page.click("#restore-submit");
      await page.waitForSelector("#confirm-dialog[open]");
      await page.click("#confirm-ok");
      await page.waitForSelector('#restore-msg[data-kind="ok"]:not([hidden])', { timeout: 30_000 });
      assert((await text("#restore-msg")) === "Restored (200 OK)", "restore: " + (await text("#restore-msg")));
      assert((await page.getAttribute("#restore-progress", "data-value")) === "100", "restore upload bar not at 100");
      await screenshot("backup-restored");
    }],
    ["plans and operations list a plan's last result", async () => {
      const plan = {
        id: "nightly",
        sources: { state: true, applications: ["app"] },
        destination: { path: "/srv/backups" },
        schedule: { cron: "0 3 * * *" },
        retention: { keep_last_n: 3 },
      };
      const made = await api.post(base + "/1.0/plans", { headers: auth, data: plan });
      assert(made.ok(), "plan not made: " + (await made.text()));
      await go("plans");
      await page.waitForSelector('#plans-table tr[data-plan="nightly"]');
      await page.click('#plans-table [data-run="nightly"]');
      await page.waitForSelector('#plans-table tr[data-plan="nightly"] .pill[data-status="success"]', { timeout: 20_000 });
      await screenshot("plans");
      await go("operations");
      await page.waitForSelector('#ops-table tr[data-status="success"]');
      await screenshot("operations");
    }],
    ["the other screens render: certificate, license, storage, logs, token, reboot (cancelled)", async () => {
      await go("certs");
      await page.waitForSelector('#certs-status[data-status="none"]');
      await screenshot("certs");
      await go("license");
      await page.waitForSelector("#license-none:not([hidden])");
      assert((await text("#license-none")) === "No license installed (404 Not Found)", "license: " + (await text("#license-none")));
      await screenshot("license");
      await go("storage");
      await page.waitForSelector("#storage-type option[value=nfs]", { state: "attached" });
      await page.selectOption("#storage-type", "nfs");
      await page.click("#storage-submit");
      await page.waitForSelector('#storage-msg[data-kind="error"]:not([hidden])');
      const serr = await text("#storage-msg");
      assert(serr === "Invalid string length for option: mount_options. Allowed: >= 3 and <= 255", "storage: " + serr);
      await screenshot("storage");
      await go("support");
      const [logs] = await Promise.all([page.waitForEvent("download"), page.click("#logs-download")]);
      assert(logs.suggestedFilename() === "logs.tar.gz", "logs file " + logs.suggestedFilename());
      await page.waitForSelector("#support-msg:has-text('Saved logs.tar.gz')");
      await screenshot("support");
      await go("token");
      await screenshot("token");
      await go("reboot");
      await page.click("#reboot-button");
      await page.waitForSelector("#confirm-dialog[open]");
      await screenshot("reboot-confirm");
      await page.click("#confirm-cancel");
      await page.waitForSelector("#reboot-msg:has-text('Not rebooted')");
    }],
    ["phone width: one column", async () => {
      // Same tab (the token is in this tab's session storage), at a phone's size.
      await page.setViewportSize({ width: 390, height: 844 });
      try {
        assert(await page.isHidden("#nav"), "navigation not folded on a phone");
        await page.click("#nav-toggle");
        await go("status");
        await page.waitForSelector('#gauge-disk[data-value]:not([data-value=""])');
        const width = await page.evaluate(() => document.documentElement.scrollWidth);
        assert(width <= 390, `the page is ${width} px wide on a 390 px screen`);
        assert(await page.isHidden("#nav"), "navigation stays open after choosing a screen");
        const [sys, svc] = await Promise.all(
          ["#screen-status .grid > .card:nth-child(1)", "#screen-status .grid > .card:nth-child(2)"].map((s) => page.locator(s).boundingBox()),
        );
        assert(sys && svc && svc.y >= sys.y + sys.height && Math.abs(svc.x - sys.x) < 2, "status cards are not in one column");
        await screenshot("status-phone");
        await page.click("#nav-toggle");
        await page.waitForSelector("#nav:visible");
        await screenshot("nav-phone");
        await go("network");
        await screenshot("network-phone");
      } finally {
        await page.setViewportSize({ width: 1280, height: 860 });
      }
    }],
    ["sign out", async () => {
      await page.click("#signout");
      await page.waitForSelector('#screen-signin:not([hidden])');
      assert((await page.evaluate(() => sessionStorage.length)) === 0, "token left in session storage");
      await page.goto(base + "/#/status");
      await page.waitForSelector('#screen-signin:not([hidden])');
      await screenshot("signed-out");
    }],
    ["the token never appeared in a URL, and the page logged no CSP violation or error", async () => {
      const leaked = urls.filter((u) => u.includes(TOKEN) || /[?&](token|hash)=/.test(u));
      assert(leaked.length === 0, "token in URLs: " + leaked.join(", "));
      assert(problems.length === 0, "page problems:\n  " + problems.join("\n  "));
    }],
  ];

  for (const [name, fn] of steps) {
    const t0 = Date.now();
    try {
      await fn();
      passed++;
      log(`ok   ${name} (${Date.now() - t0} ms)`);
    } catch (e) {
      failed++;
      log(`FAIL ${name} (${Date.now() - t0} ms)\n     ${String(e.message || e).split("\n").join("\n     ")}`);
      await screenshot("FAILED").catch(() => {});
      if (problems.length) log("page problems so far:\n  " + problems.join("\n  "));
      break; // the steps build on each other
    }
  }
  const skipped = steps.length - passed - failed;
  await browser.close().catch(() => {});
  browser = null;
  killDaemon();
  log(`screenshots in ${path.relative(REPO, SHOTS)}/ (${fs.readdirSync(SHOTS).length} files)`);
  console.log(`e2e: ${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ""));
  return failed === 0 && skipped === 0;
}

main()
  .then((ok) => {
    if (!ok && daemonLog.length) console.error("steward's last log lines:\n" + daemonLog.slice(-15).join("\n"));
    process.exit(ok ? 0 : 1);
  })
  .catch(async (e) => {
    console.error("e2e:", e && e.stack ? e.stack : e);
    if (browser) await browser.close().catch(() => {});
    killDaemon();
    console.log(`e2e: ${passed} passed, ${failed + 1} failed`);
    process.exit(1);
  });
