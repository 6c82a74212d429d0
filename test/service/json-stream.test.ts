// A job's view with large outputs is answered as JSON text made piece by piece (json-stream.ts):
// the same text JSON.stringify makes, whatever the strings hold.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { text } from 'node:stream/consumers';
import { jsonTextStream, stringChars } from '../../src/api/json-stream.js';

const MiB = 1024 * 1024;

test('the streamed text is JSON.stringify\'s, for long strings of every kind of character, a surrogate pair across a piece\'s end', async () => {
  const everyByte = Buffer.from(Array.from({ length: 3 * MiB }, (_, i) => i % 256)).toString('latin1');
  // A pair whose high half ends the first piece of 1 Mi characters.
  const pairAcross = `${'a'.repeat(MiB - 1)}😀${'b'.repeat(MiB)}`;
  const value = {
    id: 'x',
    result: {
      tests: [
        { stdout: everyByte, stderr: 'short "quoted" \\ \u0001' },
        { stdout: pairAcross, stderr: `${'\ud800'.repeat(70_000)}lone surrogates` },
        { stdout: Buffer.alloc(2 * MiB, 7).toString('base64'), stderr: '' },
      ],
    },
    nothing: null,
    number: 1.5,
  };
  assert.equal(await text(jsonTextStream(value)), JSON.stringify(value));
});

test('a string that looks like a placeholder is written as it is', async () => {
  const value = { a: '~0~0', b: 'x'.repeat(70_000), c: '"~0"' };
  assert.equal(await text(jsonTextStream(value)), JSON.stringify(value));
});

test("stringChars adds up every string's characters", () => {
  assert.equal(stringChars({ a: 'abc', b: [{ c: 'de' }, 1, null, true], d: { e: 'f' } }), 6);
});
