// npm run dev:all: Herald (herald serve --config herald.toml, in this folder)
// and the Next.js app side by side, sharing HERALD_JWT_SECRET and
// HERALD_BACKEND_KEY. When they are not set, random ones are made once and kept
// in data/dev-secrets.json (next to Herald's history), so restarts keep
// working with the rooms and cookies of earlier runs.
// `npm run dev:all -- --prod` runs `next start` (after `npm run build`)
// instead of `next dev`. Ctrl-C stops both.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { EXAMPLE, heraldBin } from './herald-bin.mjs';

const prod = process.argv.includes('--prod');
const env = { ...process.env, NEXT_TELEMETRY_DISABLED: '1' };
delete env.HERALD_CONFIG;

if (!env.HERALD_JWT_SECRET || !env.HERALD_BACKEND_KEY) {
  const file = path.join(EXAMPLE, 'data', 'dev-secrets.json');
  let saved = {};
  try {
    saved = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    saved = { HERALD_JWT_SECRET: crypto.randomBytes(48).toString('base64url'), HERALD_BACKEND_KEY: crypto.randomBytes(24).toString('base64url') };
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify(saved, null, 2), { mode: 0o600 });
    console.log(`dev:all: made a secret and an API key for development in ${path.relative(process.cwd(), file)}`);
  }
  env.HERALD_JWT_SECRET ||= saved.HERALD_JWT_SECRET;
  env.HERALD_BACKEND_KEY ||= saved.HERALD_BACKEND_KEY;
}

const children = [];
let stopping = false;
function run(name, cmd, args) {
  const child = spawn(cmd, args, { cwd: EXAMPLE, env, stdio: 'inherit' });
  children.push(child);
  child.on('error', (e) => {
    console.error(`dev:all: cannot start ${name} (${cmd}): ${e.message}${name === 'herald' ? ' (build it, put it on the PATH, or set HERALD_BIN)' : ''}`);
    stop(1);
  });
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`dev:all: ${name} exited (${signal ?? code}); stopping`);
      stop(code || 1);
    }
  });
}

function stop(code) {
  if (stopping) return;
  stopping = true;
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  setTimeout(() => process.exit(code), 500).unref();
}
process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));

const next = path.join(EXAMPLE, 'node_modules', '.bin', 'next');
run('herald', heraldBin(), ['serve', '--config', 'herald.toml']);
run('next', next, [prod ? 'start' : 'dev']);
