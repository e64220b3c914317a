/**
 * Parley's reference web client: register or log in, start conversations, chat. Everything is
 * encrypted and decrypted here, in the browser, with `parley/client`; the Worker that serves this
 * page only ever sees public keys, wrapped conversation keys and ciphertext.
 *
 * Live updates: one inbox socket for the conversation list (new conversations, unread markers) and
 * a conversation subscription for the open conversation (catch-up, dedupe, gap filling, reconnects).
 */
import {
  type CloseInfo,
  type Conversation,
  fingerprint,
  fromBase64,
  IndexedDBStore,
  ParleyClient,
  ParleyError,
  type ReceivedMessage,
  type ServerFrame,
  type Subscription,
} from "../client/index.ts";

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing from the page`);
  return el as T;
};

const ui = {
  authView: $("auth-view"),
  authForm: $<HTMLFormElement>("auth-form"),
  username: $<HTMLInputElement>("username"),
  password: $<HTMLInputElement>("password"),
  chatView: $("chat-view"),
  whoami: $("whoami"),
  logout: $<HTMLButtonElement>("logout"),
  keyWarning: $("key-warning"),
  keyWarningText: $("key-warning-text"),
  newKey: $<HTMLButtonElement>("new-key"),
  newConversation: $<HTMLFormElement>("new-conversation"),
  newParticipants: $<HTMLInputElement>("new-participants"),
  newTitle: $<HTMLInputElement>("new-title"),
  conversationList: $<HTMLUListElement>("conversation-list"),
  conversation: $("conversation"),
  conversationTitle: $("conversation-title"),
  conversationMembers: $("conversation-members"),
  liveState: $("live-state"),
  olderButton: $<HTMLButtonElement>("older"),
  messages: $<HTMLOListElement>("messages"),
  composer: $<HTMLFormElement>("composer"),
  messageInput: $<HTMLInputElement>("message-input"),
  status: $("status"),
};

const client = new ParleyClient({
  baseUrl: location.origin,
  store: new IndexedDBStore(),
  onIdentityChanged: (e) =>
    setStatus(`${e.username}'s account key changed: check it with them before trusting it.`, "error"),
  onSessionEnded: (e) => setStatus(`Session ended: ${e.message}`, "error"),
});

const state: {
  conversations: Map<number, Conversation>;
  unread: Set<number>;
  current: number | undefined;
  subscription: (Subscription & { readonly lastMessageId: number }) | undefined;
  inbox: Subscription | undefined;
  rendered: Map<number, HTMLLIElement>;
  oldestLoaded: number | undefined;
} = {
  conversations: new Map(),
  unread: new Set(),
  current: undefined,
  subscription: undefined,
  inbox: undefined,
  rendered: new Map(),
  oldestLoaded: undefined,
};

function setStatus(text: string, kind: "info" | "error" = "info"): void {
  ui.status.textContent = text;
  ui.status.dataset.kind = kind;
}

function describe(err: unknown): string {
  if (err instanceof ParleyError) {
    const details = err.details?.map((d) => `${d.path}: ${d.message}`).join("; ");
    return details ? `${err.message} (${details})` : err.message;
  }
  return err instanceof Error ? err.message : String(err);
}

/** Runs a UI action, reporting failures in the status line and disabling the form meanwhile. */
async function action(form: HTMLFormElement | undefined, fn: () => Promise<void>): Promise<void> {
  const controls = form ? [...form.querySelectorAll<HTMLButtonElement | HTMLInputElement>("button, input")] : [];
  for (const c of controls) c.disabled = true;
  try {
    await fn();
  } catch (err) {
    console.error(err);
    setStatus(describe(err), "error");
  } finally {
    for (const c of controls) c.disabled = false;
  }
}

// ---- accounts ---------------------------------------------------------------------------------

async function register(username: string, password: string): Promise<void> {
  setStatus("Creating your account key and this device's keys…");
  await client.register(username, password, { deviceName: navigator.userAgent.slice(0, 64) });
  await enter();
}

async function login(username: string, password: string): Promise<void> {
  setStatus("Logging in…");
  const status = await client.login(username, password, { deviceName: navigator.userAgent.slice(0, 64) });
  ui.password.value = "";
  if (status.status === "pending") {
    // Minimal linking UI (the web client is being redone): show the code and wait for approval.
    ui.keyWarningText.textContent = `This browser is a new device. Approve it from a device that is already linked, and check that it shows ${status.comparisonCode}.`;
    ui.keyWarning.hidden = false;
    setStatus("Waiting for approval…");
    await client.waitForApproval();
    ui.keyWarning.hidden = true;
  }
  await enter();
}

async function enter(): Promise<void> {
  ui.authView.hidden = true;
  ui.chatView.hidden = false;
  ui.logout.hidden = false;
  const me = await client.me();
  ui.whoami.textContent = `${me.username} · key ${await fingerprint(fromBase64(me.accountKey))}`;
  ui.whoami.dataset.username = me.username;
  ui.keyWarning.hidden = true;
  setStatus(`Logged in as ${me.username}.`);
  await refreshConversations();
  startInbox();
}

