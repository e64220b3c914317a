/** The body carried more bytes than its `Content-Length` (or than the cap). */
export class UploadTooLarge extends Error {}
/** The body ended before its `Content-Length`. */
export class UploadTruncated extends Error {}

/**
 * Streams `body` into R2 under `key`, never holding more than a chunk in the Worker. R2 needs the
 * length up front (a chunked body is refused), hence `FixedLengthStream`; the counter in front of it
 * turns a body that lies about its length into `UploadTooLarge` / `UploadTruncated` rather than an
 * opaque stream error, and stops reading as soon as the declared length is passed.
 */
export async function streamToBucket(
  bucket: R2Bucket,
  key: string,
  body: ReadableStream<Uint8Array>,
  length: number,
): Promise<void> {
  let seen = 0;
  const counter = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      seen += chunk.byteLength;
      if (seen > length) throw new UploadTooLarge();
      controller.enqueue(chunk);
    },
    flush() {
      if (seen < length) throw new UploadTruncated();
    },
  });
  const fixed = new FixedLengthStream(length);
  const [piped, stored] = await Promise.allSettled([
    body.pipeThrough(counter).pipeTo(fixed.writable),
    bucket.put(key, fixed.readable),
  ]);
  // The pipe's reason first: it says why the store failed too.
  if (piped.status === "rejected") throw piped.reason;
  if (stored.status === "rejected") throw stored.reason;
}
