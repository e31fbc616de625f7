// Cycle's container-backups API as a client generated from Cycle's own OpenAPI bundle sees
// steward: openapi-typescript types (build/cycle.d.ts, from build/bundle.json) and the
// openapi-fetch runtime, with every response validated against the bundle's schema for its
// operation and status (ajv, JSON Schema 2020-12 as OpenAPI 3.1 uses). It runs the steward
// binary named by STEWARD_BIN on 127.0.0.1:0 with a fresh data dir and a copy of
// tests/fixtures/root, and walks list → get → restore → poll the job → logs → delete → poll,
// then the error cases (unknown backup, job and container; a bad key; a key without the
// capability). Every wait is bounded; the daemon is killed at the end. Prints
// "N checks, N failed" last and exits non-zero on any failure.
import createClient from "openapi-fetch";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { paths } from "./cycle.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, "../../../..");
const BIN = path.resolve(REPO, process.env.STEWARD_BIN || "target/debug/steward");
const LIMIT_MS = 120_000;
const TOKEN = "cycle-client-" + process.pid;

const bundle = JSON.parse(fs.readFileSync(path.join(HERE, "bundle.json"), "utf8"));
const addFormats = addFormatsModule as unknown as (a: Ajv2020) => void;
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addFormat("objectid", /^[0-9a-f]{24}$/);

let checks = 0;
let failures = 0;
function check(ok: boolean, what: string) {
  checks++;
  if (!ok) {
    failures++;
    console.error("FAIL:", what);
  }
}

/** Validates a response body against the bundle's schema for `path`, `method`, `status`. */
function conforms(apiPath: string, method: string, status: number, body: unknown) {
  const responses = bundle.paths[apiPath][method].responses;
  const response = responses[String(status)] ?? responses.default;
  const schema = response.content["application/json"].schema;
  const validate = ajv.compile(schema);
  const ok = validate(body) as boolean;
  check(ok, `${method.toUpperCase()} ${apiPath} ${status}: ${JSON.stringify(validate.errors)}\n  body: ${JSON.stringify(body).slice(0, 1500)}`);
}

let daemon: ChildProcess | null = null;
const work = fs.mkdtempSync(path.join(os.tmpdir(), "steward-cycle-"));
process.on("exit", () => {
  if (daemon && daemon.exitCode === null) daemon.kill("SIGKILL");
  fs.rmSync(work, { recursive: true, force: true });
});
setTimeout(() => {
  console.error(`over the ${LIMIT_MS / 1000} s limit, giving up`);
  console.log(`${checks} checks, ${failures + 1} failed`);
  process.exit(1);
}, LIMIT_MS).unref();

