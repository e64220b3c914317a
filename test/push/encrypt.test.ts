import { describe, expect, it } from "vitest";
import { encryptPushPayload, MAX_PLAINTEXT_BYTES, RECORD_SIZE } from "../../src/push/encrypt";
import { decryptPush, fromBase64Url, newUserAgent, toBase64Url } from "./rfc8291";

// RFC 8291 Appendix A, every value verbatim (base64url).
const VECTOR = {
  plaintext: "When I grow up, I want to be a watermelon",
  asPublic: "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8",
  asPrivate: "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw",
  uaPublic: "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
  uaPrivate: "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94",
  auth: "BTBZMqHH6r4Tts7J_aSIgg",
  salt: "DGv6ra1nlYgDCS1FRnbzlw",
  body:
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_" +
    "yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
};

function jwk(privateKey: string, publicKey: string): JsonWebKey {
  const point = fromBase64Url(publicKey);
  return {
    kty: "EC",
    crv: "P-256",
    d: privateKey,
    x: toBase64Url(point.slice(1, 33)),
    y: toBase64Url(point.slice(33)),
  };
}

async function importPair(privateKey: string, publicKey: string): Promise<CryptoKeyPair> {
  const algorithm = { name: "ECDH", namedCurve: "P-256" };
  const { d: _d, ...pub } = jwk(privateKey, publicKey);
  return {
    privateKey: await crypto.subtle.importKey("jwk", jwk(privateKey, publicKey), algorithm, false, ["deriveBits"]),
    publicKey: await crypto.subtle.importKey("jwk", pub, algorithm, true, []),
  };
}

describe("encryptPushPayload (RFC 8291 aes128gcm)", () => {
  it("reproduces RFC 8291 Appendix A byte for byte", async () => {
    const body = await encryptPushPayload(
      new TextEncoder().encode(VECTOR.plaintext),
      { p256dh: fromBase64Url(VECTOR.uaPublic), auth: fromBase64Url(VECTOR.auth) },
      { salt: fromBase64Url(VECTOR.salt), senderKeys: await importPair(VECTOR.asPrivate, VECTOR.asPublic) },
    );
    expect(toBase64Url(body)).toBe(VECTOR.body);
  });

  it("the test's own decryptor reads the RFC's body (so it can judge the server's pushes)", async () => {
    const ua = await importPair(VECTOR.uaPrivate, VECTOR.uaPublic);
    const out = await decryptPush(fromBase64Url(VECTOR.body), {
      privateKey: ua.privateKey,
      publicKey: fromBase64Url(VECTOR.uaPublic),
      auth: fromBase64Url(VECTOR.auth),
    });
    expect(out).toEqual({ plaintext: VECTOR.plaintext, recordSize: 4096 });
  });

  it("pads to a fixed size, one record, within the 4,096-byte payload limit", async () => {
    const ua = await newUserAgent();
    const keys = { p256dh: ua.publicKey, auth: ua.auth };
    const short = await encryptPushPayload(new TextEncoder().encode("{}"), keys, { padTo: 128 });
    const long = await encryptPushPayload(new TextEncoder().encode("x".repeat(100)), keys, { padTo: 128 });
    expect(short.byteLength).toBe(long.byteLength);
    expect((await decryptPush(short, ua)).plaintext).toBe("{}");
    const largest = await encryptPushPayload(new Uint8Array(MAX_PLAINTEXT_BYTES), keys);
    expect(largest.byteLength).toBe(RECORD_SIZE);
    await expect(encryptPushPayload(new Uint8Array(MAX_PLAINTEXT_BYTES + 1), keys)).rejects.toThrow(RangeError);
  });
});
