// npm run typegen: regenerates lib/herald-types.ts, the TypeScript types of
// the room namespace's events, from herald.toml and schema/room.json with
// `herald typegen` (binary: $HERALD_BIN, ../../build/release/herald, or
// `herald` on the PATH). `npm run typegen -- --check` changes nothing and
// fails when the committed file is not what herald typegen prints now.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { EXAMPLE, heraldBin } from './herald-bin.mjs';

export const TYPES = path.join(EXAMPLE, 'lib', 'herald-types.ts');

/** The module herald typegen prints for this example (run here, so its header names `herald.toml`). */
export function generate() {
  const env = { ...process.env };
  delete env.HERALD_CONFIG;
  const result = spawnSync(heraldBin(), ['typegen', '--config', 'herald.toml'], { cwd: EXAMPLE, encoding: 'utf8', env });
  if (result.error) throw new Error(`cannot run ${heraldBin()}: ${result.error.message} (set HERALD_BIN)`);
  if (result.status !== 0) throw new Error(`herald typegen exited with ${result.status}: ${result.stderr}`);
  return result.stdout;
}

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const fresh = generate();
  if (process.argv.includes('--check')) {
    const committed = fs.existsSync(TYPES) ? fs.readFileSync(TYPES, 'utf8') : '';
    if (committed !== fresh) {
      console.error(`${path.relative(process.cwd(), TYPES)} is out of date: run npm run typegen`);
      process.exit(1);
    }
    console.log(`${path.relative(process.cwd(), TYPES)} is up to date`);
  } else {
    fs.writeFileSync(TYPES, fresh);
    console.log(`wrote ${path.relative(process.cwd(), TYPES)}`);
  }
}
