/**
 * Parley's reference web client. Everything is encrypted and decrypted here, in the browser, with
 * `parley/client`; the Worker that serves this page only sees public keys, signed wrapped keys and
 * ciphertext. The session and this browser's device keys live in IndexedDB, so a reload resumes.
 *
 * Screens (views/auth.ts): loading → sign in, or → pending (a new browser shows its comparison code
 * until another device approves it) → chat (views/chat.ts) with the Devices dialog and approval
 * prompts (devices.ts), the Blocked people dialog (blocked.ts) and safety warnings when a contact's key changes (identity.ts).
 * One inbox socket keeps the list, the prompts and the device list live; the open conversation
 * has its own subscription.
 */
import {
  fingerprint,
  fromBase64,
  IdentityChangedError,
  IndexedDBStore,
  ParleyClient,
  ParleyError,
  type ServerFrame,
  type SessionEnded,
  type Subscription,
} from "../client/index.ts";
import { BlockedPeople } from "./blocked.ts";
import { Devices } from "./devices.ts";
import { browserDeviceName, busy, describe, logFailure, setStatus } from "./dom.ts";
import { IdentityWarnings } from "./identity.ts";
import { Notifications } from "./notifications.ts";
import { authError, authForm, buttons, onAuthSubmit, setWhoami, show, showAuth, showPending } from "./views/auth.ts";
import { ChatView } from "./views/chat.ts";

const store = new IndexedDBStore();
const client: ParleyClient = new ParleyClient({
  baseUrl: location.origin,
  store,
  deviceName: browserDeviceName(),
  onIdentityChanged: (e) => void identity.show(e),
  onSessionEnded: (e) => sessionEnded(e),
  onError: (err) => console.warn("parley:", err),
});
const identity = new IdentityWarnings(client);
const devices = new Devices(client);
const blocked = new BlockedPeople(client);
const chat = new ChatView(client, reportError);
const notifications = new Notifications(client, (id) => void chat.open(id).catch(reportError));

const live: { inbox: Subscription | undefined; waiting: AbortController | undefined } = {
  inbox: undefined,
  waiting: undefined,
};

const NOTICES = {
  loggedOut:
    "You are logged out. This browser stays linked to your account: log in again to pick up where you left off.",
  ended: "Your session ended: you logged out everywhere, or this browser was removed from your account. Log in again.",
  notApproved: "This browser was not approved, or the request expired. Log in again to ask once more.",
};

/** A failed action: safety warnings get their banner; an ended session already shows the login. */
function reportError(err: unknown): void {
  // Expected refusals are only warned about in the console; anything else is a bug to look at.
  if (err instanceof ParleyError || err instanceof IdentityChangedError) console.warn(err);
  else logFailure(err);
  if (err instanceof IdentityChangedError) void identity.show({ userId: err.userId, username: err.username });
  if (err instanceof ParleyError && err.status === 401) return;
  setStatus(describe(err), "error");
}

/** Closes every socket and forgets what is on screen. */
function stopLive(): void {
  live.inbox?.close();
  live.inbox = undefined;
  live.waiting?.abort();
  live.waiting = undefined;
  chat.reset();
  devices.clear();
  blocked.clear();
  identity.clear();
  notifications.hide();
}

function sessionEnded(e: SessionEnded): void {
  if (e.reason === "logout") return; // logout() shows its own notice
  const wasPending = document.body.dataset.screen === "pending";
  stopLive();
  showAuth({ text: wasPending ? NOTICES.notApproved : NOTICES.ended, kind: "error" }, client.username);
}

async function logout(): Promise<void> {
  const username = client.username;
  stopLive();
  await client.logout(); // ends the session on the server: its tokens stop working at once
  showAuth({ text: NOTICES.loggedOut, kind: "info" }, username);
}

// ---- signing in -------------------------------------------------------------------------------

async function submit(kind: "login" | "register", username: string, password: string): Promise<void> {
  try {
    await busy(authForm, async () => {
      if (kind === "register") {
        setStatus("Creating your account and this browser's keys…");
        await client.register(username, password);
        await enterChat();
        return;
      }
      setStatus("Logging in…");
      const status = await login(username, password);
      if (status.status === "pending") void awaitApproval(status.username, status.comparisonCode ?? "");
      else await enterChat();
    });
  } catch (err) {
    logFailure(err);
    setStatus("");
    authError(describe(err, kind));
  }
}

