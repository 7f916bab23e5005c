// expect-error: TS2345 Property 'author' is missing
import { useHerald } from '@herald/react';
import '../register.js';

export function C() {
  const herald = useHerald();
  void herald.publish('chat:a', 'chat.message', { text: 'hi', token: 't' });
  return null;
}
