// expect-error: TS2322 Type '"write"' is not assignable to type 'HookCapability'
import { allow, heraldHook } from '@herald/server';
export const POST = heraldHook.connect(() => allow({ user: '1', caps: { 'room:*': ['write'] } }));
