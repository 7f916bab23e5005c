// Type tests for the SDK packages: compiles a folder's good usage file (must
// have no error) and every bad/*.ts(x) (each must fail with the error named in
// its first line, `// expect-error: TSnnnn <message part>`) against the built
// .d.ts of the packages, in one `tsc --noEmit` run.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const TSC = path.resolve(HERE, '../../../../node_modules/typescript/bin/tsc');
const OPTIONS = ['--noEmit', '--strict', '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2020', '--lib', 'ES2022,DOM'];

/** Runs tsc over `files` (relative to `dir`); resolves its diagnostics grouped by file. */
export function typecheck(dir, files, extraOptions = []) {
  return new Promise((resolve) => {
    execFile(process.execPath, [TSC, ...OPTIONS, ...extraOptions, ...files], { cwd: dir }, (err, stdout) => {
      const byFile = new Map(files.map((f) => [f, []]));
      let last = null; // an error's detail lines follow it, indented
      for (const line of stdout.split('\n')) {
        const m = /^(.+?)\(\d+,\d+\): error (TS\d+: .*)$/.exec(line);
        if (m) {
          last = byFile.get(m[1]);
          last?.push(m[2]);
        } else if (last && /^\s/.test(line)) {
          last[last.length - 1] += `\n${line.trim()}`;
        }
      }
      resolve({ code: err ? err.code : 0, stdout, byFile });
    });
  });
}

/** Checks a types folder: good.ts compiles, each bad/*.ts fails as its first line says. */
export async function checkTypeFixtures(dir, { good = 'good.ts', options = [] } = {}) {
  const bad = fs.readdirSync(path.join(dir, 'bad')).filter((f) => /\.tsx?$/.test(f)).sort().map((f) => `bad/${f}`);
  assert.ok(bad.length > 0);
  const { code, stdout, byFile } = await typecheck(dir, [good, ...bad], options);
  assert.notEqual(code, 0, 'the bad files must make tsc fail');
  assert.deepEqual(byFile.get(good), [], stdout);
  for (const f of bad) {
    const first = fs.readFileSync(path.join(dir, f), 'utf8').split('\n')[0];
    const m = /^\/\/ expect-error: (TS\d+) (.+)$/.exec(first);
    assert.ok(m, `${f}: first line must be // expect-error: TSnnnn <message part>`);
    const errors = byFile.get(f);
    assert.equal(errors.length, 1, `${f}: exactly one error expected, got:\n${errors.join('\n')}`);
    assert.ok(errors[0].startsWith(`${m[1]}: `) && errors[0].includes(m[2]), `${f}: expected ${m[1]} "${m[2]}", got: ${errors[0]}`);
  }
  return bad.length;
}

