// The client library's formats (wrap v2, message v2, device signature, provisioning, comparison
// code), run in workerd. Where a format is documented byte by byte, a test rebuilds it with raw Web
// Crypto calls from docs/client.md and checks the library agrees.
import { describe, expect, it } from "vitest";
import {
  type Bytes,
  bytes,
  CryptoFormatError,
  comparisonCode,
  concatBytes,
  DEVICE_SIGNATURE_CONTEXT,
  DecryptionError,
  decryptMessage,
  deviceSignatureData,
  encryptMessage,
  exportAccountPrivateKey,
  generateAccountKeys,
  generateDeviceKeys,
  generateEpochKey,
  importAccountKeys,
  importEpochKey,
  MAX_PROVISIONING_BYTES,
  type MessageBinding,
  messageAssociatedData,
  openProvisioning,
  PROVISIONED_KEY_BYTES,
  provisioningCapacity,
  SignatureError,
  sealProvisioning,
  signDevice,
  toHex,
  UNBOUND_CONVERSATION,
  unwrapEpochKey,
  utf8,
  verifyDeviceSignature,
  WRAPPED_KEY_BYTES,
  wrapEpochKey,
  wrapSignatureData,
} from "../../client/index.ts";

const subtle = crypto.subtle;

function flip(data: Uint8Array, index: number): Bytes {
  const copy = bytes(data);
  copy[index]! ^= 0x01;
  return copy;
}

const raw = async (key: CryptoKey) => bytes((await subtle.exportKey("raw", key)) as ArrayBuffer);
const be = (value: number, size: 4 | 8) => {
  const out = new Uint8Array(size);
  if (size === 8) new DataView(out.buffer).setBigUint64(0, BigInt(value));
  else new DataView(out.buffer).setUint32(0, value);
  return out;
};
const label = (s: string) => concatBytes(utf8(s), Uint8Array.of(0));

async function device() {
  const keys = await generateDeviceKeys();
  return { keys, recipient: { privateKey: keys.identity.privateKey, publicKeyRaw: keys.identity.publicKeyRaw } };
}

