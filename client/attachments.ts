/**
 * Attachments (issue #14), the client side: each file is encrypted with its own fresh AES-256-GCM
 * key, the ciphertext is uploaded (`POST /attachments`), and the key, nonce and digest travel only
 * inside the message's own encrypted text, as a small JSON envelope. Downloads are checked against
 * the digest before they are decrypted. Byte-by-byte description: docs/client.md ("Attachments").
 */
import type { AttachmentUploaded } from "../contract/index.ts";
import { type Bytes, bytes, equalBytes, fromBase64, randomBytes, toBase64 } from "./bytes.ts";
import {
  aesGcm,
  CryptoFormatError,
  context,
  DecryptionError,
  NONCE_BYTES,
  sha256,
  subtle,
} from "./crypto/primitives.ts";
import type { FetchLike, HttpTransport } from "./http.ts";

export const ATTACHMENT_FORMAT = "parley/files/v1";
/** The associated data of every file's AES-GCM: the context label alone (the key is never reused). */
const FILE_AD = context("parley/attachment/v1");
const FILE_KEY_BYTES = 32;
const TAG_BYTES = 16;
/** The server's limit (`MAX_ATTACHMENT_BYTES`): the encrypted file, tag included. */
export const MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024;
/** At most 10 files a message (the server's limit). */
export const MAX_FILES_PER_MESSAGE = 10;

/** One file as the message describes it. Binary fields are standard base64 with padding. */
export interface AttachmentDescriptor {
  attachmentId: number;
  /** The file's name as the sender chose it (never a path; shown, never trusted). */
  name: string;
  /** Its media type as the sender's system reported it ("" when unknown). */
  type: string;
  /** Plaintext bytes (the uploaded blob is 16 bytes longer: the GCM tag). */
  size: number;
  /** The file's own AES-256-GCM key, 32 bytes. */
  key: string;
  /** The file's nonce, 12 bytes. */
  nonce: string;
  /** SHA-256 of the uploaded (encrypted) bytes, 32 bytes. */
  sha256: string;
}

/** What a message says: its text and, when it carries attachments, their descriptors. */
export interface MessageContent {
  text: string;
  files: AttachmentDescriptor[];
}

/** A file to send: bytes (or a `Blob`, read whole), its name and media type. */
export interface FileInput {
  name: string;
  type?: string;
  data: Uint8Array | Blob;
}

export interface TransferProgress {
  phase: "encrypting" | "uploading" | "downloading" | "verifying" | "done";
  /** Bytes moved so far in this phase, and in all (`total` 0 when unknown). */
  loaded: number;
  total: number;
  /** Which file of the message (0-based), for `sendFiles`. */
  file?: number;
}
export type ProgressCallback = (progress: TransferProgress) => void;

/** The downloaded bytes are not the ones the sender uploaded. */
export class AttachmentIntegrityError extends Error {
  override name = "AttachmentIntegrityError";
}

export interface SealedFile {
  blob: Bytes;
  key: Bytes;
  nonce: Bytes;
  sha256: Bytes;
  size: number;
}

/** Encrypts one file under a fresh key and nonce: blob = AES-256-GCM ciphertext ‖ tag. */
export async function encryptFile(data: Uint8Array): Promise<SealedFile> {
  if (data.byteLength + TAG_BYTES > MAX_ATTACHMENT_BYTES) throw new RangeError("the file is larger than 25 MiB");
  const key = randomBytes(FILE_KEY_BYTES);
  const nonce = randomBytes(NONCE_BYTES);
  const aes = await subtle().importKey("raw", key, "AES-GCM", false, ["encrypt"]);
  const blob = bytes(await subtle().encrypt(aesGcm(nonce, FILE_AD), aes, bytes(data)));
  return { blob, key, nonce, sha256: await sha256(blob), size: data.byteLength };
}

/** Checks the blob's length and digest against the descriptor, then decrypts it. */
export async function decryptFile(blob: Uint8Array, file: AttachmentDescriptor): Promise<Bytes> {
  if (blob.byteLength !== file.size + TAG_BYTES) {
    throw new AttachmentIntegrityError(`expected ${file.size + TAG_BYTES} bytes, got ${blob.byteLength}`);
  }
  if (!equalBytes(await sha256(blob), fromBase64(file.sha256))) {
    throw new AttachmentIntegrityError("the file's digest does not match the message");
  }
  const aes = await subtle().importKey("raw", fromBase64(file.key), "AES-GCM", false, ["decrypt"]);
  try {
    return bytes(await subtle().decrypt(aesGcm(fromBase64(file.nonce), FILE_AD), aes, bytes(blob)));
  } catch {
    throw new DecryptionError("the file could not be decrypted");
  }
}

