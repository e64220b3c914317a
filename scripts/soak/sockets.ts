// A client's sockets: reconnect loops with the contract's recipe (socket first, then catch up), the
// chaos that drops them at random during the load, and the stop at the end.
import WebSocket from "ws";
import type { Client, SocketTarget } from "./client.ts";
import { sleep } from "./context.ts";

export function startSockets(client: Client): void {
  if (client.mode === "inbox") client.sockets.push({ kind: "inbox", ws: null, ready: false, lastSeq: new Map() });
  else
    for (const conv of client.convs.values())
      client.sockets.push({ kind: "room", conv, ws: null, ready: false, lastSeq: new Map() });
  for (const target of client.sockets) target.loop = socketLoop(client, target).catch(client.ctx.fatal);
}

async function socketLoop(client: Client, target: SocketTarget): Promise<void> {
  const { ctx } = client;
  const { stats } = ctx;
  let failures = 0;
  while (!ctx.socketsStopping) {
    ctx.checkDeadline();
    if (target.conv?.removed) {
      target.ready = true;
      target.done = true;
      return;
    }
    const token = client.token;
    const qs = target.kind === "room" ? `conversationId=${target.conv!.id}&token=${token}` : `token=${token}`;
    const ws = new WebSocket(`${ctx.server.baseUrl.replace(/^http/, "ws")}/ws?${qs}`, {
      perMessageDeflate: false,
      handshakeTimeout: 10_000,
    });
    target.lastSeq = new Map();
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    const opened = await new Promise<boolean>((resolve) => {
      ws.once("open", () => resolve(true));
      ws.once("close", () => resolve(false));
      ws.on("error", () => {}); // followed by "close"
    });
    if (!opened) {
      stats.socketConnectFailures += 1;
      await closed;
      await sleep(ctx.backoff(failures++));
      continue;
    }
    failures = 0;
    stats.socketsOpened += 1;
    target.ws = ws;
    target.openedAt = Number(ctx.elapsed());
    ws.on("message", (data) => client.onFrame(target, data));
    // A close frame from the server (CLOSING without our own close()) means nothing more will come.
    // workerd keeps the TCP connection of a hibernatable socket the object closed until the object
    // goes idle (about 10 s after its last event), and `close` only fires then (in browsers too):
    // rather than sit deaf that long, end the connection ourselves.
    let closeFrameAt: number | undefined;
    const watch = setInterval(() => {
      if (ws.readyState !== WebSocket.CLOSING || ctx.closingByUs.has(ws)) return;
      closeFrameAt ??= Date.now();
      if (Date.now() - closeFrameAt >= 1000) {
        stats.serverClosesLingering += 1;
        ws.terminate(); // "close" then fires with the server's code
      }
    }, 100);
    // Socket first (it is open now), then catch up over REST.
    const catchUp = (target.kind === "room" ? client.catchUp(target.conv!, "rest") : client.inboxCatchUp())
      .then(() => {
        if (target.ws === ws) target.ready = true;
      })
      .catch(ctx.fatal);
    const { code, reason } = await closed;
    clearInterval(watch);
    target.ws = null;
    target.ready = false;
    const key = `${code}${reason ? ` ${reason}` : ""}`;
    stats.socketCloses[key] = (stats.socketCloses[key] ?? 0) + 1;
    if (code === 1008 || code === 4001) await client.renew(token); // token refused or expired; session ended
    await catchUp;
    if (code === 4003) {
      // Removed from the conversation: this socket is done for good.
      if (!target.conv?.removed && !target.conv?.leaving)
        ctx.anomaly("unexpectedRemoval", { client: client.index, conversationId: target.conv?.id });
      target.ready = true;
      target.done = true;
      return;
    }
    if (!ctx.socketsStopping) await sleep(ctx.between(20, 400));
  }
}

/** During the load: now and then, one of the client's open sockets is closed or just cut. */
export async function chaosLoop(client: Client): Promise<void> {
  const { ctx } = client;
  while (!ctx.loadOver) {
    await sleep(ctx.between(600, 3000));
    if (ctx.loadOver) return;
    const open = client.sockets.filter((t) => t.ws && t.ws.readyState === WebSocket.OPEN);
    if (open.length === 0 || !ctx.chance(0.6)) continue;
    const ws = ctx.pick(open).ws!;
    ctx.stats.socketDropsByClient += 1;
    ctx.closingByUs.add(ws);
    if (ctx.chance(0.5)) ws.close(ctx.chance(0.5) ? 1000 : 4000, "soak drop");
    else ws.terminate(); // no close frame: the TCP connection just goes away
  }
}

export async function stopSockets(client: Client): Promise<void> {
  await Promise.all(
    client.sockets.map(async (t) => {
      if (t.ws) client.ctx.closingByUs.add(t.ws);
      t.ws?.close(1000, "soak over");
      await Promise.race([t.loop, sleep(5000)]);
      t.ws?.terminate();
    }),
  );
}
