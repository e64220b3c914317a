// Clients that misbehave at the TCP level: one that vanishes in the middle of a WebSocket frame, one
// that vanishes in the middle of its handshake. The conversation and everyone else in it carry on.

import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import { describe, expect, it } from "vitest";
import {
  baseUrl,
  conversationSocketUrl,
  createConversation,
  newUsers,
  openSocket,
  postMessage,
  sleep,
  type TestUser,
  waitForMessages,
} from "./helpers.js";

/** A raw TCP connection that completes a WebSocket handshake to `path` and hands back the socket. */
function rawUpgrade(path: string): Promise<Socket> {
  const { hostname, port } = new URL(baseUrl());
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    let head = "";
    socket.on("data", (chunk) => {
      head += chunk.toString("latin1");
      if (head.includes("\r\n\r\n")) {
        socket.removeAllListeners("data");
        head.startsWith("HTTP/1.1 101") ? resolve(socket) : reject(new Error(head.split("\r\n")[0]));
      }
    });
    socket.on("error", reject);
  });
}

/** The first bytes of a masked text frame announcing `length` bytes of payload, and a few of them. */
function truncatedFrame(length: number): Buffer {
  const header = Buffer.from([0x81, 0x80 | 126, (length >> 8) & 0xff, length & 0xff]);
  return Buffer.concat([header, randomBytes(4), Buffer.from("only part of the payl")]);
}

const path = (user: TestUser, conversationId: number) =>
  new URL(conversationSocketUrl(user, conversationId)).pathname +
  new URL(conversationSocketUrl(user, conversationId)).search;

describe("clients that vanish mid-frame", () => {
  it("a socket cut in the middle of a frame costs nobody else a message", async () => {
    const [alice, bob] = await newUsers(2, "cut");
    const conversation = await createConversation(alice!, [bob!]);
    const id = conversation.conversationId;
    const bobSocket = await openSocket(conversationSocketUrl(bob!, id));
    for (let i = 0; i < 5; i++) {
      const raw = await rawUpgrade(path(alice!, id));
      raw.write(truncatedFrame(1000));
      await sleep(20);
      raw.destroy(); // gone, with the frame unfinished and no close frame
    }
    const half = connect(Number(new URL(baseUrl()).port), new URL(baseUrl()).hostname, () => {
      half.write(`GET ${path(alice!, id)} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n`); // handshake cut short
      setTimeout(() => half.destroy(), 20);
    });
    await sleep(100);
    const posted = [await postMessage(alice!, id), await postMessage(alice!, id)]; // each asserts its 201
    const received = await waitForMessages(bobSocket, 2);
    expect(received.map((m) => m.messageId)).toEqual(posted.map((p) => p.messageId));
    expect(received.map((m) => m.seq)).toEqual([1, 2]);
    const aliceAgain = await openSocket(conversationSocketUrl(alice!, id));
    aliceAgain.send("ping");
    await aliceAgain.waitFor((_frames, texts) => texts.includes("pong"));
    await Promise.all([bobSocket.close(), aliceAgain.close()]);
  });
});
