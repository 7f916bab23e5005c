// The READMEs' examples are tests: every ```js runnable block of
// clients/js/README.md and packages/*/README.md is extracted, its
// localhost:8080 pointed at a herald this test starts (the real binary,
// HERALD_BIN or build/release/herald), written to a temporary .mjs inside
// this package (so `@herald/*` and `ws` resolve to the built workspaces) and
// run with Node; it must exit 0 on its own within 20 s.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { Server } from './support/server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const JS = path.resolve(here, '../../..');
const READMES = ['README.md', 'packages/client/README.md', 'packages/server/README.md', 'packages/react/README.md'];

/** The ```js runnable blocks of a Markdown text, with their line numbers. */
export function runnableBlocks(markdown) {
  const blocks = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!/^```js\s+runnable\s*$/.test(lines[i])) continue;
    const start = i + 1;
    let j = start;
    while (j < lines.length && !/^```\s*$/.test(lines[j])) j++;
    blocks.push({ line: start, code: lines.slice(start, j).join('\n') });
    i = j;
  }
  return blocks;
}

const examples = READMES.flatMap((file) =>
  runnableBlocks(fs.readFileSync(path.join(JS, file), 'utf8')).map((b) => ({ ...b, file })),
);

let server;
let dir;
before(async () => {
  server = await new Server().start();
  dir = fs.mkdtempSync(path.join(here, '.readme-'));
});
after(async () => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  const exit = await server?.stop();
  assert.deepEqual(exit, { code: 0, signal: null }, server?.log);
});

test('the READMEs have runnable examples, the first one of clients/js/README.md among them', () => {
  assert.ok(examples.length >= 3, `found ${examples.length}`);
  assert.equal(examples[0].file, 'README.md');
  assert.match(examples[0].code, /herald\.connect\(\);[\s\S]*subscribe\([\s\S]*await herald\.publish\(/);
});

for (const ex of examples) {
  test(`${ex.file}:${ex.line} runs against the real server`, async () => {
    const code = ex.code
      .replaceAll('ws://localhost:8080', `ws://127.0.0.1:${server.port}`)
      .replaceAll('http://localhost:8080', `http://127.0.0.1:${server.port}`);
    const file = path.join(dir, `${ex.file.replaceAll('/', '_')}-${ex.line}.mjs`);
    fs.writeFileSync(file, code);
    const child = spawn(process.execPath, [file], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const [status, signal] = await new Promise((r) => child.on('exit', (c, s) => r([c, s])));
    clearTimeout(timer);
    const report = `${ex.file}:${ex.line}\n--- stdout\n${out}--- stderr\n${err}`;
    assert.equal(signal, null, `killed after 20 s (did it close its client?)\n${report}`);
    assert.equal(status, 0, report);
  });
}
