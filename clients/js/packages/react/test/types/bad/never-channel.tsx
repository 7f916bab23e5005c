// expect-error: TS2322 is not assignable to type 'never'
import { useRealtime } from '@herald/react';
import '../register.js';

export function C() {
  useRealtime({ channels: ['locked:x'], onData: () => {} });
  return null;
}
