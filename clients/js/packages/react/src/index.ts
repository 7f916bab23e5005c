// Public entry point of @herald/react: the provider and the hooks, and the
// Register interface that types them with a `herald typegen` schema.
export { HeraldProvider, useHerald } from './provider.js';
export type { HeraldProviderProps } from './provider.js';
export { useRealtime } from './use-realtime.js';
export type { RealtimeResult, RealtimeStatus, UseRealtimeOptions } from './use-realtime.js';
export { useConnectionState } from './use-connection-state.js';
export { usePresence } from './use-presence.js';
export type { PresenceState, UsePresenceOptions } from './use-presence.js';
export type { ForbiddenChannel, Register, RegisteredSchema, RealtimeEvent, RealtimeEventName } from './register.js';