async function login(username: string, password: string) {
  try {
    return await client.login(username, password);
  } catch (err) {
    // This browser's device was removed from the account: forget it and link the browser anew.
    const key = `${username.toLowerCase()}/device`;
    if (err instanceof ParleyError && err.status === 401 && /device/i.test(err.message) && (await store.get(key))) {
      await store.delete(key);
      return client.login(username, password);
    }
    throw err;
  }
}

/** The pending screen until another device approves this one (polling, woken by the inbox). */
async function awaitApproval(username: string, code: string): Promise<void> {
  showPending(username, code);
  const waiting = new AbortController();
  live.waiting = waiting;
  live.inbox = client.watchInbox(() => {}, { onError: (err) => console.warn("inbox:", err) });
  for (;;) {
    try {
      await client.waitForApproval({ signal: waiting.signal });
      break;
    } catch (err) {
      if (waiting.signal.aborted || (err instanceof ParleyError && err.status === 401)) return;
      console.warn("waiting for approval:", err);
      setStatus("Cannot reach the server right now; still waiting…", "error");
      await new Promise((r) => setTimeout(r, 5_000));
      if (waiting.signal.aborted) return;
    }
  }
  live.inbox?.close();
  live.inbox = undefined;
  live.waiting = undefined;
  setStatus("This browser is now linked. Loading your conversations…");
  try {
    await enterChat();
  } catch (err) {
    reportError(err);
  }
}

// ---- the chat ---------------------------------------------------------------------------------

async function enterChat(): Promise<void> {
  const me = await client.me();
  show("chat");
  setWhoami(me.username);
  devices.setSafetyKey(await fingerprint(fromBase64(me.accountKey)));
  setStatus(`Logged in as ${me.username}.`);
  await chat.refresh();
  startInbox();
  await devices.refresh(); // prompts for devices that were already waiting
  await notifications.start();
  const requested = notifications.takeRequestedConversation(); // a notification was clicked
  if (requested !== undefined) await chat.open(requested);
}

function startInbox(): void {
  live.inbox?.close();
  live.inbox = client.watchInbox(onInboxFrame, {
    onConnected: async () => {
      await chat.refresh();
      await devices.refresh();
    },
    onError: (err) => console.warn("inbox:", err),
    onClose: (info) => {
      if (info.cause !== "client" && info.cause !== "session-ended") {
        setStatus("Live updates stopped. Reload the page to reconnect.", "error");
      }
    },
  });
}

function onInboxFrame(frame: ServerFrame): void {
  chat.onFrame(frame);
  switch (frame.type) {
    case "devicePending":
      setStatus(`“${frame.data.name}” wants to join your account: compare the code above before approving.`);
      void devices.refresh();
      break;
    case "deviceAdded":
    case "deviceRemoved":
      if (frame.data.userId === client.userId) void devices.refresh();
      break;
    default:
      break;
  }
}

// ---- wiring and start -------------------------------------------------------------------------

onAuthSubmit((kind, username, password) => void submit(kind, username, password));
buttons.logout.addEventListener("click", () => void logout().catch(reportError));
buttons.cancelPending.addEventListener("click", () => void logout().catch(reportError));
buttons.devices.addEventListener("click", () => void devices.open().catch(reportError));
buttons.blocked.addEventListener("click", () => void blocked.open().catch(reportError));

async function supportsX25519(): Promise<boolean> {
  try {
    await crypto.subtle.generateKey({ name: "X25519" }, false, ["deriveBits"]);
    return true;
  } catch {
    return false;
  }
}

async function boot(): Promise<void> {
  if (!(await supportsX25519())) {
    showAuth({
      text: "This browser is too old for Parley's encryption: use Chrome 133+, Firefox 130+ or Safari 17+.",
      kind: "error",
    });
    for (const b of authForm.querySelectorAll("button")) b.disabled = true;
    return;
  }
  let status: Awaited<ReturnType<ParleyClient["resume"]>>;
  try {
    status = await client.resume(); // after a reload: the session and keys from IndexedDB
  } catch (err) {
    logFailure(err);
    status = null;
  }
  if (!status) return showAuth();
  if (status.status === "pending") return awaitApproval(status.username, status.comparisonCode ?? "");
  try {
    await enterChat();
  } catch (err) {
    logFailure(err);
    if (document.body.dataset.screen !== "auth") {
      showAuth({ text: describe(err), kind: "error" }, status.username);
    }
  }
}

void boot();
