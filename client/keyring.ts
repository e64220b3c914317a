/**
 * Epoch keys. Every key this device was ever given is kept (in the store, non-extractable), so
 * messages of every epoch stay readable. A key is accepted only if its wrap's signature verifies
 * against the wrapping device, itself verified against its user's pinned account key, and the
 * wrap is bound to this conversation, this epoch and this device. New epochs (rotation) are made
 * here: fetch the participants' devices, verify each, wrap a fresh key for each, commit.
 */
import type { EpochCommitted, Key, WrappedKeyUpload } from "../contract/index.ts";
import { type Bytes, fromBase64, toBase64 } from "./bytes.ts";
import { generateEpochKey, importEpochKey } from "./crypto/keys.ts";
import { exportRaw } from "./crypto/primitives.ts";
import {
  type ProvisionedEpochKey,
  UNBOUND_CONVERSATION,
  unwrapEpochKey,
  type WrapBinding,
  wrapEpochKey,
} from "./crypto/wrap.ts";
import { type HttpTransport, ParleyError } from "./http.ts";
import type { ClientStore, DeviceRecord, EpochKeyRecord, VerifiedDeviceRecord } from "./store.ts";
import { type Directory, UnknownDeviceError } from "./trust.ts";

/** This device holds no usable key for that conversation and epoch. */
export class MissingKeyError extends Error {
  override name = "MissingKeyError";
}

export interface KeyRingDeps {
  http: HttpTransport;
  store: ClientStore;
  prefix: () => string;
  directory: Directory;
  /** This device (active). */
  self: () => DeviceRecord;
  /** Errors met while accepting keys that do not stop the others (a bad wrap among good ones). */
  onError: (error: unknown) => void;
}

export class KeyRing {
  private readonly d: KeyRingDeps;
  private readonly loading = new Map<number, Promise<void>>();

  constructor(deps: KeyRingDeps) {
    this.d = deps;
  }

  private key = (conversationId: number, epoch: number) => `${this.d.prefix()}epoch/${conversationId}/${epoch}`;

  held(conversationId: number, epoch: number): Promise<EpochKeyRecord | undefined> {
    return this.d.store.get<EpochKeyRecord>(this.key(conversationId, epoch));
  }

  /** The key of one epoch, fetched (`GET /conversations/{id}/keys`) if not held yet. */
  async get(conversationId: number, epoch: number): Promise<EpochKeyRecord> {
    const held = await this.held(conversationId, epoch);
    if (held) return held;
    await this.load(conversationId);
    const loaded = await this.held(conversationId, epoch);
    if (!loaded) throw new MissingKeyError(`no key for epoch ${epoch} of conversation ${conversationId}`);
    return loaded;
  }

  /** Fetches every epoch key wrapped for this device and keeps each one that verifies. */
  load(conversationId: number): Promise<void> {
    let pending = this.loading.get(conversationId);
    if (!pending) {
      pending = (async () => {
        const keys = await this.d.http.request<Key[]>("GET", `/conversations/${conversationId}/keys`);
        for (const key of keys) {
          if (await this.held(conversationId, key.epoch)) continue;
          try {
            await this.accept(conversationId, key);
          } catch (err) {
            this.d.onError(err);
          }
        }
      })().finally(() => this.loading.delete(conversationId));
      this.loading.set(conversationId, pending);
    }
    return pending;
  }

  /**
   * Verifies and unwraps one key wrapped for this device, returning the raw bytes (zero them after
   * use) and whether it was bound to the conversation (false for another device's creation wrap).
   */
  async unwrap(conversationId: number, key: Key): Promise<{ raw: Bytes; bound: boolean }> {
    const self = this.d.self();
    const wrapper = await this.d.directory.findDevice(key.wrappedBy.deviceId, { conversationId });
    if (wrapper.userId !== key.wrappedBy.userId) {
      throw new UnknownDeviceError(`device ${wrapper.deviceId} does not belong to user ${key.wrappedBy.userId}`);
    }
    const wrapped = fromBase64(key.wrappedKey);
    const signature = fromBase64(key.signature);
    const recipient = { privateKey: self.keys.identity.privateKey, publicKeyRaw: self.keys.identity.publicKeyRaw };
    const binding: WrapBinding = { conversationId, epoch: key.epoch, recipientDeviceId: self.deviceId };
    try {
      return { raw: await unwrapEpochKey(wrapped, signature, binding, wrapper.signingKey, recipient), bound: true };
    } catch (err) {
      if (key.epoch !== 1) throw err;
      // A creation wrap (the conversation had no id yet): readable, but not proof of this conversation.
      const creation = { ...binding, conversationId: UNBOUND_CONVERSATION };
      const raw = await unwrapEpochKey(wrapped, signature, creation, wrapper.signingKey, recipient).catch(() => {
        throw err;
      });
      return { raw, bound: wrapper.deviceId === self.deviceId };
    }
  }

