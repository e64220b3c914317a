import type { ChildProcess } from "node:child_process";
import { createServer } from "node:net";

// Child-process plumbing shared by global-setup.ts (wrangler dev) and compression.test.ts (workerd).

const LOG_LINES_KEPT = 200;

/** A port that was free a moment ago (the OS picks it; the small race is acceptable for tests). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error("no port assigned"))));
    });
  });
}

/** Kills a detached child's whole process group (wrangler, its workerd, esbuild), then waits for it. */
export async function killGroup(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, sig);
    } catch {
      // The group is already gone.
    }
  };
  signal("SIGTERM");
  const timer = setTimeout(() => signal("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
  signal("SIGKILL"); // Stragglers in the group that outlived their parent.
}

/** Keeps the last lines a child printed, to show them if it fails; `E2E_LOG=1` streams them too. */
export function captureOutput(child: ChildProcess, label: string): () => string {
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    const text = chunk.toString("utf8");
    if (process.env.E2E_LOG === "1") process.stderr.write(`[${label}] ${text}`);
    lines.push(...text.split("\n").filter((l) => l.trim() !== ""));
    if (lines.length > LOG_LINES_KEPT) lines.splice(0, lines.length - LOG_LINES_KEPT);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  return () => lines.join("\n");
}

/** Polls `url` until it answers 200, the child exits, or the deadline passes. */
export async function waitUntilHealthy(url: string, child: ChildProcess, timeoutMs: number, logs: () => string) {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  child.once("exit", () => (exited = true));
  while (Date.now() < deadline) {
    if (exited || child.exitCode !== null) {
      throw new Error(`server exited (code ${child.exitCode}) before ${url} answered:\n${logs()}`);
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms:\n${logs()}`);
}
