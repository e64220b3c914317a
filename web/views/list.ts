/**
 * The conversation list and the message requests, each with its unread badge (`unreadCount`), and
 * the page title's total ("(3) Parley"). Newest activity first.
 */
import { type Conversation, totalUnread } from "../../client/index.ts";
import { $, h } from "../dom.ts";

const ui = {
  list: $<HTMLUListElement>("conversation-list"),
  requestsSection: $("requests-section"),
  requests: $<HTMLUListElement>("request-list"),
  noConversations: $("no-conversations"),
};

/** The title, or the other people's names. */
export function conversationName(c: Conversation, myUsername: string | undefined): string {
  if (c.title) return c.title;
  const me = myUsername?.toLowerCase();
  const others = c.participants.filter((p) => p.username.toLowerCase() !== me).map((p) => p.username);
  return others.join(", ") || "Just you";
}

export interface ListOptions {
  current: number | undefined;
  me: string | undefined;
  open: (conversationId: number) => void;
}

export function renderConversationList(conversations: Conversation[], options: ListOptions): void {
  const items = [...conversations].sort(
    (a, b) => (b.lastMessageId ?? 0) - (a.lastMessageId ?? 0) || b.conversationId - a.conversationId,
  );
  const requests = items.filter((c) => c.status === "invited");
  const accepted = items.filter((c) => c.status !== "invited");
  ui.noConversations.hidden = accepted.length > 0;
  ui.requestsSection.hidden = requests.length === 0;
  ui.requests.replaceChildren(...requests.map((c) => listItem(c, options)));
  ui.list.replaceChildren(...accepted.map((c) => listItem(c, options)));
  const total = totalUnread(items);
  document.title = total ? `(${total}) Parley` : "Parley";
}

function listItem(c: Conversation, options: ListOptions): HTMLLIElement {
  const name = conversationName(c, options.me);
  const unread = c.unreadCount;
  const request = c.status === "invited";
  const classes = ["conversation-item", ...(unread ? ["unread"] : []), ...(request ? ["request"] : [])];
  const button = h("button", { type: "button", class: classes.join(" ") }, h("span", { class: "name" }, name));
  if (unread) {
    button.append(h("span", { class: "badge", "aria-hidden": "true" }, unread > 99 ? "99+" : String(unread)));
  }
  button.dataset.conversationId = String(c.conversationId);
  button.dataset.unread = String(unread);
  if (c.conversationId === options.current) button.setAttribute("aria-current", "true");
  const extra = [...(request ? ["message request"] : []), ...(unread ? [`${unread} unread`] : [])];
  if (extra.length) button.setAttribute("aria-label", `${name} (${extra.join(", ")})`);
  button.addEventListener("click", () => options.open(c.conversationId));
  return h("li", {}, button);
}
