/**
 * `parley/client`: a typed client for the Parley API (contract v2) that does the end-to-end
 * encryption, the device linking and the key epochs itself. Runtime needs: Web Crypto (Ed25519
 * and X25519), `fetch` and `WebSocket`: browsers, Node 22+, Workers.
 *
 *   const client = new ParleyClient({
 *     baseUrl: "https://parley.example.com",
 *     store: new IndexedDBStore(),                       // browsers; default: memory
 *     onIdentityChanged: (e) => warn(`${e.username}'s safety number changed`),
 *     onSessionEnded: () => showLogin(),
 *   });
 *   const resumed = await client.resume();              // after a reload: session and keys from the store
 *   await client.register("alice", "correct horse battery");   // account key + first device, logged in
 *   const conversation = await client.createConversation(["bob"]);
 *   await client.sendMessage(conversation.conversationId, "hello, Bob"); // rotates and resends on 409
 *   const sub = client.subscribe(conversation.conversationId, (m) => console.log(m.senderUsername, m.text));
 *
 *   // A second device: log in, show the code, wait; on an active device, compare and approve.
 *   const status = await laptop.login("alice", "correct horse battery");    // status.status === "pending"
 *   show(status.comparisonCode);  await laptop.waitForApproval();
 *   const [pending] = await phone.pendingDevices();     // pending.comparisonCode: the same digits
 *   await phone.approveDevice(pending.deviceId, { comparisonCode: typedByUser });
 *
 * The server only ever sees public keys, signed wrapped keys and signed ciphertext. Formats and
 * trust rules: docs/client.md. Retries: `http.ts`. Live delivery: `socket.ts`.
 */

export type * from "../contract/index.ts";
export { CLOSE, CLOSE_REASON, DEVICE_SIGNATURE_CONTEXT, ERROR_STATUS, TYPING_INTERVAL_MS } from "../contract/index.ts";
export * from "./account.ts";
export * from "./attachments.ts";
export * from "./bytes.ts";
export * from "./client.ts";
export * from "./conversations.ts";
export * from "./crypto/keys.ts";
export * from "./crypto/message.ts";
export * from "./crypto/primitives.ts";
export * from "./crypto/wrap.ts";
export * from "./features.ts";
export * from "./feed.ts";
export * from "./http.ts";
export * from "./idb-store.ts";
export { MissingKeyError } from "./keyring.ts";
export * from "./linking.ts";
export * from "./push.ts";
export { REFRESH_MARGIN_MS, type SessionEnded, type SessionEndReason } from "./session.ts";
export * from "./socket.ts";
export * from "./store.ts";
export { IdentityChangedError, type IdentityChangedEvent, UnknownDeviceError } from "./trust.ts";
