// The client library's cryptography, run in workerd (the Workers runtime implements X25519, HKDF
// and AES-GCM in Web Crypto like browsers and Node do).
import { describe, expect, it } from "vitest";
import {
  AUTH_TAG_BYTES,
  bytes,
  CryptoFormatError,
  DecryptionError,
  decryptMessage,
  decryptMessageBytes,
  encryptMessage,
  exportIdentityKeys,
  fingerprint,
  fromBase64,
  generateConversationKey,
  generateIdentityKeys,
  importConversationKey,
  importIdentityKeys,
  messageAssociatedData,
  NONCE_BYTES,
  toBase64,
  unwrapConversationKey,
  utf8,
  WRAPPED_KEY_BYTES,
  wrapConversationKey,
} from "../../client/index.ts";
import { KNOWN_ANSWER } from "./vectors.ts";

const ctx = { conversationId: 7, senderId: 1 };

/** `data` with one bit flipped at `index`. */
function flip(data: Uint8Array, index: number): Uint8Array {
  const copy = bytes(data);
  copy[index]! ^= 0x01;
  return copy;
}

/** True when `key` decrypts what `reference` encrypted: the two hold the same secret. */
async function sameKey(reference: CryptoKey, key: CryptoKey): Promise<boolean> {
  const sealed = await encryptMessage(reference, "probe", ctx);
  return (await decryptMessage(key, sealed, ctx)) === "probe";
}

describe("identity keys", () => {
  it("generates a 32-byte X25519 public key and a non-extractable private key by default", async () => {
    const id = await generateIdentityKeys();
    expect(id.publicKeyRaw.byteLength).toBe(32);
    expect(id.privateKey.extractable).toBe(false);
    expect(id.privateKey.algorithm.name).toBe("X25519");
    await expect(exportIdentityKeys(id)).rejects.toBeInstanceOf(CryptoFormatError);
  });

  it("exports and imports an extractable identity that still unwraps its keys", async () => {
    const id = await generateIdentityKeys({ extractable: true });
    const key = await generateConversationKey();
    const wrapped = await wrapConversationKey(key, id.publicKeyRaw);
    const restored = await importIdentityKeys(await exportIdentityKeys(id));
    expect(restored.privateKey.extractable).toBe(false);
    expect(await sameKey(key, await unwrapConversationKey(wrapped, restored))).toBe(true);
  });

  it("gives a stable fingerprint that differs between keys", async () => {
    const a = await generateIdentityKeys();
    const b = await generateIdentityKeys();
    const fa = await fingerprint(a.publicKeyRaw);
    expect(fa).toMatch(/^([0-9a-f]{4} ){7}[0-9a-f]{4}$/);
    expect(await fingerprint(a.publicKeyRaw)).toBe(fa);
    expect(await fingerprint(b.publicKeyRaw)).not.toBe(fa);
  });
});

