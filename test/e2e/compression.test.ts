import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  developmentVapid,
  migrateAll,
  type Proc,
  readWranglerConfig,
  startWorkerd,
  stop,
  wranglerEnv,
} from "../../tools/harness/index.ts";
import { newIdentity } from "../../tools/wire/index.ts";
import { baseUrl, closeAll, inboxSocketUrl, newUser, openSocket, type TestSocket } from "./helpers.js";

/*
 * Parley turns WebSocket permessage-deflate off (`no_web_socket_compression` in wrangler.toml):
 * ciphertext does not compress, and a deflate context per socket costs memory and CPU on every
 * broadcast. Under `wrangler dev` the flag has no effect (miniflare's entry worker terminates the
 * client's socket and negotiates compression itself), so the header check runs where the runtime
 * honours the flag: the bundle `wrangler deploy --dry-run` produced, under plain `workerd serve`.
 * The servers are configured by the harness's generator (tools/harness/workerd.ts, which the
 * benchmark uses too: D1 wired as miniflare wires it, over a database migrated with wrangler); the check uses the inbox socket
 * (`/ws?token=`), accepted by the UserInbox Durable Object after it records its presence in D1.
 */

const FLAG = "no_web_socket_compression";

/** Registers a fresh user (signed device) on the server at `base` and logs in: a real session's access token. */
async function sessionToken(base: string): Promise<string> {
  const { accountKey, device } = newIdentity();
  const username = `deflate_${randomBytes(6).toString("hex")}`;
  const password = "compression probe";
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    return res.json() as Promise<Record<string, unknown>>;
  };
  const { deviceId } = await post("/auth/register", { username, password, accountKey, device });
  return String((await post("/auth/login", { username, password, deviceId })).accessToken);
}

interface UpgradeResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  keyAccepted: boolean;
}

/** A raw HTTP/1.1 upgrade that offers permessage-deflate, as browsers and Node's WebSocket do. */
function rawUpgrade(url: string): Promise<UpgradeResult> {
  const key = randomBytes(16).toString("base64");
  const expectedAccept = createHash("sha1").update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
  return new Promise((resolve, reject) => {
    const req = request(url, {
      headers: {
        Connection: "Upgrade",
        Upgrade: "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": key,
        "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
      },
    });
    req.setTimeout(10_000, () => req.destroy(new Error("upgrade timed out")));
    req.once("upgrade", (res, socket: Socket) => {
      socket.destroy();
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        keyAccepted: res.headers["sec-websocket-accept"] === expectedAccept,
      });
    });
    req.once("response", (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, headers: res.headers, keyAccepted: false });
    });
    req.once("error", reject);
    req.end();
  });
}

/** `wrangler d1 migrations apply DB --local --persist-to DIR`: a real, migrated local D1. */
function migrate(persistDir: string): Promise<void> {
  return migrateAll(persistDir, { env: wranglerEnv(), output: "ignore" });
}

describe("WebSocket compression", () => {
  const toml = readWranglerConfig();

  it(`wrangler.toml sets the ${FLAG} compatibility flag`, () => {
    expect(toml.compatibilityFlags).toContain(FLAG);
  });

  describe("plain workerd serving the deployable bundle", () => {
    const secret = randomBytes(32).toString("hex");
    let dir: string;
    const servers: Proc[] = [];
    let configured: string; // wrangler.toml's flags
    let control: string; // the same without the flag: shows the check can fail

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), "parley-e2e-workerd-"));
      const vars = {
        ...toml.vars,
        ...developmentVapid(),
        JWT_SECRET: secret,
        ALLOWED_ORIGINS: "",
        RATE_LIMITS: "off",
      };
      const start = async (name: string, flags: string[]) => {
        const persistDir = join(dir, `${name}-state`);
        await migrate(persistDir);
        const server = await startWorkerd({
          dir: join(dir, name),
          bundleFile: join(inject("bundleDir"), "index.js"),
          persistDir,
          wrangler: { ...toml, compatibilityFlags: flags },
          vars,
          output: { capture: `workerd ${name}` },
          timeoutMs: 30_000,
        });
        servers.push(server.proc);
        return `127.0.0.1:${server.port}`;
      };
      [configured, control] = await Promise.all([
        start("configured", toml.compatibilityFlags),
        // Control: the same bundle without the flag, to show the check can fail.
        start(
          "control",
          toml.compatibilityFlags.filter((f) => f !== FLAG),
        ),
      ]);
    }, 90_000);

    afterAll(async () => {
      await Promise.all(servers.map((proc) => stop(proc, { graceMs: 5_000 })));
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    // A real session on each server (the token's session must be live in that server's D1).
    const tokens = new Map<string, Promise<string>>();
    const tokenFor = (host: string) => {
      if (!tokens.has(host)) tokens.set(host, sessionToken(`http://${host}`));
      return tokens.get(host)!;
    };

    it("answers an upgrade that offers permessage-deflate with a 101 that carries no Sec-WebSocket-Extensions", async () => {
      const accepted = await rawUpgrade(`http://${configured}/ws?token=${await tokenFor(configured)}`);
      expect(accepted.status).toBe(101);
      expect(accepted.keyAccepted).toBe(true);
      expect(accepted.headers["sec-websocket-extensions"]).toBeUndefined();

      // The refusal path (handshake completed, then 1008) is answered the same way.
      const refused = await rawUpgrade(`http://${configured}/ws?token=garbage`);
      expect(refused.status).toBe(101);
      expect(refused.headers["sec-websocket-extensions"]).toBeUndefined();

      // Control: the same bundle without the flag negotiates compression, so the check above can fail.
      const compressed = await rawUpgrade(`http://${control}/ws?token=${await tokenFor(control)}`);
      expect(compressed.status).toBe(101);
      expect(compressed.headers["sec-websocket-extensions"]).toMatch(/^permessage-deflate/);
    });

    it("gives Node's WebSocket (which always offers compression) an uncompressed, working socket", async () => {
      const socket = await openSocket(`ws://${configured}/ws?token=${await tokenFor(configured)}`);
      try {
        expect(socket.ws.extensions).toBe("");
        socket.send("ping");
        await socket.waitFor((_, texts) => texts.includes("pong"));
      } finally {
        await closeAll([socket]);
      }
    });
  });

  describe("wrangler dev", () => {
    const sockets: TestSocket[] = [];
    afterAll(() => closeAll(sockets));

    it("completes the handshake of an upgrade that offers permessage-deflate (the extension it answers is recorded, not asserted)", async ({
      annotate,
    }) => {
      const user = await newUser("deflate");
      const result = await rawUpgrade(`${baseUrl()}/ws?token=${user.token}`);
      expect(result.status).toBe(101);
      expect(result.keyAccepted).toBe(true);
      const negotiated = String(result.headers["sec-websocket-extensions"] ?? "(none)");
      // wrangler dev ignores the flag (see the note at the top), so this is what local clients get.
      await annotate(`wrangler dev answered Sec-WebSocket-Extensions: ${negotiated}`);

      const socket = await openSocket(inboxSocketUrl(user));
      sockets.push(socket);
      socket.send("ping");
      await socket.waitFor((_, texts) => texts.includes("pong"));
    });
  });
});
