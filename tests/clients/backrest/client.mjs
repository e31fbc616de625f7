// Backrest's service through @connectrpc/connect-node with messages generated from upstream's
// protos (protoc-gen-es): every RPC steward serves, in binary and in JSON. Strict: the JSON
// reader refuses unknown fields, and a binary answer carrying fields the protos do not define
// (protobuf-es keeps them in $unknown) fails the check.
//   node client.mjs URL TOKEN SNAPSHOT_ID
import { createClient, ConnectError, Code } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Backrest, DoRepoTaskRequest_Task } from "./build/gen/v1/service_pb.js";
import { Authentication } from "./build/gen/v1/authentication_pb.js";

const [url, token, snapshot] = process.argv.slice(2);
let passed = 0, failed = 0;

function unknownFields(m, at = "") {
  if (m === null || typeof m !== "object") return [];
  if (m instanceof Uint8Array) return [];
  const found = Array.isArray(m.$unknown) && m.$unknown.length ? [at || "(top)"] : [];
  for (const [k, v] of Object.entries(m)) {
    if (k === "$unknown" || k === "$typeName") continue;
    if (Array.isArray(v)) v.forEach((x, i) => found.push(...unknownFields(x, `${at}.${k}[${i}]`)));
    else if (v && typeof v === "object") found.push(...unknownFields(v, `${at}.${k}`));
  }
  return found;
}

async function check(name, fn) {
  try {
    const answer = await fn();
    const unknown = unknownFields(answer);
    if (unknown.length) throw new Error(`fields the protos do not define at ${unknown.join(", ")}`);
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e instanceof ConnectError ? `${Code[e.code]}: ${e.rawMessage}` : e.stack}`);
  }
}

function expect(cond, what) {
  if (!cond) throw new Error(what);
}

for (const binary of [true, false]) {
  const mode = binary ? "binary" : "json";
  const transport = (auth) =>
    createConnectTransport({
      baseUrl: url,
      httpVersion: "1.1",
      useBinaryFormat: binary,
      jsonOptions: { ignoreUnknownFields: false },
      nodeOptions: { rejectUnauthorized: false },
      interceptors: [(next) => async (req) => {
        if (auth) req.header.set("Authorization", `Bearer ${auth}`);
        return next(req);
      }],
    });
  const c = createClient(Backrest, transport(token));
  const auth = createClient(Authentication, transport(null));

  await check(`${mode} Backup`, async () => { await c.backup({ value: "p1" }); });
  await check(`${mode} GetConfig`, async () => {
    const r = await c.getConfig({});
    expect(r.repos[0]?.id === "local" && r.repos[0].guid.length === 32, "one repo, local, with a guid");
    expect(r.plans.some((p) => p.id === "p1" && p.repo === "local"), "plan p1");
    return r;
  });
  await check(`${mode} GetOperations`, async () => {
    const r = await c.getOperations({ selector: { planId: "p1" }, lastN: 20n });
    const backup = r.operations.find((o) => o.op.case === "operationBackup");
    expect(backup && backup.repoGuid.length === 32, "a backup with its repoGuid");
    return r;
  });
  await check(`${mode} ListSnapshots`, async () => {
    const r = await c.listSnapshots({ planId: "p1", repoId: "local" });
    expect(r.snapshots.length > 0 && r.snapshots[0].tags.includes("plan:p1"), "the plan's snapshots");
    return r;
  });
  await check(`${mode} ListSnapshotFiles`, async () => {
    const r = await c.listSnapshotFiles({ repoId: "local", snapshotId: snapshot, path: "/" });
    expect(r.entries.some((e) => e.type === "directory"), "directories at the top");
    return r;
  });
  await check(`${mode} GetSummaryDashboard`, async () => {
    const r = await c.getSummaryDashboard({});
    const p1 = r.planSummaries.find((s) => s.id === "p1");
    expect(p1 && p1.backupsSuccessLast30days > 0n && p1.recentBackups, "p1's summary");
    return r;
  });
  await check(`${mode} PathAutocomplete`, async () => {
    const r = await c.pathAutocomplete({ value: "/" });
    expect(r.values.length > 0, "paths");
    return r;
  });
  await check(`${mode} DoRepoTask CHECK`, async () => {
    const r = await c.doRepoTask({ repoId: "local", task: DoRepoTaskRequest_Task.CHECK });
    expect(r.operationId > 0n, "a check operation");
    return r;
  });
  await check(`${mode} Forget (retention)`, async () => c.forget({ repoId: "local", planId: "p1" }));
  await check(`${mode} ClearHistory`, async () => c.clearHistory({ onlyFailed: true }));
  await check(`${mode} Cancel of nothing`, async () => c.cancel({ operationId: 999n }));
  await check(`${mode} GetLogs`, async () => {
    let bytes = 0;
    for await (const chunk of c.getLogs({ ref: "op-1" })) {
      expect(unknownFields(chunk).length === 0, "a clean BytesValue");
      bytes += chunk.value.length;
    }
    expect(bytes > 0, "the log");
  });
  await check(`${mode} GetOperationEvents`, async () => {
    const abort = new AbortController();
    const events = c.getOperationEvents({}, { signal: abort.signal });
    for await (const e of events) {
      expect(e.event.case === "keepAlive", `the first event is a keep-alive, not ${e.event.case}`);
      expect(unknownFields(e).length === 0, "a clean event");
      abort.abort();
      break;
    }
  });
  await check(`${mode} RunCommand is unimplemented`, async () => {
    try {
      await c.runCommand({ repoId: "local", command: "snapshots" });
    } catch (e) {
      expect(e instanceof ConnectError && e.code === Code.Unimplemented, `unimplemented, not ${e}`);
      return;
    }
    throw new Error("RunCommand answered");
  });
  await check(`${mode} Login`, async () => {
    const r = await auth.login({ username: "admin", password: token });
    expect(r.token === token, "the token");
    const bad = await auth.login({ username: "admin", password: "wrong" }).catch((e) => e);
    expect(bad instanceof ConnectError && bad.code === Code.Unauthenticated, `unauthenticated, not ${bad}`);
    return r;
  });
  await check(`${mode} GetAuthInfo`, async () => {
    const r = await auth.getAuthInfo({});
    expect(r.authDriver === "local", "local");
    return r;
  });
  await check(`${mode} a wrong token is unauthenticated`, async () => {
    const e = await createClient(Backrest, transport("nope")).getConfig({}).catch((e) => e);
    expect(e instanceof ConnectError && e.code === Code.Unauthenticated, `unauthenticated, not ${e}`);
  });
}
console.log(`connect-node: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