function logout(): void {
  state.subscription?.close();
  state.inbox?.close();
  void client.logout();
  Object.assign(state, {
    conversations: new Map(),
    unread: new Set(),
    current: undefined,
    subscription: undefined,
    inbox: undefined,
  });
  ui.conversationList.replaceChildren();
  clearMessages();
  ui.conversation.hidden = true;
  ui.chatView.hidden = true;
  ui.authView.hidden = false;
  ui.logout.hidden = true;
  ui.whoami.textContent = "";
  setStatus("Logged out. Your key stays in this browser.");
}

async function replaceKey(): Promise<void> {
  setStatus("Approve this browser from one of your linked devices (see the code above).", "error");
}

// ---- conversations ----------------------------------------------------------------------------

function conversationName(c: Conversation): string {
  if (c.title) return c.title;
  const me = client.username?.toLowerCase();
  const others = c.participants.filter((p) => p.username.toLowerCase() !== me).map((p) => p.username);
  return others.join(", ") || `conversation ${c.conversationId}`;
}

function renderConversationList(): void {
  const items = [...state.conversations.values()].sort(
    (a, b) => (b.lastMessageId ?? 0) - (a.lastMessageId ?? 0) || b.conversationId - a.conversationId,
  );
  ui.conversationList.replaceChildren(
    ...items.map((c) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = conversationName(c);
      button.dataset.conversationId = String(c.conversationId);
      button.className = "conversation-item";
      if (c.conversationId === state.current) button.setAttribute("aria-current", "true");
      if (state.unread.has(c.conversationId)) button.classList.add("unread");
      button.addEventListener("click", () => void action(undefined, () => openConversation(c.conversationId)));
      li.append(button);
      return li;
    }),
  );
}

async function refreshConversations(): Promise<void> {
  const list = await client.allConversations();
  state.conversations = new Map(list.map((c) => [c.conversationId, c]));
  renderConversationList();
}

async function createConversation(participants: string, title: string): Promise<void> {
  const usernames = participants.split(/[\s,]+/).filter(Boolean);
  if (usernames.length === 0) throw new Error("name at least one other user");
  setStatus("Creating the conversation…");
  const conversation = await client.createConversation(usernames, title ? { title } : {});
  state.conversations.set(conversation.conversationId, conversation);
  ui.newParticipants.value = "";
  ui.newTitle.value = "";
  renderConversationList();
  await openConversation(conversation.conversationId);
  setStatus(
    `Conversation with ${usernames.join(", ")} created; its key was wrapped for each participant in this browser.`,
  );
}

function startInbox(): void {
  state.inbox?.close();
  state.inbox = client.watchInbox(onInboxFrame, {
    onConnected: () => refreshConversations(),
    onError: (err) => console.warn("inbox:", err),
    onClose: (info) => setStatus(`Live updates stopped: ${info.message}`, "error"),
  });
}

function onInboxFrame(frame: ServerFrame): void {
  switch (frame.type) {
    case "conversationCreated":
      state.conversations.set(frame.data.conversationId, frame.data);
      if (frame.data.conversationId !== state.current) state.unread.add(frame.data.conversationId);
      renderConversationList();
      setStatus(`New conversation: ${conversationName(frame.data)}`);
      break;
    case "newMessage": {
      const c = state.conversations.get(frame.data.conversationId);
      if (c) c.lastMessageId = frame.data.messageId;
      if (frame.data.conversationId !== state.current) state.unread.add(frame.data.conversationId);
      renderConversationList();
      break;
    }
    case "participantAdded":
    case "participantRemoved":
      if (frame.type === "participantRemoved" && frame.data.userId === client.userId) {
        state.conversations.delete(frame.data.conversationId);
        if (state.current === frame.data.conversationId) closeConversation();
        renderConversationList();
      } else {
        void refreshConversations().catch((err) => console.warn(err));
      }
      break;
    default:
      break;
  }
}

// ---- messages ---------------------------------------------------------------------------------

function clearMessages(): void {
  ui.messages.replaceChildren();
  state.rendered.clear();
  state.oldestLoaded = undefined;
}

function closeConversation(): void {
  state.subscription?.close();
  state.subscription = undefined;
  state.current = undefined;
  clearMessages();
  ui.conversation.hidden = true;
}

