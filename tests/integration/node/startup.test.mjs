// Start-up under traffic: clients already publish over HTTP to many channels
// (so to every worker's shard) when the server starts on their port, as
// after a restart. Every shard must be ready before any worker serves a
// request; when workers attached their shard on their own thread, a request
// could be posted to a shard with no io_context yet, and about one start in
// three crashed with SIGSEGV under this test.
import { after, before } from 'node:test';
import { HeraldServer, freePort, serverTest, sleep } from './lib/harness.mjs';

const STARTS = 15;
let port;
let flooding = true;
let floods;
let server = null;

before(async () => {
  port = await freePort();
  let n = 0;
  const flood = async (k) => {
    while (flooding) {
      try {
        await fetch(`http://127.0.0.1:${port}/api/publish`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ channel: `flood-${k}-${n++ % 64}`, event: 'e', data: n }),
          signal: AbortSignal.timeout(2000),
        });
      } catch {
        await sleep(1); // not listening (yet): knock again at once
      }
    }
  };
  floods = Promise.all(Array.from({ length: 8 }, (_, k) => flood(k)));
});

after(async () => {
  flooding = false;
  await floods;
});

serverTest(() => server, `${STARTS} starts with 4 workers under a publish flood: none crashes, each stops cleanly`, {}, async () => {
  for (let i = 0; i < STARTS; i++) {
    server = new HeraldServer({ workers: 4, name: `herald start ${i + 1}` });
    await server.start({ port });
    await sleep(150); // served under the flood
    await server.stopChecked();
  }
});