function start(): Promise<string> {
  const root = path.join(work, "root");
  fs.cpSync(path.join(REPO, "tests/fixtures/root"), root, { recursive: true, verbatimSymlinks: true });
  const data = path.join(work, "data");
  return new Promise((resolve, reject) => {
    const d = spawn(BIN, ["serve", "--listen", "127.0.0.1:0", "--data", data, "--root", root], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    daemon = d;
    const timer = setTimeout(() => reject(new Error("steward did not say where it listens within 15 s")), 15_000);
    let out = "";
    d.stdout!.on("data", (chunk) => {
      out += chunk;
      const m = /listening on (https:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    d.on("exit", (code) => reject(new Error(`steward exited (${code})`)));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const base = await start();
  // Set up the box the way its owner does: the token, a plan and a plan's backup (steward's
  // own surfaces; Cycle's API has no call that makes a backup).
  const setup = await fetch(`${base}/api/v1/admin/setup`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: `newtoken=${TOKEN}`,
  });
  check(setup.status === 200, `setup: ${setup.status}`);
  const owner = { Authorization: `Bearer ${TOKEN}` };
  const plan = { id: "nightly", sources: { state: true, applications: ["app"] }, destination: { path: "/srv/backups/nightly" } };
  const made = await fetch(`${base}/1.0/plans`, { method: "POST", headers: owner, body: JSON.stringify(plan) });
  check(made.status === 200, `plan: ${made.status} ${await made.text()}`);
  const ran = await fetch(`${base}/v1.Backrest/Backup`, {
    method: "POST",
    headers: { ...owner, "Content-Type": "application/json" },
    body: JSON.stringify({ value: "nightly" }),
  });
  check(ran.status === 200, `backup: ${ran.status} ${await ran.text()}`);

  const cycle = createClient<paths>({ baseUrl: base, headers: { ...owner, "X-Hub-Id": "ignored-by-steward" } });
  const containerId = "app";

  // list → get
  const list = await cycle.GET("/v1/containers/{containerId}/backups", { params: { path: { containerId } } });
  conforms("/v1/containers/{containerId}/backups", "get", list.response.status, list.data ?? list.error);
  const backups = list.data?.data ?? [];
  check(backups.length === 1, `one backup listed, got ${backups.length}`);
  const backup = backups[0];
  const integration = list.data?.includes?.integrations?.[backup.target.integration_id as string];
  check(integration !== undefined, "the backup's integration is in includes under its id");
  const backupId = backup.id;
  const one = await cycle.GET("/v1/containers/{containerId}/backups/{backupId}", { params: { path: { containerId, backupId } } });
  conforms("/v1/containers/{containerId}/backups/{backupId}", "get", one.response.status, one.data ?? one.error);
  check(one.data?.data.id === backupId, "get returns the listed backup");

  // restore → poll the job to completion
  const restore = await cycle.POST("/v1/containers/{containerId}/backups/{backupId}/tasks", {
    params: { path: { containerId, backupId } },
    body: { action: "restore", contents: { instance_id: backup.instance_id } },
  });
  conforms("/v1/containers/{containerId}/backups/{backupId}/tasks", "post", restore.response.status, restore.data ?? restore.error);
  check(restore.response.status === 202, `restore: ${restore.response.status}`);
  await trackJob(cycle, restore.data!.data.job!.id, "restore");

  // logs
  const logs = await cycle.GET("/v1/containers/{containerId}/backups/{backupId}/logs", { params: { path: { containerId, backupId } } });
  conforms("/v1/containers/{containerId}/backups/{backupId}/logs", "get", logs.response.status, logs.data ?? logs.error);
  check((logs.data?.data ?? []).map((l) => l.type).join(",") === "backup,restore", "one log per run: backup, restore");

  // the error cases, each in the spec's envelope with its code
  const missing = "0000000000000000000fffff";
  const noBackup = await cycle.GET("/v1/containers/{containerId}/backups/{backupId}", { params: { path: { containerId, backupId: missing } } });
  conforms("/v1/containers/{containerId}/backups/{backupId}", "get", noBackup.response.status, noBackup.error);
  check(noBackup.response.status === 404 && (noBackup.error as any)?.error?.code === "404.container.backup", "unknown backup: 404.container.backup");
  const noContainer = await cycle.GET("/v1/containers/{containerId}/backups", { params: { path: { containerId: "nope" } } });
  conforms("/v1/containers/{containerId}/backups", "get", noContainer.response.status, noContainer.error);
  check((noContainer.error as any)?.error?.code === "404.container", "unknown container: 404.container");
  const noJob = await cycle.GET("/v1/jobs/{jobId}", { params: { path: { jobId: missing } } });
  conforms("/v1/jobs/{jobId}", "get", noJob.response.status, noJob.error);
  check((noJob.error as any)?.error?.code === "404.job", "unknown job: 404.job");
  const badKey = createClient<paths>({ baseUrl: base, headers: { Authorization: "Bearer not-a-key" } });
  const refused = await badKey.GET("/v1/containers/{containerId}/backups", { params: { path: { containerId } } });
  conforms("/v1/containers/{containerId}/backups", "get", refused.response.status, refused.error);
  check(refused.response.status === 401 && (refused.error as any)?.error?.code === "401.auth-invalid", "a bad key: 401.auth-invalid");
  // A key made with Cycle's capability name can view but not delete.
  const keyAnswer = await fetch(`${base}/1.0/keys`, {
    method: "POST",
    headers: owner,
    body: JSON.stringify({ name: "viewer", capabilities: ["containers-backups-view"] }),
  });
  const keyBody: any = await keyAnswer.json();
  check(keyAnswer.status === 200 || keyAnswer.status === 201, `key with a Cycle capability name: ${keyAnswer.status} ${JSON.stringify(keyBody)}`);
  const viewer = createClient<paths>({ baseUrl: base, headers: { Authorization: `Bearer ${keyBody?.metadata?.secret}` } });
  const viewed = await viewer.GET("/v1/containers/{containerId}/backups", { params: { path: { containerId } } });
  check(viewed.response.status === 200, `the viewer lists: ${viewed.response.status}`);
  const weak = await viewer.DELETE("/v1/containers/{containerId}/backups/{backupId}", { params: { path: { containerId, backupId } } });
  conforms("/v1/containers/{containerId}/backups/{backupId}", "delete", weak.response.status, weak.error);
  const weakError = (weak.error as any)?.error;
  check(
    weak.response.status === 403 && weakError?.code === "403.permissions" && weakError?.extra?.capability === "containers-backups-manage",
    `a key without the capability: 403.permissions naming it, got ${weak.response.status} ${JSON.stringify(weak.error)}`,
  );

  // delete → poll; the record then reads deleted
  const del = await cycle.DELETE("/v1/containers/{containerId}/backups/{backupId}", { params: { path: { containerId, backupId } } });
  conforms("/v1/containers/{containerId}/backups/{backupId}", "delete", del.response.status, del.data ?? del.error);
  check(del.response.status === 202, `delete: ${del.response.status}`);
  await trackJob(cycle, del.data!.data.job!.id, "delete");
  const gone = await cycle.GET("/v1/containers/{containerId}/backups/{backupId}", { params: { path: { containerId, backupId } } });
  conforms("/v1/containers/{containerId}/backups/{backupId}", "get", gone.response.status, gone.data ?? gone.error);
  check(gone.data?.data.state.current === "deleted", `deleted: ${JSON.stringify(gone.data?.data.state)}`);
}

/** What Cycle's own client does with a job descriptor: poll until the job ends. */
async function trackJob(cycle: ReturnType<typeof createClient<paths>>, jobId: string, what: string) {
  for (let i = 0; i < 400; i++) {
    const r = await cycle.GET("/v1/jobs/{jobId}", { params: { path: { jobId } } });
    conforms("/v1/jobs/{jobId}", "get", r.response.status, r.data ?? r.error);
    const state = r.data?.data.state.current;
    if (state === "completed") {
      check(r.data!.data.tasks.every((t) => t.state.current === "completed"), `${what}: every task completed`);
      return;
    }
    if (state === "error" || !r.data) {
      check(false, `${what} job: ${JSON.stringify(r.data ?? r.error)}`);
      return;
    }
    await sleep(25);
  }
  check(false, `${what} job did not complete within 10 s`);
}

main()
  .catch((e) => check(false, String(e?.stack ?? e)))
  .finally(() => {
    console.log(`${checks} checks, ${failures} failed`);
    process.exit(failures ? 1 : 0);
  });
