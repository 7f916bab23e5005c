// Room ids and their channels: a room `x` is the channel `room:x` of the
// `room` namespace (herald.toml: max_users = 2, channel_ttl_ms, presence).

/** 12 characters of [a-z0-9]: about 62 bits, unguessable enough for a link that is the room's only secret. */
export const ROOM_ID = /^[a-z0-9]{12}$/;

export type RoomChannel = `room:${string}`;

export function roomChannel(id: string): RoomChannel {
  return `room:${id}`;
}

export function isRoomId(id: unknown): id is string {
  return typeof id === 'string' && ROOM_ID.test(id);
}

/** Why a room page was left, shown on the home page (`/?ended=…`). */
export type EndReason = 'destroyed' | 'expired' | 'missing';

export const END_MESSAGES: Record<EndReason, string> = {
  destroyed: 'The room was destroyed.',
  expired: 'The room expired.',
  missing: 'That room does not exist (any more).',
};