/** The message text carrying files: `{"format":"parley/files/v1","text":…,"files":[…]}` (docs/client.md). */
export function encodeContent(content: MessageContent): string {
  return JSON.stringify({
    format: ATTACHMENT_FORMAT,
    text: content.text,
    files: content.files.map((f) => ({
      attachmentId: f.attachmentId,
      name: f.name,
      type: f.type,
      size: f.size,
      key: f.key,
      nonce: f.nonce,
      sha256: f.sha256,
    })),
  });
}

const isInt = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
const isB64 = (v: unknown, n: number): v is string => {
  try {
    return typeof v === "string" && fromBase64(v).byteLength === n;
  } catch {
    return false;
  }
};

/**
 * Reads a decrypted message's text. A message with no attachments is plain text, whatever it
 * looks like; one with attachments must be an envelope whose files are exactly those ids, in order
 * (else `CryptoFormatError`: a server cannot re-point a message at other files).
 */
export function decodeContent(text: string, attachments: readonly number[] | null): MessageContent {
  if (!attachments || attachments.length === 0) return { text, files: [] };
  let parsed: { format?: unknown; text?: unknown; files?: unknown };
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new CryptoFormatError("a message with attachments must carry their descriptors");
  }
  if (parsed?.format !== ATTACHMENT_FORMAT || typeof parsed.text !== "string" || !Array.isArray(parsed.files)) {
    throw new CryptoFormatError(`not a ${ATTACHMENT_FORMAT} envelope`);
  }
  const files: AttachmentDescriptor[] = [];
  for (const f of parsed.files as Record<string, unknown>[]) {
    const ok =
      isInt(f.attachmentId) &&
      typeof f.name === "string" &&
      typeof f.type === "string" &&
      isInt(f.size) &&
      isB64(f.key, FILE_KEY_BYTES) &&
      isB64(f.nonce, NONCE_BYTES) &&
      isB64(f.sha256, 32);
    if (!ok) throw new CryptoFormatError("an attachment descriptor is malformed");
    const { attachmentId, name, type, size, key, nonce, sha256: digest } = f as unknown as AttachmentDescriptor;
    files.push({ attachmentId, name, type, size, key, nonce, sha256: digest });
  }
  const ids = [...files.map((f) => f.attachmentId)].sort((a, b) => a - b);
  const expected = [...attachments].sort((a, b) => a - b);
  if (ids.length !== expected.length || ids.some((id, i) => id !== expected[i])) {
    throw new CryptoFormatError("the message's attachments are not the files it describes");
  }
  return { text: parsed.text, files };
}

/** A TransformStream that reports every chunk's bytes as they pass. */
export function countingStream(onBytes: (loaded: number) => void): TransformStream<Uint8Array, Uint8Array> {
  let loaded = 0;
  return new TransformStream({
    transform(chunk, controller) {
      loaded += chunk.byteLength;
      onBytes(loaded);
      controller.enqueue(chunk);
    },
  });
}

const UPLOAD_CHUNK = 64 * 1024;

/**
 * XMLHttpRequest as a `fetch` for one upload, with `upload.onprogress`. Browsers refuse streamed
 * request bodies over HTTP/1.1 and never let a page set `Content-Length`, which the server needs,
 * so this is how a browser reports upload progress.
 */
interface XhrLike {
  open(method: string, url: string): void;
  responseType: string;
  setRequestHeader(name: string, value: string): void;
  upload: { onprogress: ((e: { loaded: number }) => void) | null };
  onload: (() => void) | null;
  onerror: (() => void) | null;
  onabort: (() => void) | null;
  status: number;
  response: ArrayBuffer;
  getAllResponseHeaders(): string;
  abort(): void;
  send(body: unknown): void;
}
const Xhr = (): (new () => XhrLike) | undefined =>
  (globalThis as unknown as { XMLHttpRequest?: new () => XhrLike }).XMLHttpRequest;

