/**
 * Linking devices: the approving side (`pendingDevices`, `approveDevice`) and the new device's side
 * (`waitForApproval`, `completeApproval`). Formats: docs/client.md ("Provisioning envelope",
 * "Comparison code").
 */
import type {
  ApprovalKey,
  ApproveDeviceRequest,
  Conversation,
  ConversationPage,
  OwnDevice,
  Provisioning,
} from "../contract/index.ts";
import { AccountClient, type AccountStatus } from "./account.ts";
import { equalBytes, fromBase64, toBase64 } from "./bytes.ts";
import {
  comparisonCode,
  exportAccountPrivateKey,
  importAccountKeys,
  signDevice,
  verifyDeviceSignature,
} from "./crypto/keys.ts";
import {
  openProvisioning,
  type ProvisionedEpochKey,
  provisioningCapacity,
  sealProvisioning,
  UNBOUND_CONVERSATION,
} from "./crypto/wrap.ts";
import { ParleyError } from "./http.ts";

/** A device of the caller's waiting for approval, with the code to compare with its screen. */
export type PendingDevice = OwnDevice & { comparisonCode: string };

export class LinkingClient extends AccountClient {
  private approvalWaiters: (() => void)[] = [];

  /** Devices waiting for approval, each with the code its own screen shows. */
  async pendingDevices(): Promise<PendingDevice[]> {
    const accountKey = this.activeDevice().account.publicKeyRaw;
    const out: PendingDevice[] = [];
    for (const d of await this.devices()) {
      if (d.status !== "pending") continue;
      const keys = { identityKey: fromBase64(d.identityKey), signingKey: fromBase64(d.signingKey) };
      out.push({ ...d, comparisonCode: await comparisonCode(accountKey, keys) });
    }
    return out;
  }

  /** Every conversation (all pages of `GET /conversations`). */
  async allConversations(): Promise<Conversation[]> {
    const all: Conversation[] = [];
    let cursor: string | null = null;
    do {
      const qs: string = cursor === null ? "?limit=100" : `?limit=100&cursor=${encodeURIComponent(cursor)}`;
      const page = await this.http.request<ConversationPage>("GET", `/conversations${qs}`);
      all.push(...page.conversations);
      cursor = page.nextCursor;
    } while (cursor !== null);
    return all;
  }

  /**
   * Approves a pending device of this account (run on an active device, after the user compared
   * the codes: pass the one the new device shows as `comparisonCode` to have it checked here).
   * Signs its keys with the account key, wraps the current key of every conversation for it, and
   * seals to it the account key plus as many earlier epoch keys as fit in the 4 KiB envelope
   * (newest first; docs/client.md, "Provisioning envelope"), so it reads earlier history too.
   */
  async approveDevice(deviceId: number, options: { comparisonCode?: string } = {}): Promise<OwnDevice> {
    const self = this.activeDevice();
    const accountPrivate = self.account.privateKey;
    if (!accountPrivate) throw new Error("this device does not hold the account key");
    const target = (await this.pendingDevices()).find((d) => d.deviceId === deviceId);
    if (!target) throw new ParleyError(409, "conflict", `device ${deviceId} is not a pending device of this account`);
    if (
      options.comparisonCode !== undefined &&
      normalise(options.comparisonCode) !== normalise(target.comparisonCode)
    ) {
      throw new Error("the comparison codes differ: do not approve this device");
    }
    const pub = { identityKey: fromBase64(target.identityKey), signingKey: fromBase64(target.signingKey) };
    const account = { privateKey: accountPrivate, publicKeyRaw: self.account.publicKeyRaw };
    const conversations = await this.allConversations();
    const pkcs8 = await exportAccountPrivateKey(account);
    let epochKeys: ProvisionedEpochKey[] = [];
    let provisioning: Uint8Array;
    try {
      epochKeys = await this.keyring.earlierKeys(conversations, provisioningCapacity(pkcs8.byteLength));
      provisioning = await sealProvisioning(
        { accountPublicKey: account.publicKeyRaw, accountPrivateKeyPkcs8: pkcs8, epochKeys },
        { userId: self.userId, deviceId, identityKey: pub.identityKey },
      );
    } finally {
      pkcs8.fill(0);
      for (const k of epochKeys) k.key.fill(0);
    }
    const recipient = {
      deviceId,
      userId: self.userId,
      username: self.username,
      identityKey: pub.identityKey,
      signingKey: pub.signingKey,
      accountKey: account.publicKeyRaw,
    };
    const keys: ApprovalKey[] = [];
    for (const conversation of conversations) {
      const { conversationId, key } = conversation;
      if (!key) throw new Error(`this device holds no current key of conversation ${conversationId}`);
      const { raw, bound } = await this.keyring.unwrap(conversationId, key);
      try {
        // A key this device holds only from a creation wrap is passed on as one (see docs/client.md).
        const binding = { conversationId: bound ? conversationId : UNBOUND_CONVERSATION, epoch: key.epoch };
        const [wrap] = await this.keyring.wrapFor(raw, [recipient], binding);
        keys.push({ conversationId, epoch: key.epoch, wrappedKey: wrap!.wrappedKey, signature: wrap!.signature });
      } finally {
        raw.fill(0);
      }
    }
    const body: ApproveDeviceRequest = {
      signature: toBase64(await signDevice(account, pub)),
      provisioning: toBase64(provisioning),
      keys,
    };
    return this.http.request<OwnDevice>("POST", `/devices/${deviceId}/approve`, { body });
  }

