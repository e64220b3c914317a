/**
 * Files in the chat (issue #14): the composer's "Attach" picker encrypts each file in the browser
 * with its own key, uploads it with a progress bar, and sends a message describing it (key, nonce
 * and digest travel inside the encrypted message, never to the server). Received images are
 * downloaded, checked and decrypted into a `blob:` URL and shown inline; other files get a
 * Download button that shows its own progress bar.
 */
import {
  type AttachmentDescriptor,
  AttachmentIntegrityError,
  encodeContent,
  MAX_ATTACHMENT_BYTES,
  type MessageContent,
  type ParleyClient,
  type ReceivedMessage,
  type SendResult,
  type ThreadedMessage,
  type TransferProgress,
} from "../client/index.ts";
import { $, h, setStatus } from "./dom.ts";

const ui = {
  picker: $<HTMLInputElement>("file-input"),
  input: $<HTMLInputElement>("message-input"),
  upload: $("upload"),
  uploadBar: $<HTMLProgressElement>("upload-progress"),
  uploadText: $("upload-text"),
};

/** Images shown inline (decoded by the browser from our own blob: URL, never from the server). */
const INLINE = new Set(["image/png", "image/jpeg", "image/gif", "image/webp", "image/avif"]);
/** Larger images get a button rather than an automatic download. */
const AUTO_DOWNLOAD_BYTES = 10 * 1024 * 1024;

export function formatSize(n: number): string {
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

const percent = (p: TransferProgress) => (p.total > 0 ? Math.floor((100 * p.loaded) / p.total) : 0);

export interface FileHooks {
  /** The open conversation, if any. */
  current(): number | undefined;
  /** Shows a message this browser just sent (its envelope text and attachment ids). */
  sent(conversationId: number, result: SendResult, text: string, attachments: number[]): void;
  onError(err: unknown): void;
}

export class Files {
  private readonly client: ParleyClient;
  private readonly hooks: FileHooks;
  /** blob: URLs made for this conversation, revoked when it closes. */
  private urls: string[] = [];
  /** Each file's box, kept across re-renders of its message (no second download). */
  private views = new Map<number, HTMLElement>();

  constructor(client: ParleyClient, hooks: FileHooks) {
    this.client = client;
    this.hooks = hooks;
    ui.picker.addEventListener("change", () => {
      const files = [...(ui.picker.files ?? [])];
      ui.picker.value = "";
      if (files.length) void this.send(files);
    });
  }

  /** Encrypts, uploads and sends the picked files, with the text typed so far as their caption. */
  private async send(files: File[]): Promise<void> {
    const id = this.hooks.current();
    if (id === undefined) return;
    const tooBig = files.find((f) => f.size + 16 > MAX_ATTACHMENT_BYTES);
    if (tooBig) return setStatus(`“${tooBig.name}” is larger than 25 MB: it cannot be sent.`, "error");
    const caption = ui.input.value;
    const label = files.length === 1 ? `“${files[0]!.name}”` : `${files.length} files`;
    ui.picker.disabled = true;
    ui.upload.hidden = false;
    try {
      const result = await this.client.sendFiles(
        id,
        caption,
        files.map((f) => ({ name: f.name, type: f.type, data: f })),
        {
          onProgress: (p) => {
            const which = files.length > 1 && p.file !== undefined ? ` (${p.file + 1} of ${files.length})` : "";
            if (p.phase === "encrypting") this.bar(undefined, `Encrypting ${label}${which}…`);
            else if (p.phase === "uploading") this.bar(percent(p), `Uploading ${label}${which}: ${percent(p)}%`);
            else if (p.phase === "done") this.bar(100, `Sent ${label}.`);
          },
        },
      );
      ui.input.value = "";
      const ids = result.content.files.map((f) => f.attachmentId);
      this.hooks.sent(id, result, encodeContent(result.content), ids);
      setStatus(`Sent ${label}, end-to-end encrypted.`);
    } catch (err) {
      setStatus(`Could not send ${label}.`, "error");
      this.hooks.onError(err);
    } finally {
      ui.picker.disabled = false;
      ui.upload.hidden = true;
    }
  }

  private bar(value: number | undefined, text: string): void {
    if (value === undefined) ui.uploadBar.removeAttribute("value");
    else ui.uploadBar.value = value;
    ui.uploadText.textContent = text;
  }

  /** Fills a message's body: its text, then each file (an inline image or a download button). */
  fill(body: HTMLElement, message: ReceivedMessage & { ok: true }): void {
    let content: MessageContent;
    try {
      content = this.client.content(message);
    } catch (err) {
      console.warn("attachments:", err);
      body.textContent = "🔒 This message's files could not be read on this device.";
      return;
    }
    body.textContent = content.text; // text only: never parsed as HTML
    body.after(...content.files.map((file) => this.views.get(file.attachmentId) ?? this.fileView(file)));
  }

  /** A message's text in one line: a file message's caption, then its files' names. */
  caption(message: ThreadedMessage): string | null {
    if (!message.ok || !message.attachments?.length) return message.displayText;
    try {
      const { text, files } = this.client.content(message);
      return [text, ...files.map((f) => `📎 ${f.name || "file"}`)].filter(Boolean).join(" ");
    } catch {
      return "📎 files";
    }
  }

  private fileView(file: AttachmentDescriptor): HTMLElement {
    const box = h("div", { class: "file" });
    box.dataset.attachmentId = String(file.attachmentId);
    this.views.set(file.attachmentId, box);
    const name = h("span", { class: "file-name" }, `${file.name || "file"} · ${formatSize(file.size)}`);
    const progress = h("progress", { class: "file-progress", max: "100", hidden: "" });
    const state = h("span", { class: "file-state" });
    const image = INLINE.has(file.type);
    const button = h("button", { type: "button", class: "secondary small" }, image ? "Show image" : "Download");
    box.append(name, " ", button, progress, state);
    const fetchIt = async (): Promise<void> => {
      button.hidden = true;
      progress.hidden = false;
      state.textContent = "Downloading…";
      try {
        const data = await this.client.downloadFile(file, {
          onProgress: (p) => {
            if (p.phase === "downloading") {
              progress.value = percent(p);
              state.textContent = `Downloading: ${percent(p)}%`;
            } else if (p.phase === "verifying") state.textContent = "Checking and decrypting…";
          },
        });
        const url = URL.createObjectURL(new Blob([data], { type: image ? file.type : "application/octet-stream" }));
        this.urls.push(url);
        progress.hidden = true;
        state.textContent = "";
        if (image) {
          const img = h("img", { class: "file-image", alt: file.name, src: url });
          box.append(img);
        } else {
          const link = h("a", { href: url, download: file.name || "file", class: "file-link" }, `Save “${file.name}”`);
          state.append(link);
          link.click();
        }
        box.dataset.state = "ready";
      } catch (err) {
        progress.hidden = true;
        button.hidden = false;
        box.dataset.state = "failed";
        state.textContent =
          err instanceof AttachmentIntegrityError
            ? " This file was changed after it was sent: it was not opened."
            : " The file could not be downloaded. Try again.";
        console.warn("download:", err);
      }
    };
    button.addEventListener("click", () => void fetchIt());
    if (image && file.size <= AUTO_DOWNLOAD_BYTES) void fetchIt();
    return box;
  }

  /** The open conversation closed: its decrypted files are released. */
  clear(): void {
    for (const url of this.urls) URL.revokeObjectURL(url);
    this.urls = [];
    this.views.clear();
  }
}
