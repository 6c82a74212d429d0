// bin/cellblock runs the compiled build only when no TypeScript source is newer than it, and
// the sources through tsx otherwise, from any working directory. Run on a copy of the launcher
// in a scratch tree whose two entry points say which one ran.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const tree = mkdtempSync(path.join(os.tmpdir(), 'cellblock-launcher-test-'));
after(() => rmSync(tree, { recursive: true, force: true }));

mkdirSync(path.join(tree, 'bin'));
mkdirSync(path.join(tree, 'src/bin'), { recursive: true });
mkdirSync(path.join(tree, 'dist/src/bin'), { recursive: true });
copyFileSync(path.join(repo, 'bin/cellblock'), path.join(tree, 'bin/cellblock'));
symlinkSync(path.join(repo, 'node_modules'), path.join(tree, 'node_modules'));
const source = path.join(tree, 'src/bin/cellblock.ts');
const build = path.join(tree, 'dist/src/bin/cellblock.js');
writeFileSync(source, 'const ran: string = "sources";\nconsole.log(ran, process.argv.slice(2).join(" "));\n');
writeFileSync(build, 'console.log("build", process.argv.slice(2).join(" "));\n');

/** What ran, and the arguments it got; from a working directory outside both trees. */
const launch = (): string =>
  execFileSync('sh', [path.join(tree, 'bin/cellblock'), 'a', 'b c'], { cwd: os.tmpdir(), encoding: 'utf8' }).trim();
const setTime = (file: string, seconds: number) => utimesSync(file, seconds, seconds);

test('the build when no source is newer than it', () => {
  setTime(source, 1_000_000);
  setTime(build, 2_000_000);
  assert.equal(launch(), 'build a b c');
});

test('the sources through tsx when one is newer than the build (an edit, a checkout)', () => {
  setTime(source, 3_000_000);
  assert.equal(launch(), 'sources a b c');
});

test('the sources through tsx when there is no build', () => {
  rmSync(build);
  assert.equal(launch(), 'sources a b c');
});
