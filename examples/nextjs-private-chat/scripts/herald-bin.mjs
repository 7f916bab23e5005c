// Which herald binary the scripts and tests use: $HERALD_BIN, else the
// repository's release build when it exists, else `herald` on the PATH.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const EXAMPLE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO = path.resolve(EXAMPLE, '../..');

export function heraldBin() {
  if (process.env.HERALD_BIN) return process.env.HERALD_BIN;
  const built = path.join(REPO, 'build', 'release', 'herald');
  return fs.existsSync(built) ? built : 'herald';
}
