import { exports } from "cloudflare:workers";

/** `POST /attachments` with a raw body (the JSON helper `call` would stringify it). */
export function upload(
  token: string,
  conversationId: number | string | undefined,
  body: Uint8Array,
  headers: Record<string, string> = {},
): Promise<Response> {
  const query = conversationId === undefined ? "" : `?conversationId=${conversationId}`;
  return exports.default.fetch(
    new Request(`http://parley.test/attachments${query}`, {
      method: "POST",
      body,
      headers: {
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
        "Content-Type": "application/octet-stream",
        "Content-Length": String(body.byteLength),
        ...headers,
      },
    }),
  );
}

export function download(token: string, attachmentId: number): Promise<Response> {
  return exports.default.fetch(
    new Request(`http://parley.test/attachments/${attachmentId}`, { headers: { Authorization: `Bearer ${token}` } }),
  );
}

/** Random bytes of any length (`getRandomValues` fills at most 64 KiB per call). */
export function largeRandomBytes(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i += 65536) crypto.getRandomValues(bytes.subarray(i, Math.min(length, i + 65536)));
  return bytes;
}

/** Uploads and returns the new attachment's id, asserting 201. */
export async function uploadOk(token: string, conversationId: number, body: Uint8Array): Promise<number> {
  const res = await upload(token, conversationId, body);
  if (res.status !== 201) throw new Error(`upload failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { attachmentId: number }).attachmentId;
}
