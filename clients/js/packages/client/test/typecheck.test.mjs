// Type tests of the typed-events generics of @herald/client: test/types/good.ts
// must type-check, each test/types/bad/*.ts must fail with its expected error
// (support/typecheck.mjs).
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkTypeFixtures } from './support/typecheck.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));

test('typed events: the good usage type-checks, each bad usage fails with its expected error', async () => {
  const n = await checkTypeFixtures(path.join(HERE, 'types'));
  assert.ok(n >= 7);
});
