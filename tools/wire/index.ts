// Raw contract-v2 material for Node-side tools that speak the protocol without the client library
// (the e2e helpers, the soak, the benchmark's seed): an account key and a device signed by it, and
// random stand-ins for what the server treats as opaque bytes (wrapped keys, message signatures).
// The server verifies device signatures for real, and only sizes and coverage of the rest.
import { generateKeyPairSync, type KeyObject, randomBytes, sign } from "node:crypto";
import type { NewDevice, WrappedKeyUpload } from "../../contract/index.ts";

/** The contract's `DEVICE_SIGNATURE_CONTEXT` (kept here so Node tools need not load contract/ at run time). */
const DEVICE_CONTEXT = "parley-device-v1";

export const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64");
export const randomB64 = (n: number): string => b64(randomBytes(n));

/** The raw 32-byte public key of an Ed25519 or X25519 key pair (the last 32 bytes of its SPKI). */
const rawPublic = (key: KeyObject): Buffer => key.export({ format: "der", type: "spki" }).subarray(-32);

export interface RawIdentity {
  /** The account's Ed25519 public key, base64. */
  accountKey: string;
  /** The first device, signed by the account key. */
  device: NewDevice;
  /** Signs further devices (e.g. an approval) with the account key. */
  signDevice(identityKey: string, signingKey: string): string;
}

/** A fresh account key and a first device whose keys it signs, as `POST /auth/register` wants them. */
export function newIdentity(deviceName = "raw test device"): RawIdentity {
  const account = generateKeyPairSync("ed25519");
  const signDevice = (identityKey: string, signingKey: string) =>
    b64(
      sign(
        null,
        Buffer.concat([
          Buffer.from(DEVICE_CONTEXT, "ascii"),
          Buffer.from(identityKey, "base64"),
          Buffer.from(signingKey, "base64"),
        ]),
        account.privateKey,
      ),
    );
  const device = newDeviceKeys(deviceName);
  return {
    accountKey: b64(rawPublic(account.publicKey)),
    device: { ...device, signature: signDevice(device.identityKey, device.signingKey) },
    signDevice,
  };
}

/** An unsigned device (X25519 identity key, Ed25519 signing key), as a pending login sends it. */
export function newDeviceKeys(name = "raw test device"): Omit<NewDevice, "signature"> {
  return {
    name,
    identityKey: b64(rawPublic(generateKeyPairSync("x25519").publicKey)),
    signingKey: b64(rawPublic(generateKeyPairSync("ed25519").publicKey)),
  };
}

/** Random stand-ins for a wrap v2 (93 bytes) and its 64-byte signature, one per device id. */
export function randomKeys(deviceIds: Iterable<number>): WrappedKeyUpload[] {
  return [...deviceIds].map((deviceId) => ({ deviceId, wrappedKey: randomB64(93), signature: randomB64(64) }));
}

/** A random 64-byte stand-in for a message signature. */
export const randomSignature = (): string => randomB64(64);