/** Inserts a message in `seq` order, once per `messageId`. */
function renderMessage(message: ReceivedMessage): void {
  if (message.conversationId !== state.current || state.rendered.has(message.messageId)) return;
  const li = document.createElement("li");
  li.className = "message";
  li.dataset.messageId = String(message.messageId);
  li.dataset.seq = String(message.seq);
  if (message.senderId === client.userId) li.classList.add("mine");
  const meta = document.createElement("div");
  meta.className = "meta";
  const sender = document.createElement("span");
  sender.className = "sender";
  sender.textContent = message.senderUsername;
  const time = document.createElement("time");
  time.dateTime = message.timestamp;
  time.textContent = new Date(message.timestamp).toLocaleTimeString();
  meta.append(sender, " ", time);
  const body = document.createElement("div");
  body.className = "text";
  if (message.ok) {
    body.textContent = message.text; // text only: never parsed as HTML
  } else {
    li.classList.add("undecryptable");
    body.textContent = `🔒 cannot decrypt: ${message.error.message}`;
  }
  li.append(meta, body);
  const next = [...state.rendered.values()].find((el) => Number(el.dataset.seq) > message.seq);
  const atBottom = ui.messages.scrollHeight - ui.messages.scrollTop - ui.messages.clientHeight < 40;
  ui.messages.insertBefore(li, next ?? null);
  state.rendered.set(message.messageId, li);
  state.oldestLoaded = Math.min(state.oldestLoaded ?? message.messageId, message.messageId);
  if (!next && atBottom) li.scrollIntoView({ block: "end" });
}

const PAGE = 50;

async function openConversation(conversationId: number): Promise<void> {
  if (state.current === conversationId) return;
  closeConversation();
  state.current = conversationId;
  state.unread.delete(conversationId);
  const conversation = await client.getConversation(conversationId);
  if (state.current !== conversationId) return;
  state.conversations.set(conversationId, conversation);
  renderConversationList();
  ui.conversation.hidden = false;
  ui.conversationTitle.textContent = conversationName(conversation);
  ui.conversationMembers.textContent = `Participants: ${conversation.participants.map((p) => p.username).join(", ")}`;
  const history = (await client.messages(conversationId, { limit: PAGE })).reverse();
  if (state.current !== conversationId) return;
  for (const m of history) renderMessage(m);
  ui.olderButton.hidden = history.length < PAGE;
  ui.messages.lastElementChild?.scrollIntoView({ block: "end" });
  state.subscription = client.subscribe(conversationId, renderMessage, {
    after: history.at(-1)?.messageId ?? 0,
    onStateChange: (s) => {
      ui.liveState.textContent = s === "open" ? "live" : s;
      ui.liveState.dataset.state = s;
    },
    onClose: (info: CloseInfo) => {
      if (info.cause !== "client") setStatus(`This conversation stopped updating: ${info.message}`, "error");
    },
    onError: (err) => console.warn("subscription:", err),
  });
  ui.messageInput.focus();
}

async function loadOlder(): Promise<void> {
  const id = state.current;
  if (id === undefined || state.oldestLoaded === undefined) return;
  const older = await client.messages(id, { limit: PAGE, before: state.oldestLoaded });
  for (const m of older) renderMessage(m);
  ui.olderButton.hidden = older.length < PAGE;
}

async function send(): Promise<void> {
  const id = state.current;
  const text = ui.messageInput.value;
  if (id === undefined || text.trim() === "") return;
  const sent = await client.sendMessage(id, text);
  ui.messageInput.value = "";
  // Shown at once; the live echo of the same messageId is then ignored.
  renderMessage({
    messageId: sent.messageId,
    seq: sent.seq,
    conversationId: id,
    senderId: client.userId ?? 0,
    senderUsername: client.username ?? "",
    senderDeviceId: client.deviceId ?? 0,
    keyEpoch: sent.keyEpoch,
    timestamp: sent.timestamp,
    clientMessageId: sent.clientMessageId,
    relatesTo: null,
    expiresAt: null,
    deleted: false,
    ok: true,
    text,
  });
}

// ---- wiring -----------------------------------------------------------------------------------

ui.authForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const submitter = (event as SubmitEvent).submitter as HTMLButtonElement | null;
  const username = ui.username.value.trim();
  const password = ui.password.value;
  void action(ui.authForm, () =>
    submitter?.value === "register" ? register(username, password) : login(username, password),
  );
});
ui.logout.addEventListener("click", logout);
ui.newKey.addEventListener("click", () => void action(undefined, replaceKey));
ui.newConversation.addEventListener("submit", (event) => {
  event.preventDefault();
  void action(ui.newConversation, () => createConversation(ui.newParticipants.value, ui.newTitle.value.trim()));
});
ui.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  void action(ui.composer, send).then(() => ui.messageInput.focus());
});
ui.olderButton.addEventListener("click", () => void action(undefined, loadOlder));

async function checkSupport(): Promise<void> {
  try {
    await crypto.subtle.generateKey({ name: "X25519" }, false, ["deriveBits"]);
    setStatus("Ready. Your private key is created in this browser and never leaves it.");
  } catch {
    setStatus("This browser's Web Crypto lacks X25519 (Chrome 133+, Firefox 130+ and Safari 17+ have it).", "error");
    for (const b of ui.authForm.querySelectorAll("button")) b.disabled = true;
  }
}
void checkSupport();
document.documentElement.dataset.ready = "true";