  /**
   * Earlier epoch keys (below each conversation's current epoch) this device can open, for a new
   * device of the same account: newest first by the epoch's commit time, at most `limit`. An epoch 1
   * that was replaced within a minute (this library commits epoch 2 right after creating a
   * conversation, so its epoch 1 carries no messages) comes after every other one. Keys that do not
   * verify are skipped (reported through `onError`). Raw bytes: the caller zeroes them.
   */
  async earlierKeys(
    conversations: { conversationId: number; epoch: number }[],
    limit: number,
  ): Promise<ProvisionedEpochKey[]> {
    if (limit <= 0) return [];
    const candidates: { conversationId: number; key: Key; rank: number }[] = [];
    const queue = conversations.filter((c) => c.epoch > 1);
    const worker = async () => {
      for (let c = queue.shift(); c; c = queue.shift()) {
        const { conversationId, epoch } = c;
        const keys = await this.d.http.request<Key[]>("GET", `/conversations/${conversationId}/keys`);
        const at = new Map(keys.map((k) => [k.epoch, Date.parse(k.createdAt)]));
        for (const key of keys) {
          if (key.epoch >= epoch) continue;
          const next = at.get(key.epoch + 1);
          const unused = key.epoch === 1 && next !== undefined && next - Date.parse(key.createdAt) < 60_000;
          candidates.push({ conversationId, key, rank: unused ? 0 : Date.parse(key.createdAt) });
        }
      }
    };
    await Promise.all([worker(), worker(), worker()]);
    candidates.sort((a, b) => b.rank - a.rank || b.key.epoch - a.key.epoch || b.conversationId - a.conversationId);
    const out: ProvisionedEpochKey[] = [];
    for (const { conversationId, key } of candidates) {
      if (out.length >= limit) break;
      try {
        const { raw, bound } = await this.unwrap(conversationId, key);
        out.push({ conversationId, epoch: key.epoch, bound, key: raw });
      } catch (err) {
        this.d.onError(err);
      }
    }
    return out;
  }

  private async accept(conversationId: number, key: Key): Promise<void> {
    const { raw, bound } = await this.unwrap(conversationId, key);
    try {
      await this.keep(conversationId, key.epoch, raw, bound);
    } finally {
      raw.fill(0);
    }
  }

  /** Stores an epoch key, non-extractable. */
  async keep(conversationId: number, epoch: number, raw: Bytes, bound: boolean): Promise<void> {
    const record: EpochKeyRecord = { key: await importEpochKey(raw), bound };
    await this.d.store.set(this.key(conversationId, epoch), record);
  }

  /** Wraps `epochKey` for each device, signed by this device. */
  async wrapFor(
    epochKey: CryptoKey | Bytes,
    devices: VerifiedDeviceRecord[],
    binding: { conversationId: number; epoch: number },
  ): Promise<WrappedKeyUpload[]> {
    const signingKey = this.d.self().keys.signing.privateKey;
    const out: WrappedKeyUpload[] = [];
    for (const device of devices) {
      const { wrappedKey, signature } = await wrapEpochKey(
        epochKey,
        device.identityKey,
        {
          ...binding,
          recipientDeviceId: device.deviceId,
        },
        signingKey,
      );
      out.push({ deviceId: device.deviceId, wrappedKey: toBase64(wrappedKey), signature: toBase64(signature) });
    }
    return out;
  }

  /**
   * A fresh key for `epoch`, wrapped for `devices`, committed by `commit` (an epoch commit or a
   * participant add) and kept once the server accepted it.
   */
  async commitNew<T>(
    conversationId: number,
    epoch: number,
    devices: VerifiedDeviceRecord[],
    commit: (keys: WrappedKeyUpload[]) => Promise<T>,
    keepAs: (result: T) => number = () => conversationId,
  ): Promise<T> {
    const epochKey = await generateEpochKey();
    const keys = await this.wrapFor(epochKey, devices, { conversationId, epoch });
    const result = await commit(keys);
    const raw = await exportRaw(epochKey);
    try {
      await this.keep(keepAs(result), epoch, raw, true);
    } finally {
      raw.fill(0);
    }
    return result;
  }

  /**
   * Rotates `conversationId` from `current` to `current + 1` (for `known` devices, else the ones
   * the server lists now). Returns the epoch now current: ours,
   * or, when another device won the race (409), the winner's, whose key is then loaded.
   */
  async rotate(conversationId: number, current: number, known?: VerifiedDeviceRecord[]): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      // `known`: the devices just wrapped for (at creation), saving one listing; a 422 lists afresh.
      const devices = attempt === 0 && known ? known : await this.d.directory.conversationDevices(conversationId);
      try {
        const res = await this.commitNew(conversationId, current + 1, devices, (keys) =>
          this.d.http.request<EpochCommitted>("POST", `/conversations/${conversationId}/epochs`, {
            body: { epoch: current + 1, keys },
          }),
        );
        return res.epoch;
      } catch (err) {
        if (!(err instanceof ParleyError)) throw err;
        if (err.status === 409) {
          const winner = Number(/current is (\d+)/.exec(err.details?.[0]?.message ?? "")?.[1]);
          await this.load(conversationId);
          if (Number.isSafeInteger(winner) && winner > current) return winner;
          return current + 1;
        }
        // 422: the device set changed between the listing and the commit; list again once.
        if (err.status === 422 && attempt === 0) continue;
        throw err;
      }
    }
  }
}
