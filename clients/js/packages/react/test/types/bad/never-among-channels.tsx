// expect-error: TS2322 Type '"locked:b"' is not assignable to type '"chat:a"'
import { useRealtime } from '@herald/react';
import '../register.js';

export function C() {
  useRealtime({ channels: ['chat:a', 'locked:b'], onData: () => {} });
  return null;
}
