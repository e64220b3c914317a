/**
 * Identity keys in IndexedDB, per username on this browser profile. The private key is stored as a
 * non-extractable CryptoKey (IndexedDB keeps CryptoKey objects by structured clone), so page
 * script can use it but nothing, this page included, can read its bytes out.
 */
import type { IdentityKeys } from "../client/index.ts";

const DB_NAME = "parley";
const STORE = "identities";

interface StoredIdentity {
  /** Lower-cased: usernames are unique without regard to case. */
  username: string;
  publicKey: CryptoKey;
  privateKey: CryptoKey;
  publicKeyRaw: Uint8Array<ArrayBuffer>;
  savedAt: string;
}

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => {
      req.result.createObjectStore(STORE, { keyPath: "username" });
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error("cannot open IndexedDB"));
  });
}

async function run<T>(mode: IDBTransactionMode, fn: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await open();
  try {
    return await new Promise<T>((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = fn(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error ?? new Error("IndexedDB transaction failed"));
      tx.onabort = () => reject(tx.error ?? new Error("IndexedDB transaction aborted"));
    });
  } finally {
    db.close();
  }
}

export async function loadIdentity(username: string): Promise<IdentityKeys | undefined> {
  const stored = (await run("readonly", (s) => s.get(username.toLowerCase()))) as StoredIdentity | undefined;
  if (!stored) return undefined;
  return { publicKey: stored.publicKey, privateKey: stored.privateKey, publicKeyRaw: stored.publicKeyRaw };
}

export async function saveIdentity(username: string, identity: IdentityKeys): Promise<void> {
  const record: StoredIdentity = {
    username: username.toLowerCase(),
    publicKey: identity.publicKey,
    privateKey: identity.privateKey,
    publicKeyRaw: identity.publicKeyRaw,
    savedAt: new Date().toISOString(),
  };
  await run("readwrite", (s) => s.put(record));
}
