// lib/herald-types.ts must be exactly what `herald typegen` prints for the
// example's herald.toml and schema/room.json (as in tests/typegen): a schema
// change without `npm run typegen` fails here, before the types lie to tsc.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { generate, TYPES } from '../scripts/typegen.mjs';

test('lib/herald-types.ts is up to date with herald typegen (npm run typegen)', () => {
  assert.equal(fs.readFileSync(TYPES, 'utf8'), generate(), 'run npm run typegen and commit lib/herald-types.ts');
});

test('the generated types know every event of schema/room.json', () => {
  const schema = JSON.parse(fs.readFileSync(new URL('../schema/room.json', import.meta.url), 'utf8'));
  const types = fs.readFileSync(TYPES, 'utf8');
  for (const event of Object.keys(schema)) assert.ok(types.includes(`'${event}'`), `${event} in lib/herald-types.ts`);
});