describe("conversation key wrap (format v1)", () => {
  it("round-trips for the right recipient, in the documented layout", async () => {
    const bob = await generateIdentityKeys();
    const key = await generateConversationKey();
    const wrapped = await wrapConversationKey(key, bob.publicKeyRaw);
    expect(wrapped.byteLength).toBe(WRAPPED_KEY_BYTES);
    expect(WRAPPED_KEY_BYTES).toBe(93);
    expect(wrapped[0]).toBe(1);
    const unwrapped = await unwrapConversationKey(wrapped, bob);
    expect(unwrapped.extractable).toBe(false);
    expect(await sameKey(key, unwrapped)).toBe(true);
  });

  it("uses a fresh ephemeral key and nonce for every wrap", async () => {
    const bob = await generateIdentityKeys();
    const key = await generateConversationKey();
    const w1 = await wrapConversationKey(key, bob.publicKeyRaw);
    const w2 = await wrapConversationKey(key, bob.publicKeyRaw);
    expect(toBase64(w1.subarray(1, 33))).not.toBe(toBase64(w2.subarray(1, 33)));
    expect(toBase64(w1.subarray(33, 45))).not.toBe(toBase64(w2.subarray(33, 45)));
  });

  it("refuses to unwrap for the wrong recipient", async () => {
    const bob = await generateIdentityKeys();
    const carol = await generateIdentityKeys();
    const wrapped = await wrapConversationKey(await generateConversationKey(), bob.publicKeyRaw);
    await expect(unwrapConversationKey(wrapped, carol)).rejects.toBeInstanceOf(DecryptionError);
    // The right private key with a claimed public key that is not its own fails too (it is bound by HKDF).
    await expect(
      unwrapConversationKey(wrapped, { privateKey: bob.privateKey, publicKeyRaw: carol.publicKeyRaw }),
    ).rejects.toBeInstanceOf(DecryptionError);
  });

  it("rejects any altered byte: ephemeral key, nonce, ciphertext or tag", async () => {
    const bob = await generateIdentityKeys();
    const wrapped = await wrapConversationKey(await generateConversationKey(), bob.publicKeyRaw);
    for (const index of [1, 20, 32, 33, 44, 45, 60, 76, 77, 92]) {
      await expect(unwrapConversationKey(flip(wrapped, index), bob), `byte ${index}`).rejects.toThrow();
    }
    for (const index of [33, 44, 45, 76, 77, 92]) {
      await expect(unwrapConversationKey(flip(wrapped, index), bob), `byte ${index}`).rejects.toBeInstanceOf(
        DecryptionError,
      );
    }
  });

  it("refuses unknown versions and wrong lengths with a format error", async () => {
    const bob = await generateIdentityKeys();
    const wrapped = await wrapConversationKey(await generateConversationKey(), bob.publicKeyRaw);
    const v2 = bytes(wrapped);
    v2[0] = 2;
    await expect(unwrapConversationKey(v2, bob)).rejects.toThrow(/unsupported key wrap version 2/);
    await expect(unwrapConversationKey(wrapped.subarray(0, 92), bob)).rejects.toBeInstanceOf(CryptoFormatError);
    await expect(unwrapConversationKey(new Uint8Array(0), bob)).rejects.toBeInstanceOf(CryptoFormatError);
  });

  it("refuses a recipient key of the wrong size and a low-order (all-zero) key", async () => {
    const key = await generateConversationKey();
    await expect(wrapConversationKey(key, new Uint8Array(31))).rejects.toBeInstanceOf(CryptoFormatError);
    await expect(wrapConversationKey(key, new Uint8Array(32))).rejects.toThrow();
  });

  it("wraps raw key bytes the same way as a CryptoKey", async () => {
    const bob = await generateIdentityKeys();
    const raw = crypto.getRandomValues(new Uint8Array(32));
    const unwrapped = await unwrapConversationKey(await wrapConversationKey(raw, bob.publicKeyRaw), bob);
    expect(await sameKey(await importConversationKey(raw), unwrapped)).toBe(true);
  });

  it("still reads the known-answer vector (the v1 format is frozen)", async () => {
    const recipient = await importIdentityKeys({
      publicKey: fromBase64(KNOWN_ANSWER.recipientPublicKey),
      privateKey: fromBase64(KNOWN_ANSWER.recipientPrivateKeyPkcs8),
    });
    const key = await unwrapConversationKey(fromBase64(KNOWN_ANSWER.wrappedKey), recipient, { extractable: true });
    expect(toBase64(bytes((await crypto.subtle.exportKey("raw", key)) as ArrayBuffer))).toBe(
      KNOWN_ANSWER.conversationKey,
    );
    const m = KNOWN_ANSWER.message;
    const text = await decryptMessage(
      key,
      {
        nonce: fromBase64(m.nonce),
        ciphertext: fromBase64(m.ciphertext),
        authTag: fromBase64(m.authTag),
        associatedData: fromBase64(m.associatedData),
      },
      { conversationId: m.conversationId, senderId: m.senderId },
    );
    expect(text).toBe(m.plaintext);
  });
});

