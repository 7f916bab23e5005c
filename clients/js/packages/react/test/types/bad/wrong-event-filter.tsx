// expect-error: TS2322 Type '"chat.typo"' is not assignable to type
import { useRealtime } from '@herald/react';
import '../register.js';

export function C() {
  useRealtime({ channels: ['chat:a'], events: ['chat.typo'], onData: () => {} });
  return null;
}