describe("account and device keys", () => {
  it("makes non-extractable device keys and an extractable account key", async () => {
    const { keys } = await device();
    expect(keys.identity.privateKey.extractable).toBe(false);
    expect(keys.signing.privateKey.extractable).toBe(false);
    expect(keys.identity.privateKey.algorithm.name).toBe("X25519");
    expect(keys.signing.privateKey.algorithm.name).toBe("Ed25519");
    expect(keys.identity.publicKeyRaw.byteLength).toBe(32);
    const account = await generateAccountKeys();
    expect(account.publicKeyRaw.byteLength).toBe(32);
    expect(account.privateKey.extractable).toBe(true);
  });

  it('signs exactly "parley-device-v1" ‖ identityKey ‖ signingKey, checkable with Web Crypto alone', async () => {
    const account = await generateAccountKeys();
    const { keys } = await device();
    const pub = { identityKey: keys.identity.publicKeyRaw, signingKey: keys.signing.publicKeyRaw };
    const signature = await signDevice(account, pub);
    expect(signature.byteLength).toBe(64);
    const data = concatBytes(utf8(DEVICE_SIGNATURE_CONTEXT), pub.identityKey, pub.signingKey);
    expect(toHex(deviceSignatureData(pub))).toBe(toHex(data));
    expect(data.byteLength).toBe(16 + 64);
    const verifier = await subtle.importKey("raw", account.publicKeyRaw, { name: "Ed25519" }, false, ["verify"]);
    expect(await subtle.verify({ name: "Ed25519" }, verifier, signature, data)).toBe(true);
    await verifyDeviceSignature(account.publicKeyRaw, pub, signature);
  });

  it("rejects a device signature that does not verify: tampered, another account's, swapped keys, missing", async () => {
    const account = await generateAccountKeys();
    const other = await generateAccountKeys();
    const { keys } = await device();
    const pub = { identityKey: keys.identity.publicKeyRaw, signingKey: keys.signing.publicKeyRaw };
    const signature = await signDevice(account, pub);
    await expect(verifyDeviceSignature(account.publicKeyRaw, pub, flip(signature, 10))).rejects.toBeInstanceOf(
      SignatureError,
    );
    await expect(verifyDeviceSignature(other.publicKeyRaw, pub, signature)).rejects.toBeInstanceOf(SignatureError);
    const swapped = { identityKey: pub.signingKey, signingKey: pub.identityKey };
    await expect(verifyDeviceSignature(account.publicKeyRaw, swapped, signature)).rejects.toBeInstanceOf(
      SignatureError,
    );
    const attacker = (await device()).keys;
    const replaced = { ...pub, identityKey: attacker.identity.publicKeyRaw };
    await expect(verifyDeviceSignature(account.publicKeyRaw, replaced, signature)).rejects.toBeInstanceOf(
      SignatureError,
    );
    await expect(verifyDeviceSignature(account.publicKeyRaw, pub, null)).rejects.toBeInstanceOf(CryptoFormatError);
  });

  it("derives a 12-digit comparison code from the account key and the device's keys, as documented", async () => {
    const account = await generateAccountKeys();
    const { keys } = await device();
    const pub = { identityKey: keys.identity.publicKeyRaw, signingKey: keys.signing.publicKeyRaw };
    const code = await comparisonCode(account.publicKeyRaw, pub);
    expect(code).toMatch(/^\d{4} \d{4} \d{4}$/);
    expect(await comparisonCode(account.publicKeyRaw, { ...pub })).toBe(code);
    // Independently: HKDF-SHA-256(ikm = A ‖ I ‖ S, salt = 32 zero bytes, info = label‖0), 8 bytes, mod 10^12.
    const ikm = await subtle.importKey(
      "raw",
      concatBytes(account.publicKeyRaw, pub.identityKey, pub.signingKey),
      "HKDF",
      false,
      ["deriveBits"],
    );
    const info = label("parley/comparison-code/v1");
    const out = await subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(32), info }, ikm, 64);
    const n = new DataView(out).getBigUint64(0) % 10n ** 12n;
    expect(code.replace(/ /g, "")).toBe(n.toString().padStart(12, "0"));
    // Any other key gives another code.
    const other = (await device()).keys;
    expect(await comparisonCode(account.publicKeyRaw, { ...pub, signingKey: other.signing.publicKeyRaw })).not.toBe(
      code,
    );
    expect(await comparisonCode(account.publicKeyRaw, { ...pub, identityKey: other.identity.publicKeyRaw })).not.toBe(
      code,
    );
    expect(await comparisonCode((await generateAccountKeys()).publicKeyRaw, pub)).not.toBe(code);
  });
});