  /**
   * On a pending device: resolves once it is approved and provisioned. Polls `GET /devices`
   * (every `pollIntervalMs`, default 3 s) and wakes early on a `deviceApproved` frame seen by
   * `watchInbox()`.
   */
  async waitForApproval(options: { signal?: AbortSignal; pollIntervalMs?: number } = {}): Promise<AccountStatus> {
    for (;;) {
      if (!this.device) throw new Error("not logged in");
      if (this.device.status === "active") return this.status();
      const mine = (await this.devices()).find((d) => d.deviceId === this.device!.deviceId);
      if (mine?.status === "active") return this.completeApproval();
      options.signal?.throwIfAborted();
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(done, options.pollIntervalMs ?? 3_000);
        function done() {
          clearTimeout(timer);
          options.signal?.removeEventListener("abort", abort);
          resolve();
        }
        const abort = () => {
          clearTimeout(timer);
          reject(options.signal?.reason);
        };
        options.signal?.addEventListener("abort", abort, { once: true });
        this.approvalWaiters.push(done);
      });
    }
  }

  protected wakeApprovalWaiters(): void {
    const waiters = this.approvalWaiters;
    this.approvalWaiters = [];
    for (const wake of waiters) wake();
  }

  /**
   * Reads and opens this device's provisioning envelope: the account key must be the private half
   * of the account key pinned at login, and this device's signature (made by the approver) must
   * verify against it. Then this device is active.
   */
  async completeApproval(): Promise<AccountStatus> {
    const d = this.device;
    if (!d) throw new Error("not logged in");
    if (d.status === "active" && d.account.privateKey) return this.status();
    const { provisioning } = await this.http.request<Provisioning>("GET", `/devices/${d.deviceId}/provisioning`);
    const payload = await openProvisioning(fromBase64(provisioning), {
      userId: d.userId,
      deviceId: d.deviceId,
      privateKey: d.keys.identity.privateKey,
      publicKeyRaw: d.keys.identity.publicKeyRaw,
    });
    if (!equalBytes(payload.accountPublicKey, d.account.publicKeyRaw)) {
      throw new Error("the provisioned account key is not the one this device was shown: refusing it");
    }
    const account = await importAccountKeys(payload.accountPrivateKeyPkcs8, payload.accountPublicKey);
    payload.accountPrivateKeyPkcs8.fill(0);
    const epochKeys = payload.epochKeys ?? [];
    const mine = (await this.devices()).find((x) => x.deviceId === d.deviceId);
    const signature = mine?.signature ? fromBase64(mine.signature) : null;
    const pub = { identityKey: d.keys.identity.publicKeyRaw, signingKey: d.keys.signing.publicKeyRaw };
    await verifyDeviceSignature(account.publicKeyRaw, pub, signature);
    // Earlier epoch keys: sealed by a holder of this account's key, so trusted like our own.
    for (const k of epochKeys) {
      try {
        if (!(await this.keyring.held(k.conversationId, k.epoch))) {
          await this.keyring.keep(k.conversationId, k.epoch, k.key, k.bound);
        }
      } finally {
        k.key.fill(0);
      }
    }
    await this.saveDevice({
      ...d,
      status: "active",
      account: { publicKeyRaw: account.publicKeyRaw, privateKey: account.privateKey },
    });
    return this.status();
  }
}

const normalise = (code: string) => code.replace(/\s+/g, "");
