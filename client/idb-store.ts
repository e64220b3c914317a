/**
 * A `ClientStore` on IndexedDB, for browsers. Values are kept by structured clone, so `CryptoKey`s
 * are stored as keys (non-extractable ones stay non-extractable: page script can use them, nothing
 * can read their bytes). Cross-tab locking uses the Web Locks API when the browser has it.
 * Importing this module does nothing; constructing it in a runtime without IndexedDB throws.
 */
import type { ClientStore } from "./store.ts";

// Just the parts of the IndexedDB and Web Locks APIs used here (the library is also typechecked
// without the DOM's typings).
interface Req<T = unknown> {
  result: T;
  error: unknown;
  onsuccess: (() => void) | null;
  onerror: (() => void) | null;
}
interface ObjectStore {
  get(key: string): Req;
  put(value: unknown, key: string): Req;
  delete(key: string): Req;
  getAllKeys(): Req<unknown[]>;
}
interface Transaction {
  objectStore(name: string): ObjectStore;
  oncomplete: (() => void) | null;
  onerror: (() => void) | null;
  onabort: (() => void) | null;
  error: unknown;
}
interface Database {
  transaction(name: string, mode: "readonly" | "readwrite"): Transaction;
  createObjectStore(name: string): unknown;
  close(): void;
}
interface OpenReq extends Req<Database> {
  onupgradeneeded: (() => void) | null;
}
interface Factory {
  open(name: string, version: number): OpenReq;
}
interface Locks {
  request<T>(name: string, fn: () => Promise<T>): Promise<T>;
}

const STORE = "kv";

export class IndexedDBStore implements ClientStore {
  private readonly factory: Factory;
  private readonly name: string;
  private db: Promise<Database> | undefined;

  /** `name` is the database's name (one per app origin is plenty). */
  constructor(name = "parley-client") {
    const factory = (globalThis as unknown as { indexedDB?: Factory }).indexedDB;
    if (!factory) throw new Error("IndexedDB is not available in this runtime: use MemoryStore or your own store");
    this.factory = factory;
    this.name = name;
  }

  private open(): Promise<Database> {
    this.db ??= new Promise((resolve, reject) => {
      const req = this.factory.open(this.name, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error ?? new Error("cannot open IndexedDB"));
    });
    return this.db;
  }

  private async run<T>(mode: "readonly" | "readwrite", fn: (store: ObjectStore) => Req<T>): Promise<T> {
    const db = await this.open();
    return new Promise<T>((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = fn(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error ?? new Error("IndexedDB transaction failed"));
      tx.onabort = () => reject(tx.error ?? new Error("IndexedDB transaction aborted"));
    });
  }

  async get<T>(key: string): Promise<T | undefined> {
    return (await this.run("readonly", (s) => s.get(key))) as T | undefined;
  }

  async set(key: string, value: unknown): Promise<void> {
    await this.run("readwrite", (s) => s.put(value, key));
  }

  async delete(key: string): Promise<void> {
    await this.run("readwrite", (s) => s.delete(key));
  }

  async keys(prefix: string): Promise<string[]> {
    const all = await this.run("readonly", (s) => s.getAllKeys());
    return all.filter((k): k is string => typeof k === "string" && k.startsWith(prefix));
  }

  withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const locks = (globalThis as unknown as { navigator?: { locks?: Locks } }).navigator?.locks;
    return locks ? locks.request(`${this.name}:${name}`, fn) : fn();
  }

  /** Closes the database connection (the next call opens it again). */
  async close(): Promise<void> {
    const db = this.db;
    this.db = undefined;
    if (db) (await db).close();
  }
}