describe("wrap format v2", () => {
  const binding = { conversationId: 7, epoch: 3, recipientDeviceId: 12 };

  it("round-trips, 93 bytes, and opens with a from-scratch implementation of the documented format", async () => {
    const wrapper = (await device()).keys;
    const { keys, recipient } = await device();
    const epochKey = await generateEpochKey();
    const { wrappedKey, signature } = await wrapEpochKey(
      epochKey,
      keys.identity.publicKeyRaw,
      binding,
      wrapper.signing.privateKey,
    );
    expect(wrappedKey.byteLength).toBe(WRAPPED_KEY_BYTES);
    expect(WRAPPED_KEY_BYTES).toBe(93);
    expect(wrappedKey[0]).toBe(2);
    const opened = await unwrapEpochKey(wrappedKey, signature, binding, wrapper.signing.publicKeyRaw, recipient);
    expect(toHex(opened)).toBe(toHex(await raw(epochKey)));

    // The signature: Ed25519 over label ‖ conversationId(8) ‖ epoch(4) ‖ recipientDeviceId(8) ‖ wrappedKey.
    const bound = concatBytes(be(7, 8), be(3, 4), be(12, 8));
    const signed = concatBytes(label("parley/key-wrap-signature/v2"), bound, wrappedKey);
    expect(toHex(wrapSignatureData(binding, wrappedKey))).toBe(toHex(signed));
    const verifier = await subtle.importKey("raw", wrapper.signing.publicKeyRaw, { name: "Ed25519" }, false, [
      "verify",
    ]);
    expect(await subtle.verify({ name: "Ed25519" }, verifier, signature, signed)).toBe(true);

    // The cipher: X25519 + HKDF(info = label ‖ eph ‖ recipient ‖ binding) + AES-GCM(aad = label ‖ 0x02 ‖ eph ‖ binding).
    const eph = wrappedKey.slice(1, 33);
    const ephKey = await subtle.importKey("raw", eph, { name: "X25519" }, false, []);
    const shared = await subtle.deriveBits({ name: "X25519", public: ephKey } as any, keys.identity.privateKey, 256);
    const l = label("parley/key-wrap/v2");
    const ikm = await subtle.importKey("raw", shared, "HKDF", false, ["deriveKey"]);
    const kek = await subtle.deriveKey(
      {
        name: "HKDF",
        hash: "SHA-256",
        salt: new Uint8Array(32),
        info: concatBytes(l, eph, keys.identity.publicKeyRaw, bound),
      },
      ikm,
      { name: "AES-GCM", length: 256 },
      false,
      ["decrypt"],
    );
    const plain = await subtle.decrypt(
      { name: "AES-GCM", iv: wrappedKey.slice(33, 45), additionalData: concatBytes(l, Uint8Array.of(2), eph, bound) },
      kek,
      wrappedKey.slice(45),
    );
    expect(toHex(bytes(plain))).toBe(toHex(await raw(epochKey)));
  });

  it("rejects a tampered signature, a tampered wrap and another wrapper's key", async () => {
    const wrapper = (await device()).keys;
    const stranger = (await device()).keys;
    const { keys, recipient } = await device();
    const w = await wrapEpochKey(
      await generateEpochKey(),
      keys.identity.publicKeyRaw,
      binding,
      wrapper.signing.privateKey,
    );
    const pub = wrapper.signing.publicKeyRaw;
    await expect(unwrapEpochKey(w.wrappedKey, flip(w.signature, 0), binding, pub, recipient)).rejects.toBeInstanceOf(
      SignatureError,
    );
    await expect(unwrapEpochKey(w.wrappedKey, flip(w.signature, 63), binding, pub, recipient)).rejects.toBeInstanceOf(
      SignatureError,
    );
    for (const i of [1, 33, 50, 92]) {
      await expect(unwrapEpochKey(flip(w.wrappedKey, i), w.signature, binding, pub, recipient)).rejects.toBeInstanceOf(
        SignatureError,
      );
    }
    await expect(
      unwrapEpochKey(w.wrappedKey, w.signature, binding, stranger.signing.publicKeyRaw, recipient),
    ).rejects.toBeInstanceOf(SignatureError);
  });

  it("rejects a wrap bound to another conversation, epoch or device, even when re-signed by a valid device", async () => {
    const wrapper = (await device()).keys;
    const { keys, recipient } = await device();
    const w = await wrapEpochKey(
      await generateEpochKey(),
      keys.identity.publicKeyRaw,
      binding,
      wrapper.signing.privateKey,
    );
    const pub = wrapper.signing.publicKeyRaw;
    for (const moved of [
      { ...binding, conversationId: 8 },
      { ...binding, epoch: 4 },
      { ...binding, epoch: 2 },
      { ...binding, recipientDeviceId: 13 },
    ]) {
      await expect(unwrapEpochKey(w.wrappedKey, w.signature, moved, pub, recipient)).rejects.toBeInstanceOf(
        SignatureError,
      );
      // A device that may sign (the wrapper itself, say) re-signs the same bytes for the new place:
      // the cipher is bound too, so it still does not open.
      const resigned = bytes(
        await subtle.sign({ name: "Ed25519" }, wrapper.signing.privateKey, wrapSignatureData(moved, w.wrappedKey)),
      );
      await expect(unwrapEpochKey(w.wrappedKey, resigned, moved, pub, recipient)).rejects.toBeInstanceOf(
        DecryptionError,
      );
    }
  });

  it("does not open for another recipient, and refuses unknown versions, wrong sizes and unbound later epochs", async () => {
    const wrapper = (await device()).keys;
    const { keys } = await device();
    const other = await device();
    const w = await wrapEpochKey(
      await generateEpochKey(),
      keys.identity.publicKeyRaw,
      binding,
      wrapper.signing.privateKey,
    );
    const pub = wrapper.signing.publicKeyRaw;
    await expect(unwrapEpochKey(w.wrappedKey, w.signature, binding, pub, other.recipient)).rejects.toBeInstanceOf(
      DecryptionError,
    );
    const v1 = bytes(w.wrappedKey);
    v1[0] = 1;
    await expect(unwrapEpochKey(v1, w.signature, binding, pub, other.recipient)).rejects.toThrow(
      /unsupported key wrap version 1/,
    );
    await expect(
      unwrapEpochKey(w.wrappedKey.subarray(0, 92), w.signature, binding, pub, other.recipient),
    ).rejects.toBeInstanceOf(CryptoFormatError);
    const creation = { conversationId: UNBOUND_CONVERSATION, epoch: 2, recipientDeviceId: 12 };
    await expect(
      wrapEpochKey(await generateEpochKey(), keys.identity.publicKeyRaw, creation, wrapper.signing.privateKey),
    ).rejects.toBeInstanceOf(CryptoFormatError);
    await expect(
      wrapEpochKey(new Uint8Array(32), new Uint8Array(32), binding, wrapper.signing.privateKey),
    ).rejects.toThrow();
  });
});

