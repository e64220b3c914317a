import WebSocket from "ws";

// A real TCP WebSocket client (`ws`, compression off) for timing server closes against wrangler dev.
// workerd drops a hibernating socket's connection promptly after a server close only if the client
// has sent a frame (docs: the stack notes), so `openPinged` sends `ping` and waits for `pong` first,
// as the client library does on every socket.

export interface TimedClose {
  code: number;
  reason: string;
  /** `performance.now()` when the close event fired. */
  at: number;
}

export interface PingedSocket {
  ws: WebSocket;
  /** Every text frame received, in order. */
  texts: string[];
  closed: Promise<TimedClose>;
  close(): void;
}

/** Opens `url`, sends `ping` and resolves once `pong` came back (rejects if the socket closes first). */
export function openPinged(url: string, timeoutMs = 10_000): Promise<PingedSocket> {
  const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: timeoutMs });
  const texts: string[] = [];
  const closed = new Promise<TimedClose>((resolve) =>
    ws.once("close", (code, reason) => resolve({ code, reason: reason.toString(), at: performance.now() })),
  );
  ws.on("error", () => {}); // followed by "close"
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error("no pong in time"));
    }, timeoutMs);
    ws.on("message", (data) => {
      const text = data.toString();
      texts.push(text);
      if (text === "pong") {
        clearTimeout(timer);
        resolve({ ws, texts, closed, close: () => ws.terminate() });
      }
    });
    ws.once("open", () => ws.send("ping"));
    void closed.then((c) => {
      clearTimeout(timer);
      reject(new Error(`closed (${c.code} ${c.reason}) before the pong`));
    });
  });
}