function xhrSend(onProgress: (loaded: number) => void): FetchLike {
  return (url, init = {}) =>
    new Promise<Response>((resolve, reject) => {
      const XhrClass = Xhr();
      if (!XhrClass) return reject(new TypeError("no XMLHttpRequest here"));
      const xhr = new XhrClass();
      xhr.open(init.method ?? "GET", url);
      xhr.responseType = "arraybuffer";
      for (const [k, v] of Object.entries((init.headers ?? {}) as Record<string, string>)) {
        if (k.toLowerCase() !== "content-length") xhr.setRequestHeader(k, v);
      }
      xhr.upload.onprogress = (e) => onProgress(e.loaded);
      xhr.onload = () => {
        const headers = new Headers();
        for (const line of xhr.getAllResponseHeaders().trim().split(/\r?\n/)) {
          const at = line.indexOf(":");
          if (at > 0) headers.append(line.slice(0, at).trim(), line.slice(at + 1).trim());
        }
        resolve(new Response(xhr.status === 204 ? null : xhr.response, { status: xhr.status, headers }));
      };
      xhr.onerror = () => reject(new TypeError("network error"));
      xhr.onabort = () => reject(init.signal?.reason ?? new DOMException("aborted", "AbortError"));
      init.signal?.addEventListener("abort", () => xhr.abort(), { once: true });
      xhr.send(init.body);
    });
}

/**
 * Uploads an encrypted blob. Progress: in browsers through XMLHttpRequest (when the client uses the
 * global `fetch`), elsewhere by counting the bytes a ReadableStream body hands to `fetch` through a
 * TransformStream, with `Content-Length` set (Node and Workers send it as declared).
 */
export async function uploadBlob(
  http: HttpTransport,
  conversationId: number,
  blob: Bytes,
  options: { onProgress?: (loaded: number, total: number) => void; signal?: AbortSignal } = {},
): Promise<AttachmentUploaded> {
  const total = blob.byteLength;
  const report = (loaded: number) => options.onProgress?.(Math.min(loaded, total), total);
  const useXhr = !http.customFetch && Xhr() !== undefined;
  const body = (): BodyInit => {
    if (useXhr) return new Blob([blob]);
    let offset = 0;
    const source = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (offset >= total) return controller.close();
        controller.enqueue(blob.subarray(offset, offset + UPLOAD_CHUNK));
        offset += UPLOAD_CHUNK;
      },
    });
    return source.pipeThrough(countingStream(report));
  };
  report(0);
  const res = await http.raw("POST", `/attachments?conversationId=${conversationId}`, {
    headers: { "Content-Type": "application/octet-stream", "Content-Length": String(total) },
    body,
    ...(useXhr ? { send: xhrSend(report) } : { extra: { duplex: "half" } }),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  report(total);
  return (await res.json()) as AttachmentUploaded;
}

/** Downloads an attachment's bytes, counting the response stream for progress. */
export async function downloadBlob(
  http: HttpTransport,
  attachmentId: number,
  options: { expected?: number; onProgress?: (loaded: number, total: number) => void; signal?: AbortSignal } = {},
): Promise<Bytes> {
  const res = await http.raw("GET", `/attachments/${attachmentId}`, {
    headers: { Accept: "application/octet-stream" },
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const total = Number(res.headers.get("Content-Length")) || options.expected || 0;
  if (options.expected !== undefined && total > options.expected) {
    await res.body?.cancel();
    throw new AttachmentIntegrityError(`expected ${options.expected} bytes, the server announced ${total}`);
  }
  options.onProgress?.(0, total);
  if (!res.body) return bytes(await res.arrayBuffer());
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  const reader = res.body.pipeThrough(countingStream((n) => options.onProgress?.(n, total))).getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    loaded += value.byteLength;
    if (options.expected !== undefined && loaded > options.expected) {
      await reader.cancel();
      throw new AttachmentIntegrityError("the server sent more bytes than the message describes");
    }
    chunks.push(value);
  }
  const out = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** A file's bytes, whichever form it came in. */
export async function fileBytes(data: Uint8Array | Blob): Promise<Bytes> {
  return data instanceof Uint8Array ? bytes(data) : bytes(await data.arrayBuffer());
}

/** The descriptor of a sealed, uploaded file. */
export function describeFile(input: FileInput, sealed: SealedFile, uploaded: AttachmentUploaded): AttachmentDescriptor {
  return {
    attachmentId: uploaded.attachmentId,
    name: input.name,
    type: input.type ?? "",
    size: sealed.size,
    key: toBase64(sealed.key),
    nonce: toBase64(sealed.nonce),
    sha256: toBase64(sealed.sha256),
  };
}
