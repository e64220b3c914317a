// Parley's service worker (issue #14): shows a notification when a push arrives and opens the
// conversation when it is clicked. A push carries only ids ({ conversationId, messageId }, decrypted
// by the browser from the push service's aes128gcm body): the notification text is generic, and the
// page fetches and decrypts the message itself. No caching, no fetch handler.

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

function readPayload(data) {
  try {
    const p = data ? data.json() : null;
    if (p && Number.isSafeInteger(p.conversationId) && Number.isSafeInteger(p.messageId)) {
      return { conversationId: p.conversationId, messageId: p.messageId };
    }
  } catch {
    // Not ours, or not JSON: still say something arrived.
  }
  return null;
}

self.addEventListener("push", (event) => {
  const payload = readPayload(event.data);
  event.waitUntil(
    self.registration.showNotification("New message", {
      body: "Open Parley to read it.",
      tag: payload ? `conversation-${payload.conversationId}` : "parley",
      data: payload,
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const payload = event.notification.data;
  const url = new URL("/", self.location.origin);
  if (payload) url.searchParams.set("conversation", String(payload.conversationId));
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      const open = windows.find((w) => new URL(w.url).origin === self.location.origin);
      if (open) {
        open.postMessage({ type: "openConversation", conversationId: payload ? payload.conversationId : null });
        return open.focus();
      }
      return self.clients.openWindow(url.href);
    })(),
  );
});
