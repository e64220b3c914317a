/**
 * A conversation subscription that loses nothing across disconnects. It follows the contract's
 * recipe: open the socket first, then fetch `GET /conversations/{id}/messages?after=<last messageId
 * held>` page by page; frames that arrive meanwhile wait in a queue and are dropped when their
 * `messageId` was already delivered. A frame whose `seq` jumps by more than one means something was
 * missed: the gap is fetched with `after` before the frame is delivered. Messages therefore reach
 * `onMessage` once each, in `seq` order.
 */
import type { MessageResponse, ServerFrame } from "../contract/index.ts";
import type { TokenProvider } from "./http.ts";
import { LiveConnection, type LiveOptions, type Subscription, type WebSocketFactory } from "./socket.ts";

export interface ConversationFeedOptions extends LiveOptions {
  /** The last `messageId` the caller already holds; 0 (the default) delivers the whole history first. */
  after?: number;
  /** Page size of catch-up requests (1–100). */
  pageSize?: number;
}

/** One page of `GET /conversations/{id}/messages`: `after` oldest first; `before` or neither, newest first. */
export type MessagePageFetcher = (query: {
  after?: number;
  before?: number;
  limit: number;
}) => Promise<MessageResponse[]>;

/**
 * A conversation's messages, each once and in `seq` order, across reconnects. Catching up uses
 * `after` (the API accepts only positive ids there, so a feed that starts from the very beginning
 * first walks the history backwards with `before`, then delivers it oldest first).
 */
export function subscribeConversationFeed(params: {
  conversationId: number;
  url: (token: string) => string | Promise<string>;
  getToken: TokenProvider;
  createSocket: WebSocketFactory;
  fetchMessages: MessagePageFetcher;
  onMessage: (message: MessageResponse) => void | Promise<void>;
  onEvent?: (frame: ServerFrame) => void | Promise<void>;
  onSessionEnded?: (reason: string) => void;
  options: ConversationFeedOptions;
}): Subscription & { readonly lastMessageId: number } {
  const pageSize = Math.min(100, Math.max(1, params.options.pageSize ?? 100));
  let lastMessageId = params.options.after ?? 0;
  // Known only from the first delivered message, or 0 when reading from the very start.
  let lastSeq: number | undefined = lastMessageId === 0 ? 0 : undefined;
  const onError = params.options.onError;

  const deliver = async (message: MessageResponse): Promise<void> => {
    if (message.messageId <= lastMessageId) return; // already delivered: a duplicate
    lastMessageId = message.messageId;
    lastSeq = message.seq;
    try {
      await params.onMessage(message);
    } catch (err) {
      onError?.(err);
    }
  };

  const catchUp = async (): Promise<void> => {
    if (lastMessageId === 0) {
      const history: MessageResponse[] = [];
      for (let page = await params.fetchMessages({ limit: pageSize }); ; ) {
        history.push(...page);
        if (page.length < pageSize) break;
        page = await params.fetchMessages({ before: page.at(-1)!.messageId, limit: pageSize });
      }
      for (const message of history.reverse()) await deliver(message);
      if (lastMessageId === 0) return; // an empty conversation
    }
    for (;;) {
      const page = await params.fetchMessages({ after: lastMessageId, limit: pageSize });
      for (const message of page) await deliver(message);
      if (page.length < pageSize) return;
    }
  };

  const connection = new LiveConnection({
    url: params.url,
    getToken: params.getToken,
    createSocket: params.createSocket,
    options: params.options,
    ...(params.onSessionEnded ? { onSessionEnded: params.onSessionEnded } : {}),
    handlers: {
      onOpen: catchUp,
      async onFrame(frame) {
        if (frame.type !== "newMessage") {
          await params.onEvent?.(frame);
          return;
        }
        const message = frame.data;
        if (message.conversationId !== params.conversationId || message.messageId <= lastMessageId) return;
        if (lastSeq !== undefined && message.seq > lastSeq + 1) {
          await catchUp(); // a gap: fetch what was missed (this delivers `message` too, in order)
        }
        await deliver(message);
      },
    },
  });

  return {
    get state() {
      return connection.state;
    },
    get lastMessageId() {
      return lastMessageId;
    },
    closed: connection.closed,
    close: () => connection.close(),
    sendTyping: (conversationId?: number) => connection.sendTyping(conversationId),
  };
}
