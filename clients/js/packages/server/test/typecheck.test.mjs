// Type tests of @herald/server: test/types/good.ts (typed with the client's
// fixture HeraldSchema) must type-check, each test/types/bad/*.ts must fail
// with its expected error (the client's support/typecheck.mjs).
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkTypeFixtures } from '../../client/test/support/typecheck.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));

test('typed publish and history: the good usage type-checks, each bad usage fails with its expected error', async () => {
  const n = await checkTypeFixtures(path.join(HERE, 'types'));
  assert.ok(n >= 3);
});
