// Output comparison (docs/theory-of-operation.md, "Output comparison"): how a test's stdout is
// compared with its expectedOutput (text, or bytes where they are not UTF-8), by the job's
// comparison mode. `lines`, the default, is Judge0's rule, on bytes; `exact` compares bytes;
// `tokens` compares whitespace-separated words, as testlib's standard checkers do, numbers within a
// tolerance where the job gives one. The program chooses its output (up to its outputBytes,
// megabytes): every mode is linear in it (no regex that backtracks over it), and `tokens` compares
// word by word, stopping at the first difference.
import type { Comparison, ExpectedOutputReading, TestCase } from './types.js';

export const COMPARISON_MODES = ['lines', 'exact', 'tokens'] as const;

const LINES: Comparison = { mode: 'lines' };

/** A decimal number as a program prints one: sign, digits with or without a point, exponent.
 * Each digit can be matched one way only, so a long word is tested in linear time. */
const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
/** A longer word is compared as text: no double holds more digits than this that matter. */
const MAX_NUMBER_CHARS = 400;
/** Slack for the rounding of decimal text to doubles, scaled as the tolerance is: 1000.1 is
 * within 1e-4 of 1000 though the doubles differ by 0.1000000000000227. */
const ROUNDING_SLACK = 1e-15;

/** What Ruby's String#rstrip removes from the end of Judge0's outputs (binary strings, decoded
 * from base64): NUL, tab, newline, vertical tab, form feed, carriage return and space. Not
 * JavaScript's trimEnd, which also removes Unicode spaces (a no-break space, U+3000, U+FEFF): for
 * Judge0 `42\u00a0` is not `42`. */
const isTrailingBlank = (code: number): boolean => code === 0x20 || code === 0x00 || (code >= 0x09 && code <= 0x0d);

/** A loop from the line's end, not /[\0\s]+$/: that regex is quadratic on a line of many spaces
 * followed by a word. */
function withoutTrailingBlanks(line: string): string {
  let end = line.length;
  while (end > 0 && isTrailingBlank(line.charCodeAt(end - 1))) end--;
  return line.slice(0, end);
}

/** Judge0's strip (IsolateJob): every line without its trailing blanks, trailing empty lines
 * dropped. `bytes` is one character a byte (asBytes). */
function normalizeLines(bytes: string): string {
  const lines = bytes.split('\n').map(withoutTrailingBlanks);
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines.join('\n');
}

/** testlib's blanks: space, tab, newline, carriage return (a vertical tab, a form feed or a UTF-8
 * no-break space is part of a word). */
const isBlank = (code: number): boolean => code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d;

/** The words of `text` one at a time, without an array of them all. */
function* words(text: string): Generator<string> {
  let index = 0;
  while (index < text.length) {
    while (index < text.length && isBlank(text.charCodeAt(index))) index++;
    const start = index;
    while (index < text.length && !isBlank(text.charCodeAt(index))) index++;
    if (index > start) yield text.slice(start, index);
  }
}

/** Two words are equal as bytes, or, with a tolerance, as numbers within it: absolutely or
 * relative to the expected one (testlib's floating-point checkers' rule). */
function wordMatches(actual: string, expected: string, floatTolerance: number | undefined): boolean {
  if (actual === expected) return true;
  if (floatTolerance === undefined || actual.length > MAX_NUMBER_CHARS || expected.length > MAX_NUMBER_CHARS) return false;
  if (!DECIMAL.test(actual) || !DECIMAL.test(expected)) return false;
  const a = Number(actual);
  const e = Number(expected);
  if (!Number.isFinite(a) || !Number.isFinite(e)) return false;
  const difference = Math.abs(a - e);
  const tolerance = floatTolerance + ROUNDING_SLACK;
  return difference <= tolerance + ROUNDING_SLACK || difference <= tolerance * Math.abs(e) + ROUNDING_SLACK;
}

/** Text as its UTF-8 bytes; bytes as they are (a view, not a copy). */
const bytesOf = (text: Uint8Array | string): Buffer =>
  typeof text === 'string' ? Buffer.from(text, 'utf8') : Buffer.isBuffer(text) ? text : Buffer.from(text.buffer, text.byteOffset, text.byteLength);

/** Byte for byte as one character each (latin1), so that two different invalid UTF-8 bytes are
 * two different characters; blanks and digits are ASCII either way. */
const asBytes = (text: Uint8Array | string): string => bytesOf(text).toString('latin1');

function wordsMatch(stdout: Uint8Array | string, expectedOutput: Uint8Array | string, floatTolerance: number | undefined): boolean {
  const actual = words(asBytes(stdout));
  const expected = words(asBytes(expectedOutput));
  for (;;) {
    const a = actual.next();
    const e = expected.next();
    if (a.done || e.done) return a.done === e.done;
    if (!wordMatches(a.value, e.value, floatTolerance)) return false;
  }
}

/** stdout read as UTF-8 with each invalid sequence as U+FFFD (as Buffer's toString does), as
 * its UTF-8 bytes. */
const lossyUtf8 = (stdout: Uint8Array | string): Buffer => Buffer.from(bytesOf(stdout).toString('utf8'), 'utf8');

/** `expectedOutput`: text (compared as its UTF-8 bytes) or bytes (an expected output that is not
 * UTF-8, which no text could stand for: a Judge0 expected_output sent base64). `expectedOutputReading`
 * (`lines` only): how the text was read from the bytes it stands for (TestCase). */
export function outputMatches(
  stdout: Uint8Array | string,
  expectedOutput: Uint8Array | string,
  comparison: Comparison = LINES,
  expectedOutputReading?: ExpectedOutputReading,
): boolean {
  if (comparison.mode === 'exact') return bytesOf(stdout).equals(bytesOf(expectedOutput));
  if (comparison.mode === 'tokens') return wordsMatch(stdout, expectedOutput, comparison.floatTolerance);
  // Bytes, as Judge0 compares them: two different invalid UTF-8 sequences are not both U+FFFD.
  // Except against a lossy reading, whose U+FFFD stand for bytes no longer known: stdout is read
  // the same way, as the workers that such expected outputs were made for read it (each invalid
  // sequence matches any other, and a real U+FFFD, as it did there).
  const actual = expectedOutputReading === 'lossy-utf8' ? lossyUtf8(stdout) : stdout;
  return normalizeLines(asBytes(actual)) === normalizeLines(asBytes(expectedOutput));
}

/** A test's `passed` by its expected output: false where its stdout was cut at the output limit
 * (the program wrote more than is compared, so what it wrote cannot be said to match: a flood one
 * byte past a limit the expected output fills would otherwise pass), else the comparison's. A
 * guard: the executor compares only runs that ended ok, and a cut stdout ends a run output_limit. */
export function testOutputPassed(
  run: { stdout: Uint8Array; stdoutTruncated: boolean },
  test: Required<Pick<TestCase, 'expectedOutput'>> & Pick<TestCase, 'expectedOutputReading'>,
  comparison?: Comparison,
): boolean {
  return !run.stdoutTruncated && outputMatches(run.stdout, test.expectedOutput, comparison, test.expectedOutputReading);
}
