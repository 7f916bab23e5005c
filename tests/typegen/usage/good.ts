// Must type-check: @herald/client typed by the module `herald typegen` made
// of ../herald.toml (copied next to it as herald-types.ts by the test).
import { Herald } from '@herald/client';
import type { HeraldSchema } from './herald-types.js';

const h = new Herald<HeraldSchema>({ url: 'ws://localhost/ws' });

export async function publishing(): Promise<number | undefined> {
  const ack = await h.publish('chat:lobby', 'chat.message', {
    text: 'hello',
    author: { id: 'u1', name: 'Ann', email: 'ann@example.com' },
    token: 'secret',
    replyTo: null,
    kind: 'emote',
    attachments: [
      { type: 'image', url: 'https://example.com/a.png' },
      { type: 'file', name: 'notes.txt', size: 12 },
    ],
    quote: { text: 'outer', quote: { text: 'inner' } },
    position: [1.5, 2],
    meta: { lang: 'en' },
    'x-client': 'web',
  });
  await h.publish('chat:room:42', 'chat.typing', { user: 'Ann', typing: true });
  await h.publish('chat:lobby', 'chat.destroy', {});
  // notes has a schema without strict_events: declared events are typed,
  // others pass.
  await h.publish('notes:ann', 'note.saved', { id: 1, body: 'text', tags: ['a'], labels: { pinned: true, colour: 'red' } });
  await h.publish('notes:ann', 'note.other', { anything: true });
  // feed has no schema, other namespaces and plain channels use [defaults].
  await h.publish('feed:news', 'feed.item', [1, 2, 3]);
  await h.publish('other:x', 'whatever', 'payload');
  await h.publish('lobby', 'whatever', 42);
  return ack.offset;
}

export function subscribing(): void {
  h.subscribe('chat:lobby', {
    onEvent: (e) => {
      if (e.event === 'chat.message') {
        const name: string = e.data.author.name;
        const reply: number | null | undefined = e.data.replyTo;
        const inner: string | undefined = e.data.quote?.quote?.text;
        for (const a of e.data.attachments ?? []) {
          const label: string = a.type === 'image' ? a.url : a.name;
          void label;
        }
        void [name, reply, inner];
      } else if (e.event === 'chat.typing') {
        const typing: boolean | undefined = e.data.typing;
        void typing;
      } else {
        const reason: string | undefined = e.data.reason;
        void reason;
      }
    },
  });
}

export async function reading(): Promise<string[]> {
  const page = await h.history('chat:lobby', { limit: 10 });
  return page.events.flatMap((e) => (e.event === 'chat.message' ? [e.data.text] : []));
}

// RPC methods of schemas/rpc.json ([proxy] rpc_schema): data and result typed.
export async function calling(): Promise<string> {
  const todo = await h.rpc('todos.add', { title: 'milk', due: 3 });
  const done: boolean = todo.done;
  await h.rpc('todos.add', { title: 'eggs' }, { timeoutMs: 500 });
  const n: number = await h.rpc('todos.count'); // no request schema: data optional
  const other: unknown = await h.rpc('not.declared', { anything: [1] }); // unchecked, as by the server
  void done;
  void n;
  void other;
  return todo.id;
}

// The backend's side of the same methods: @herald/server's rpc route handler.
import { deny, heraldHook } from '@herald/server';
export const rpcRoute = heraldHook.rpc<HeraldSchema>({
  'todos.add': async (data, hook) => (hook.user ? { id: '1', title: data.title, done: false } : deny('unauthorized', 'log in')),
  'todos.count': () => 3,
});
