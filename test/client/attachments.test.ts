// Issue #14 in the library: files encrypted under fresh per-file keys, uploaded, described inside
// the encrypted message, downloaded, checked against their digest and decrypted; push helpers.
import { describe, expect, it } from "vitest";
import {
  AttachmentIntegrityError,
  decodeContent,
  fromBase64,
  ParleyClient,
  type TransferProgress,
  toBase64,
} from "../../client/index.ts";
import { FakeParley } from "./fake-server.ts";

async function pair() {
  const server = new FakeParley();
  const make = () =>
    new ParleyClient({ baseUrl: "http://parley.test", fetch: server.fetch, retry: { baseDelayMs: 1 } });
  const alice = make();
  await alice.register("alice", "correct horse");
  const bob = make();
  await bob.register("bob", "battery staple");
  const { conversationId } = await alice.createConversation(["bob"]);
  await bob.acceptConversation(conversationId);
  return { server, alice, bob, conversationId };
}

const file = (n: number) => {
  const data = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(data.subarray(i, Math.min(n, i + 65536)));
  return data;
};

const includes = (haystack: Uint8Array, needle: Uint8Array) => {
  const h = Buffer.from(haystack);
  return h.indexOf(Buffer.from(needle)) !== -1;
};

async function received(bob: ParleyClient, conversationId: number) {
  const [m] = await bob.messages(conversationId, { limit: 1 });
  if (!m?.ok) throw new Error("not decrypted");
  return { message: m, content: bob.content(m) };
}

