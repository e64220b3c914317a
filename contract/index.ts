/**
 * The wire contract of Parley: every REST body, socket frame, close code and error code. The
 * server (`src/`) and the client library (`client/`) both import it; nothing else declares a wire
 * type. It has no dependencies, so any TypeScript or JavaScript client can copy or import it.
 */

export * from "./attachments.ts";
export * from "./errors.ts";
export * from "./http.ts";
export * from "./push.ts";
export * from "./realtime.ts";