describe("message format v2", () => {
  const b: MessageBinding = { conversationId: 7, senderId: 1, senderDeviceId: 5, epoch: 3 };

  async function setup(text = "meet at noon") {
    const sender = (await device()).keys;
    const key = await generateEpochKey();
    const sealed = await encryptMessage(key, text, b, sender.signing.privateKey);
    return { sender, key, sealed, pub: sender.signing.publicKeyRaw };
  }

  it("round-trips, with the documented associated data and signed bytes", async () => {
    const { key, sealed, pub } = await setup("héllo 👋");
    expect(await decryptMessage(key, sealed, b, pub)).toBe("héllo 👋");
    const ad = concatBytes(label("parley/message/v2"), be(7, 8), be(1, 8), be(5, 8), be(3, 4));
    expect(toHex(messageAssociatedData(b))).toBe(toHex(ad));
    expect(toHex(sealed.associatedData)).toBe(toHex(ad));
    const signed = concatBytes(
      label("parley/message-signature/v2"),
      ad,
      sealed.nonce,
      be(sealed.ciphertext.byteLength, 4),
      sealed.ciphertext,
      sealed.authTag,
    );
    const verifier = await subtle.importKey("raw", pub, { name: "Ed25519" }, false, ["verify"]);
    expect(await subtle.verify({ name: "Ed25519" }, verifier, sealed.signature, signed)).toBe(true);
    // And the cipher is plain AES-256-GCM under the epoch key with that AD.
    const plain = await subtle.decrypt(
      { name: "AES-GCM", iv: sealed.nonce, additionalData: ad },
      key,
      concatBytes(sealed.ciphertext, sealed.authTag),
    );
    expect(new TextDecoder().decode(plain)).toBe("héllo 👋");
  });

  it("rejects a signature that does not verify: tampered, or made by another device", async () => {
    const { key, sealed, pub } = await setup();
    await expect(
      decryptMessage(key, { ...sealed, signature: flip(sealed.signature, 5) }, b, pub),
    ).rejects.toBeInstanceOf(SignatureError);
    const stranger = (await device()).keys;
    await expect(decryptMessage(key, sealed, b, stranger.signing.publicKeyRaw)).rejects.toBeInstanceOf(SignatureError);
    // A ciphertext or tag changed by the server breaks the signature before the cipher is tried.
    await expect(
      decryptMessage(key, { ...sealed, ciphertext: flip(sealed.ciphertext, 0) }, b, pub),
    ).rejects.toBeInstanceOf(SignatureError);
    await expect(decryptMessage(key, { ...sealed, nonce: flip(sealed.nonce, 0) }, b, pub)).rejects.toBeInstanceOf(
      SignatureError,
    );
  });

  it("rejects a message moved to another conversation, epoch, sender or sender device", async () => {
    const { key, sealed, pub } = await setup();
    const { associatedData: _stored, ...wire } = sealed;
    for (const moved of [
      { ...b, conversationId: 8 },
      { ...b, epoch: 4 },
      { ...b, senderId: 2 },
      { ...b, senderDeviceId: 6 },
    ]) {
      await expect(decryptMessage(key, wire, moved, pub)).rejects.toBeInstanceOf(SignatureError);
      await expect(decryptMessage(key, sealed, moved, pub)).rejects.toBeInstanceOf(DecryptionError); // stored AD differs
    }
    expect(await decryptMessage(key, wire, b, pub)).toBe("meet at noon");
  });

  it("still refuses a moved message re-signed by the claimed sender device (the AEAD binds it too)", async () => {
    const { sender, key, sealed, pub } = await setup();
    const moved = { ...b, conversationId: 8 };
    const { messageSignatureData } = await import("../../client/index.ts");
    const resigned = bytes(
      await subtle.sign(
        { name: "Ed25519" },
        sender.signing.privateKey,
        messageSignatureData(messageAssociatedData(moved), sealed.nonce, sealed.ciphertext, sealed.authTag),
      ),
    );
    await expect(
      decryptMessage(key, { ...sealed, associatedData: null, signature: resigned }, moved, pub),
    ).rejects.toBeInstanceOf(DecryptionError);
  });

  it("rejects the wrong epoch key and bad sizes", async () => {
    const { sealed, pub } = await setup();
    await expect(decryptMessage(await generateEpochKey(), sealed, b, pub)).rejects.toBeInstanceOf(DecryptionError);
    await expect(
      decryptMessage(
        await importEpochKey(new Uint8Array(32)),
        { ...sealed, authTag: sealed.authTag.subarray(0, 12) },
        b,
        pub,
      ),
    ).rejects.toBeInstanceOf(CryptoFormatError);
    expect(() => messageAssociatedData({ ...b, epoch: 0 })).toThrow(TypeError);
  });
});

