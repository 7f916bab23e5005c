// The chat's events and the message list. Payloads come from other clients
// and from backends over HTTP, so they are checked here before they reach
// the screen; the list is ordered and de-duplicated by offset and bounded.
import type { HeraldEvent } from '@herald/client';

export const MESSAGE_EVENT = 'chat.message';
export const TYPING_EVENT = 'chat.typing';
/** Messages loaded on joining a room, and refetched when recovery fails. */
export const HISTORY_LIMIT = 50;
/** The most messages kept on screen. */
export const MAX_MESSAGES = 500;

export interface ChatMessage {
  offset: number;
  ts: number;
  name: string;
  text: string;
  /** the sending tab (absent for backend publishes) */
  sender?: string;
}

export interface Typing {
  name: string;
  sender: string;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function toMessage(e: { offset?: number; ts?: number; data: unknown }): ChatMessage | null {
  const d = e.data;
  if (e.offset === undefined || !isRecord(d) || typeof d.text !== 'string') return null;
  return {
    offset: e.offset,
    ts: typeof e.ts === 'number' ? e.ts : Date.now(),
    name: typeof d.name === 'string' && d.name ? d.name : 'anonymous',
    text: d.text,
    sender: typeof d.sender === 'string' ? d.sender : undefined,
  };
}

export function toTyping(data: unknown): Typing | null {
  if (!isRecord(data) || typeof data.name !== 'string' || typeof data.sender !== 'string') return null;
  return { name: data.name, sender: data.sender };
}

/** `list` with `more` added: by offset, each offset once, the newest MAX_MESSAGES. */
export function mergeMessages(list: ChatMessage[], more: ChatMessage[]): ChatMessage[] {
  const byOffset = new Map(list.map((m) => [m.offset, m]));
  for (const m of more) byOffset.set(m.offset, m);
  const merged = [...byOffset.values()].sort((a, b) => a.offset - b.offset);
  return merged.length > MAX_MESSAGES ? merged.slice(-MAX_MESSAGES) : merged;
}

export function historyMessages(events: HeraldEvent[]): ChatMessage[] {
  return events.map(toMessage).filter((m): m is ChatMessage => m !== null);
}

/** A message this tab sent: shown as "sending…" until acknowledged, then until its event arrives. */
export interface PendingMessage {
  /** the publish's idempotency key (React key too) */
  key: string;
  name: string;
  text: string;
  ts: number;
  /**
   * The highest offset on screen when it was sent: its event is stored
   * after the call, so its offset is higher (0 after a reload of the room
   * from its history, whose offsets may have started again).
   */
  after: number;
  /** the ack's offset, once acknowledged */
  offset?: number;
}

export type ShownMessage = (ChatMessage & { pending?: undefined }) | (PendingMessage & { pending: true; sender: string });

/** The highest offset in `list` (0 when empty). */
export function lastOffset(list: ChatMessage[]): number {
  return list.length ? list[list.length - 1].offset : 0;
}

/**
 * The list on screen: the channel's messages, then this tab's pending ones,
 * each message once. The event of a publish carries no key, so it is
 * matched by the ack's offset: a pending message whose offset arrived as an
 * event is dropped, and an event from this tab (`sender`) that may be the
 * event of an unacknowledged message (its offset is higher than the last
 * one on screen when that message was sent, and none of the acks' offsets)
 * is held back until the ack says whose it is (the publisher gets its own
 * event just before the ack, or before the ack of a publish sent again
 * after a reconnect, and the screen must not show it twice in between).
 * This tab's older messages stay on screen meanwhile.
 */
export function shownMessages(list: ChatMessage[], pending: PendingMessage[], tab: string): ShownMessage[] {
  const offsets = new Set(list.map((m) => m.offset));
  const acked = new Set(pending.flatMap((p) => (p.offset === undefined ? [] : [p.offset])));
  let heldAfter = Infinity;
  for (const p of pending) if (p.offset === undefined) heldAfter = Math.min(heldAfter, p.after);
  const shown: ShownMessage[] = list.filter((m) => !(m.sender === tab && m.offset > heldAfter && !acked.has(m.offset)));
  for (const p of pending) {
    if (p.offset !== undefined && offsets.has(p.offset)) continue;
    shown.push({ ...p, pending: true, sender: tab });
  }
  return shown;
}
