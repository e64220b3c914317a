// The part of the `ws` package (8.x) that the soak and the benchmark use; the project has no @types/ws.
declare module "ws" {
  import { EventEmitter } from "node:events";

  export interface ClientOptions {
    perMessageDeflate?: boolean;
    handshakeTimeout?: number;
    maxPayload?: number;
  }

  export default class WebSocket extends EventEmitter {
    static readonly CONNECTING: 0;
    static readonly OPEN: 1;
    static readonly CLOSING: 2;
    static readonly CLOSED: 3;
    constructor(url: string, options?: ClientOptions);
    readonly readyState: 0 | 1 | 2 | 3;
    readonly extensions: string;
    send(data: string | Buffer): void;
    close(code?: number, reason?: string): void;
    terminate(): void;
    on(event: "open", listener: () => void): this;
    on(event: "message", listener: (data: Buffer) => void): this;
    on(event: "close", listener: (code: number, reason: Buffer) => void): this;
    on(event: "error", listener: (err: Error & { code?: string }) => void): this;
    once(event: "open", listener: () => void): this;
    once(event: "message", listener: (data: Buffer) => void): this;
    once(event: "close", listener: (code: number, reason: Buffer) => void): this;
    once(event: "error", listener: (err: Error & { code?: string }) => void): this;
  }
}