describe("provisioning envelope", () => {
  it("carries the account key to the new device only, under 4 KiB, and proves it matches", async () => {
    const account = await generateAccountKeys();
    const { keys } = await device();
    const pkcs8 = await exportAccountPrivateKey(account);
    const envelope = await sealProvisioning(
      { accountPublicKey: account.publicKeyRaw, accountPrivateKeyPkcs8: pkcs8 },
      { userId: 1, deviceId: 9, identityKey: keys.identity.publicKeyRaw },
    );
    expect(envelope.byteLength).toBeLessThanOrEqual(MAX_PROVISIONING_BYTES);
    expect(envelope[0]).toBe(2);
    const self = {
      userId: 1,
      deviceId: 9,
      privateKey: keys.identity.privateKey,
      publicKeyRaw: keys.identity.publicKeyRaw,
    };
    const payload = await openProvisioning(envelope, self);
    expect(toHex(payload.accountPublicKey)).toBe(toHex(account.publicKeyRaw));
    const imported = await importAccountKeys(payload.accountPrivateKeyPkcs8, payload.accountPublicKey);
    const pub = { identityKey: keys.identity.publicKeyRaw, signingKey: keys.signing.publicKeyRaw };
    await verifyDeviceSignature(account.publicKeyRaw, pub, await signDevice(imported, pub));

    await expect(openProvisioning(envelope, { ...self, deviceId: 10 })).rejects.toBeInstanceOf(DecryptionError);
    await expect(openProvisioning(envelope, { ...self, userId: 2 })).rejects.toBeInstanceOf(DecryptionError);
    await expect(openProvisioning(flip(envelope, 60), self)).rejects.toBeInstanceOf(DecryptionError);
    const other = await device();
    await expect(openProvisioning(envelope, { ...self, ...other.recipient })).rejects.toBeInstanceOf(DecryptionError);
    // A private key that is not the account key's is refused.
    const stranger = await generateAccountKeys();
    await expect(
      importAccountKeys(await exportAccountPrivateKey(stranger), account.publicKeyRaw),
    ).rejects.toBeInstanceOf(SignatureError);
  });

  it("v2 carries earlier epoch keys, newest first, in the documented layout, and refuses more than 4 KiB", async () => {
    const account = await generateAccountKeys();
    const { keys } = await device();
    const pkcs8 = await exportAccountPrivateKey(account);
    expect(pkcs8.byteLength).toBe(48);
    const capacity = provisioningCapacity(pkcs8.byteLength);
    expect(capacity).toBe(87);
    const epochKeys = Array.from({ length: capacity }, (_, i) => ({
      conversationId: 1000 + i,
      epoch: capacity - i,
      bound: i % 2 === 0,
      key: bytes(crypto.getRandomValues(new Uint8Array(32))),
    }));
    const recipient = { userId: 7, deviceId: 9, identityKey: keys.identity.publicKeyRaw };
    const envelope = await sealProvisioning(
      { accountPublicKey: account.publicKeyRaw, accountPrivateKeyPkcs8: pkcs8, epochKeys },
      recipient,
    );
    expect(envelope[0]).toBe(2);
    expect(envelope.byteLength).toBe(61 + 32 + 4 + 48 + 2 + capacity * PROVISIONED_KEY_BYTES);
    expect(envelope.byteLength).toBeLessThanOrEqual(MAX_PROVISIONING_BYTES);

    // Independently: X25519 + HKDF(info = label ‖ eph ‖ identityKey ‖ binding) + AES-GCM(aad = label ‖ 0x02 ‖ eph ‖ binding).
    const l = label("parley/provisioning/v2");
    const eph = envelope.slice(1, 33);
    const bound = concatBytes(be(7, 8), be(9, 8));
    const ephKey = await subtle.importKey("raw", eph, { name: "X25519" }, false, []);
    const shared = await subtle.deriveBits({ name: "X25519", public: ephKey } as any, keys.identity.privateKey, 256);
    const ikm = await subtle.importKey("raw", shared, "HKDF", false, ["deriveKey"]);
    const kek = await subtle.deriveKey(
      {
        name: "HKDF",
        hash: "SHA-256",
        salt: new Uint8Array(32),
        info: concatBytes(l, eph, keys.identity.publicKeyRaw, bound),
      },
      ikm,
      { name: "AES-GCM", length: 256 },
      false,
      ["decrypt"],
    );
    const plain = bytes(
      await subtle.decrypt(
        { name: "AES-GCM", iv: envelope.slice(33, 45), additionalData: concatBytes(l, Uint8Array.of(2), eph, bound) },
        kek,
        envelope.slice(45),
      ),
    );
    const view = new DataView(plain.buffer);
    expect(toHex(plain.slice(0, 32))).toBe(toHex(account.publicKeyRaw));
    expect(view.getUint32(32)).toBe(48);
    expect(view.getUint16(36 + 48)).toBe(capacity);
    const second = 38 + 48 + PROVISIONED_KEY_BYTES;
    expect(Number(view.getBigUint64(second))).toBe(1001);
    expect(view.getUint32(second + 8)).toBe(capacity - 1);
    expect(plain[second + 12]).toBe(0); // not bound
    expect(toHex(plain.slice(second + 13, second + 45))).toBe(toHex(epochKeys[1]!.key));

    const opened = await openProvisioning(envelope, {
      userId: 7,
      deviceId: 9,
      privateKey: keys.identity.privateKey,
      publicKeyRaw: keys.identity.publicKeyRaw,
    });
    expect(opened.epochKeys!.map((k) => [k.conversationId, k.epoch, k.bound, toHex(k.key)])).toEqual(
      epochKeys.map((k) => [k.conversationId, k.epoch, k.bound, toHex(k.key)]),
    );
    const oneMore = [...epochKeys, { ...epochKeys[0]!, conversationId: 5 }];
    await expect(
      sealProvisioning(
        { accountPublicKey: account.publicKeyRaw, accountPrivateKeyPkcs8: pkcs8, epochKeys: oneMore },
        recipient,
      ),
    ).rejects.toBeInstanceOf(CryptoFormatError);
  });
});