describe("messages (format v1)", () => {
  it("round-trips text, with a fresh 12-byte nonce and a separate 16-byte tag", async () => {
    const key = await generateConversationKey();
    const text = "héllo, wörld 👋 — ünïcode";
    const a = await encryptMessage(key, text, ctx);
    const b = await encryptMessage(key, text, ctx);
    expect(a.nonce.byteLength).toBe(NONCE_BYTES);
    expect(a.authTag.byteLength).toBe(AUTH_TAG_BYTES);
    expect(a.ciphertext.byteLength).toBe(utf8(text).byteLength);
    expect(toBase64(a.nonce)).not.toBe(toBase64(b.nonce));
    expect(toBase64(a.ciphertext)).not.toBe(toBase64(b.ciphertext));
    expect(await decryptMessage(key, a, ctx)).toBe(text);
    expect(await decryptMessage(key, b, ctx)).toBe(text);
  });

  it("round-trips bytes and survives base64 transport", async () => {
    const key = await generateConversationKey();
    const payload = crypto.getRandomValues(new Uint8Array(4096));
    const sealed = await encryptMessage(key, payload, ctx);
    const wire = {
      nonce: toBase64(sealed.nonce),
      ciphertext: toBase64(sealed.ciphertext),
      authTag: toBase64(sealed.authTag),
    };
    const back = {
      nonce: fromBase64(wire.nonce),
      ciphertext: fromBase64(wire.ciphertext),
      authTag: fromBase64(wire.authTag),
    };
    expect(toBase64(await decryptMessageBytes(key, back, ctx))).toBe(toBase64(payload));
  });

  it("binds version, conversation and sender in the associated data", async () => {
    expect(new TextDecoder().decode(messageAssociatedData(ctx))).toBe("parley/message/v1;conversation=7;sender=1");
    expect(() => messageAssociatedData({ conversationId: 0, senderId: 1 })).toThrow(TypeError);
    expect(() => messageAssociatedData({ conversationId: 1.5, senderId: 1 })).toThrow(TypeError);
  });

  it("rejects tampered ciphertext, tag and nonce", async () => {
    const key = await generateConversationKey();
    const sealed = await encryptMessage(key, "attack at dawn", ctx);
    for (const i of [0, 5, sealed.ciphertext.byteLength - 1]) {
      await expect(
        decryptMessage(key, { ...sealed, ciphertext: flip(sealed.ciphertext, i) }, ctx),
      ).rejects.toBeInstanceOf(DecryptionError);
    }
    for (const i of [0, 15]) {
      await expect(decryptMessage(key, { ...sealed, authTag: flip(sealed.authTag, i) }, ctx)).rejects.toBeInstanceOf(
        DecryptionError,
      );
    }
    await expect(decryptMessage(key, { ...sealed, nonce: flip(sealed.nonce, 3) }, ctx)).rejects.toBeInstanceOf(
      DecryptionError,
    );
    await expect(
      decryptMessage(key, { ...sealed, ciphertext: sealed.ciphertext.subarray(1) }, ctx),
    ).rejects.toBeInstanceOf(DecryptionError);
    await expect(
      decryptMessage(key, { ...sealed, authTag: sealed.authTag.subarray(0, 12) }, ctx),
    ).rejects.toBeInstanceOf(CryptoFormatError);
  });

  it("rejects a message read as another conversation's or another sender's (AAD)", async () => {
    const key = await generateConversationKey();
    const sealed = await encryptMessage(key, "for conversation 7 from user 1", ctx);
    const { associatedData: _stored, ...withoutStored } = sealed;
    // The reader rebuilds the associated data from what it is reading: a moved message fails.
    await expect(decryptMessage(key, withoutStored, { conversationId: 8, senderId: 1 })).rejects.toBeInstanceOf(
      DecryptionError,
    );
    await expect(decryptMessage(key, withoutStored, { conversationId: 7, senderId: 2 })).rejects.toBeInstanceOf(
      DecryptionError,
    );
    // A stored copy that was altered is refused before decryption.
    await expect(
      decryptMessage(key, { ...sealed, associatedData: flip(sealed.associatedData, 30) }, ctx),
    ).rejects.toBeInstanceOf(DecryptionError);
    // A future format version is named as such.
    await expect(
      decryptMessage(key, { ...sealed, associatedData: utf8("parley/message/v2;conversation=7;sender=1") }, ctx),
    ).rejects.toThrow(/unsupported message format: parley\/message\/v2/);
    expect(await decryptMessage(key, withoutStored, ctx)).toBe("for conversation 7 from user 1");
  });

  it("rejects the wrong conversation key", async () => {
    const sealed = await encryptMessage(await generateConversationKey(), "secret", ctx);
    await expect(decryptMessage(await generateConversationKey(), sealed, ctx)).rejects.toBeInstanceOf(DecryptionError);
  });

  it("end to end: what Alice wraps and encrypts, Bob unwraps and reads; Carol cannot", async () => {
    const [alice, bob, carol] = await Promise.all([
      generateIdentityKeys(),
      generateIdentityKeys(),
      generateIdentityKeys(),
    ]);
    const key = await generateConversationKey();
    const forAlice = await wrapConversationKey(key, alice.publicKeyRaw);
    const forBob = await wrapConversationKey(key, bob.publicKeyRaw);
    const sealed = await encryptMessage(await unwrapConversationKey(forAlice, alice), "hi Bob", ctx);
    expect(await decryptMessage(await unwrapConversationKey(forBob, bob), sealed, ctx)).toBe("hi Bob");
    await expect(unwrapConversationKey(forBob, carol)).rejects.toBeInstanceOf(DecryptionError);
  });
});

describe("base64", () => {
  it("round-trips every byte value and matches the standard alphabet with padding", () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    expect(toBase64(fromBase64(toBase64(all)))).toBe(toBase64(all));
    expect(toBase64(Uint8Array.of(0xfb, 0xff))).toBe("+/8=");
    expect(toBase64(new Uint8Array(0))).toBe("");
  });

  it("refuses the URL-safe alphabet, missing padding and whitespace", () => {
    expect(() => fromBase64("-_8=")).toThrow(TypeError);
    expect(() => fromBase64("+/8")).toThrow(TypeError);
    expect(() => fromBase64("+/8= ")).toThrow(TypeError);
  });
});
