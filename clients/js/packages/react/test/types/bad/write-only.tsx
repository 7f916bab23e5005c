// expect-error: TS2339 Property 'token' does not exist
import { useRealtime } from '@herald/react';
import '../register.js';

export function C() {
  useRealtime({ channels: ['chat:a'], events: ['chat.message'], onData: (e) => void e.data.token });
  return null;
}
