// Issue #14's rows: attachment throughput through the Worker against a bare floor Worker streaming
// the same bytes into the same R2, and the push path's cost per message at fan-out 100 with 90
// offline devices. Both need R2 and a Queue, which plain `workerd serve` (the other rows) does not
// emulate here, so Parley and the floor are both served by `wrangler dev` (miniflare) in this run.
import { randomBytes, webcrypto } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { agent, round } from "../lib/http.ts";
import { messageBody, type User } from "../lib/seed.ts";
import type { BenchServer } from "../lib/servers.ts";
import { SocketGroup } from "../lib/sockets.ts";
import { cpuMs, waitIdle } from "../lib/system.ts";

const MiB = 1024 * 1024;

/** One request with a Buffer body (Content-Length set) or none; resolves with status and bytes read. */
function transfer(
  base: string,
  method: string,
  path: string,
  body?: Buffer,
  headers: Record<string, string> = {},
): Promise<{ status: number; bytes: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      new URL(path, base),
      {
        method,
        agent,
        headers: {
          ...(body ? { "content-type": "application/octet-stream" } : {}),
          ...headers,
          ...(body ? { "content-length": body.byteLength } : {}),
        },
      },
      (res) => {
        let bytes = 0;
        const first: Buffer[] = [];
        res.on("data", (c: Buffer) => {
          bytes += c.byteLength;
          if (first.length < 4) first.push(c);
        });
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, bytes, text: Buffer.concat(first).toString("utf8", 0, 200) }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

export interface ThroughputRow {
  sizeMiB: number;
  repeats: number;
  uploadMiBps: number;
  downloadMiBps: number;
  uploadMsP50: number;
  downloadMsP50: number;
  serverCpuMsPerMiBUp: number;
  serverCpuMsPerMiBDown: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

/**
 * Sequential uploads then downloads of random blobs of each size (one warm-up of each size first,
 * not counted). `upload` returns the path to GET it back.
 */
export async function throughput({
  server,
  sizesMiB,
  repeats,
  upload,
  downloadHeaders = {},
}: {
  server: BenchServer;
  sizesMiB: number[];
  repeats: (sizeMiB: number) => number;
  upload: (blob: Buffer, i: number) => Promise<string>;
  downloadHeaders?: Record<string, string>;
}): Promise<ThroughputRow[]> {
  const rows: ThroughputRow[] = [];
  for (const sizeMiB of sizesMiB) {
    const blob = randomBytes(sizeMiB * MiB);
    const warm = await upload(blob, -1);
    await transfer(server.base, "GET", warm, undefined, downloadHeaders);
    const n = repeats(sizeMiB);
    const paths: string[] = [];
    const up: number[] = [];
    const down: number[] = [];
    if (server.pid) await waitIdle(server.pid, { maxMs: 10_000 });
    let c0 = server.pid ? cpuMs(server.pid) : 0;
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      paths.push(await upload(blob, i));
      up.push(performance.now() - t);
    }
    const cpuUp = server.pid ? cpuMs(server.pid) - c0 : 0;
    c0 = server.pid ? cpuMs(server.pid) : 0;
    for (const path of paths) {
      const t = performance.now();
      const res = await transfer(server.base, "GET", path, undefined, downloadHeaders);
      if (res.status !== 200 || res.bytes !== blob.byteLength) throw new Error(`download ${path}: ${res.status}`);
      down.push(performance.now() - t);
    }
    const cpuDown = server.pid ? cpuMs(server.pid) - c0 : 0;
    const total = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / 1000;
    rows.push({
      sizeMiB,
      repeats: n,
      uploadMiBps: round((sizeMiB * n) / total(up), 1),
      downloadMiBps: round((sizeMiB * n) / total(down), 1),
      uploadMsP50: round(median(up), 1),
      downloadMsP50: round(median(down), 1),
      serverCpuMsPerMiBUp: round(cpuUp / (sizeMiB * n), 1),
      serverCpuMsPerMiBDown: round(cpuDown / (sizeMiB * n), 1),
    });
  }
  return rows;
}

/** Parley's upload: `POST /attachments?conversationId=` with the member's token. */
export const parleyUpload = (server: BenchServer, conversationId: number, user: User) => async (blob: Buffer) => {
  const res = await transfer(server.base, "POST", `/attachments?conversationId=${conversationId}`, blob, {
    authorization: `Bearer ${user.token}`,
  });
  if (res.status !== 201) throw new Error(`upload: ${res.status} ${res.text}`);
  return `/attachments/${JSON.parse(res.text).attachmentId}`;
};

/** The floor's upload: `PUT /blob/<key>`. */
export const floorUpload = (server: BenchServer) => async (blob: Buffer, i: number) => {
  const path = `/blob/${blob.byteLength}-${i}-${randomBytes(4).toString("hex")}`;
  const res = await transfer(server.base, "PUT", path, blob);
  if (res.status !== 201) throw new Error(`floor upload: ${res.status} ${res.text}`);
  return path;
};

/** A stand-in push service: answers 201 to every push and counts them. */
export async function fakePushService(): Promise<{
  base: string;
  times: number[];
  bytes: number;
  close(): Promise<void>;
}> {
  const state = { times: [] as number[], bytes: 0 };
  const srv = http.createServer((req, res) => {
    let n = 0;
    req.on("data", (c: Buffer) => (n += c.byteLength));
    req.on("end", () => {
      state.times.push(performance.now());
      state.bytes += n;
      res.writeHead(201).end();
    });
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  return {
    base: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`,
    get times() {
      return state.times;
    },
    get bytes() {
      return state.bytes;
    },
    close: () => new Promise<void>((r) => srv.close(() => r())),
  };
}

const b64u = (b: Uint8Array) => Buffer.from(b).toString("base64url");

export interface PushCost {
  members: number;
  online: number;
  offline: number;
  messages: number;
  /** Server CPU per message (idle rate subtracted) without subscriptions, then with 90 offline subscribed devices. */
  baselineCpuMs: number;
  withPushCpuMs: number;
  pushPathCpuMs: number;
  pushPathCpuMsPerPush: number;
  pushesPerMessage: number;
  /** From the POST to the 90th push at the fake push service. */
  allPushedMsP50: number;
  pushBodyBytes: number;
}

/**
 * Fan-out 100: members 0–9 hold sockets on the conversation (member 0 sends), members 10–99 hold
 * none. First `messages` sends with nobody subscribed (the baseline), then every member but the
 * sender subscribes its device to the fake push service, and `messages` more, each 11 s after the
 * last (the consumer coalesces pushes to one device within 10 s). Each message's server CPU is taken
 * from the POST until the server is idle again, minus the idle rate measured before.
 */
export async function pushCost({
  server,
  conversationId,
  members,
  messages,
  online = 10,
}: {
  server: BenchServer & { pid: number[] };
  conversationId: number;
  members: User[];
  messages: number;
  online?: number;
}): Promise<PushCost> {
  const pid = server.pid;
  const push = await fakePushService();
  const group = new SocketGroup("ws");
  try {
    await group.open({
      wsBase: server.wsBase,
      conversationId,
      tokens: members.slice(0, online).map((m) => m.token),
      count: online,
      concurrency: online,
    });
    if (group.size !== online) throw new Error(`only ${group.size} of ${online} sockets opened`);
    const sender = members[0]!;
    const post = async () => {
      const res = await transfer(
        server.base,
        "POST",
        "/messages",
        Buffer.from(messageBody(conversationId, crypto.randomUUID())),
        {
          authorization: `Bearer ${sender.token}`,
          "content-type": "application/json",
        },
      );
      if (res.status !== 201) throw new Error(`POST /messages: ${res.status} ${res.text}`);
    };
    await post(); // warm
    const idleRate = async () => {
      await waitIdle(pid, { maxMs: 20_000 });
      const c = cpuMs(pid);
      await new Promise((r) => setTimeout(r, 2000));
      return (cpuMs(pid) - c) / 2000;
    };
    const measure = async (waitPushes: number) => {
      const rate = await idleRate();
      const seen = push.times.length;
      const c0 = cpuMs(pid);
      const t0 = performance.now();
      await post();
      let allAt = Number.NaN;
      if (waitPushes > 0) {
        const deadline = Date.now() + 30_000;
        while (push.times.length - seen < waitPushes && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 20));
        allAt = (push.times[seen + waitPushes - 1] ?? Number.NaN) - t0;
      }
      await waitIdle(pid, { maxMs: 30_000 });
      const wall = performance.now() - t0;
      return { cpu: cpuMs(pid) - c0 - rate * wall, pushes: push.times.length - seen, allAt };
    };
    const baseline = [];
    for (let i = 0; i < messages; i++) baseline.push(await measure(0));

    const pair = (await webcrypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, [
      "deriveBits",
    ])) as CryptoKeyPair;
    const keys = {
      p256dh: b64u(new Uint8Array((await webcrypto.subtle.exportKey("raw", pair.publicKey)) as ArrayBuffer)),
      auth: b64u(randomBytes(16)),
    };
    for (const [i, m] of members.entries()) {
      if (i === 0) continue;
      const body = Buffer.from(JSON.stringify({ endpoint: `${push.base}/p/${m.deviceId}`, keys }));
      const res = await transfer(server.base, "PUT", `/devices/${m.deviceId}/push`, body, {
        authorization: `Bearer ${m.token}`,
        "content-type": "application/json",
      });
      if (res.status !== 204) throw new Error(`PUT push for ${m.username}: ${res.status} ${res.text}`);
    }
    const offline = members.length - online;
    const withPush = [];
    for (let i = 0; i < messages; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 11_000));
      withPush.push(await measure(offline));
    }
    const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const b = avg(baseline.map((x) => x.cpu));
    const w = avg(withPush.map((x) => x.cpu));
    return {
      members: members.length,
      online,
      offline,
      messages,
      baselineCpuMs: round(b, 1),
      withPushCpuMs: round(w, 1),
      pushPathCpuMs: round(w - b, 1),
      pushPathCpuMsPerPush: round((w - b) / offline, 2),
      pushesPerMessage: round(avg(withPush.map((x) => x.pushes)), 1),
      allPushedMsP50: round(median(withPush.map((x) => x.allAt)), 0),
      pushBodyBytes: push.times.length ? Math.round(push.bytes / push.times.length) : 0,
    };
  } finally {
    await group.closeAll();
    await push.close();
  }
}