describe("attachments", () => {
  it("round trip: encrypt, upload with progress, describe in the message, download, verify, decrypt", async () => {
    const { server, alice, bob, conversationId } = await pair();
    const photo = file(300_000);
    const progress: TransferProgress[] = [];
    const sent = await alice.sendFiles(
      conversationId,
      "the photo",
      [{ name: "beach.jpg", type: "image/jpeg", data: photo }],
      {
        onProgress: (p) => progress.push(p),
      },
    );
    const uploading = progress.filter((p) => p.phase === "uploading");
    expect(uploading.length).toBeGreaterThan(3); // counted chunk by chunk through the TransformStream
    expect(uploading.at(-1)).toMatchObject({ loaded: photo.byteLength + 16, total: photo.byteLength + 16 });
    expect(server.uploads[0]!.headers["content-type"]).toBe("application/octet-stream");
    expect(server.uploads[0]!.bytes.byteLength).toBe(photo.byteLength + 16);

    const { message, content } = await received(bob, conversationId);
    expect(message.attachments).toEqual([sent.content.files[0]!.attachmentId]);
    expect(content.text).toBe("the photo");
    expect(content.files[0]).toMatchObject({ name: "beach.jpg", type: "image/jpeg", size: photo.byteLength });
    const seen: TransferProgress[] = [];
    const data = await bob.downloadFile(content.files[0]!, { onProgress: (p) => seen.push(p) });
    expect(Buffer.from(data).equals(Buffer.from(photo))).toBe(true);
    expect(seen.some((p) => p.phase === "downloading" && p.loaded === photo.byteLength + 16)).toBe(true);
  });

  it("never sends a file's key, nonce, digest, name or plaintext to the server", async () => {
    const { server, alice, conversationId } = await pair();
    const photo = file(70_000);
    const sent = await alice.sendFiles(conversationId, "", [
      { name: "secret-plans.pdf", type: "application/pdf", data: photo },
    ]);
    const d = sent.content.files[0]!;
    const everything = JSON.stringify(server.log) + JSON.stringify(server.uploads.map((u) => [u.path, u.headers]));
    for (const secret of [d.key, d.nonce, d.sha256, "secret-plans", "application/pdf"]) {
      expect(everything).not.toContain(secret);
    }
    // Nor any form of the key bytes in the uploaded blob, nor the plaintext.
    const blob = server.uploads[0]!.bytes;
    expect(includes(blob, fromBase64(d.key))).toBe(false);
    expect(includes(blob, photo.subarray(0, 64))).toBe(false);
    // The message names only the id; its ciphertext is opaque.
    const post = server.log.filter((r) => r.path === "/messages").at(-1)!.body;
    expect(post.attachments).toEqual([d.attachmentId]);
  });

  it("rejects a download whose digest does not match (another file swapped in)", async () => {
    const { server, alice, bob, conversationId } = await pair();
    await alice.sendFiles(conversationId, "", [{ name: "a.bin", data: file(1000) }]);
    const { content } = await received(bob, conversationId);
    const other = await alice.sendFiles(conversationId, "", [{ name: "b.bin", data: file(1000) }]);
    // The server answers with the other file's (validly encrypted) bytes: same length, other digest.
    const swapped = server.blobs.get(other.content.files[0]!.attachmentId)!.bytes;
    server.tamperBlob = () => swapped;
    await expect(bob.downloadFile(content.files[0]!)).rejects.toBeInstanceOf(AttachmentIntegrityError);
  });

  it("rejects a tampered blob (one flipped bit, a truncated or a longer one)", async () => {
    const { server, alice, bob, conversationId } = await pair();
    await alice.sendFiles(conversationId, "", [{ name: "a.bin", data: file(5000) }]);
    const { content } = await received(bob, conversationId);
    const f = content.files[0]!;
    server.tamperBlob = (b) => {
      b[100]! ^= 1;
      return b;
    };
    await expect(bob.downloadFile(f)).rejects.toThrow(/digest/);
    server.tamperBlob = (b) => b.subarray(0, b.byteLength - 1);
    await expect(bob.downloadFile(f)).rejects.toBeInstanceOf(AttachmentIntegrityError);
    server.tamperBlob = (b) => new Uint8Array([...b, 0]);
    await expect(bob.downloadFile(f)).rejects.toBeInstanceOf(AttachmentIntegrityError);
    // Even with a matching digest (the sender's descriptor lied), GCM refuses a modified blob.
    server.tamperBlob = undefined;
    const blob = server.blobs.get(f.attachmentId)!.bytes.slice();
    blob[0]! ^= 1;
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", blob));
    server.tamperBlob = () => blob;
    await expect(bob.downloadFile({ ...f, sha256: toBase64(digest) })).rejects.toThrow(/decrypted/);
  });

  it("refuses envelopes that do not describe exactly the message's attachments", () => {
    const envelope = (ids: number[]) =>
      JSON.stringify({
        format: "parley/files/v1",
        text: "x",
        files: ids.map((attachmentId) => ({
          attachmentId,
          name: "a",
          type: "",
          size: 1,
          key: toBase64(new Uint8Array(32)),
          nonce: toBase64(new Uint8Array(12)),
          sha256: toBase64(new Uint8Array(32)),
        })),
      });
    expect(decodeContent(envelope([4]), [4]).files).toHaveLength(1);
    expect(() => decodeContent(envelope([4]), [5])).toThrow(/not the files/);
    expect(() => decodeContent("hello", [4])).toThrow();
    // A message without attachments is plain text, even if it looks like an envelope.
    expect(decodeContent(envelope([4]), [])).toEqual({ text: envelope([4]), files: [] });
  });
});

describe("push helpers", () => {
  it("subscribes with the server's VAPID key and stores the subscription for this device", async () => {
    const { server, alice } = await pair();
    const vapid = toBase64(new Uint8Array(65).fill(4)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    server.before = async (method, path) =>
      method === "GET" && path === "/push/vapid-public-key"
        ? new Response(JSON.stringify({ publicKey: vapid }), { status: 200 })
        : method === "PUT" && path.endsWith("/push")
          ? new Response(null, { status: 204 })
          : undefined;
    let given: Uint8Array | undefined;
    const subscription = {
      toJSON: () => ({ endpoint: "https://push.example/abc", keys: { p256dh: "P", auth: "A" } }),
      unsubscribe: async () => true,
    };
    await alice.enablePush({
      getSubscription: async () => null,
      subscribe: async (o) => {
        given = new Uint8Array(o.applicationServerKey as Uint8Array);
        return subscription;
      },
    });
    expect(given).toEqual(new Uint8Array(65).fill(4));
    const put = server.log.find((r) => r.method === "PUT" && r.path === `/devices/${alice.deviceId}/push`);
    expect(put?.body).toEqual({ endpoint: "https://push.example/abc", keys: { p256dh: "P", auth: "A" } });
  });
});
