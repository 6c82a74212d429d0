// A job's view with large outputs is answered as JSON text made piece by piece, as the client
// reads it. Made whole (fastify's serializer), the text of a result of 8 tests × 16 MiB was one
// string beside the view it came from, then a buffer of it for the socket: ~1 GB of the API's
// memory for one GET as base64, and as text (control bytes are six characters each in JSON) a
// string past V8's longest, answered 406 after ~1.7 GB. Piece by piece, the view is held once
// and each piece (at most PIECE_CHARS of a string, escaped) only until the socket has taken it.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';

/** A view whose strings hold at least this many characters in all is answered as a stream;
 * smaller ones by fastify's serializer, as every other answer is. */
export const STREAMED_JSON_MIN_CHARS = 1024 * 1024;
/** Strings this long or longer are written in pieces; shorter ones go with the text around them. */
const LONG_STRING_CHARS = 64 * 1024;
/** The characters of a long string escaped at a time. */
const PIECE_CHARS = 1024 * 1024;

/** The characters of the strings in `value` (an object of JSON values), added up. */
export function stringChars(value: unknown): number {
  if (typeof value === 'string') return value.length;
  if (value === null || typeof value !== 'object') return 0;
  let chars = 0;
  for (const field of Array.isArray(value) ? value : Object.values(value)) chars += stringChars(field);
  return chars;
}

/** What JSON.stringify escapes in a string: control characters, the quote, the backslash, and
 * lone surrogates (any surrogate here, the pairs then kept by JSON.stringify as they are). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

const isHighSurrogate = (code: number) => code >= 0xd800 && code <= 0xdbff;

/** A long string as JSON text, a piece at a time (a surrogate pair never split between two). */
function* stringPieces(text: string): Generator<string> {
  yield '"';
  for (let start = 0; start < text.length; ) {
    let end = Math.min(text.length, start + PIECE_CHARS);
    if (end < text.length && isHighSurrogate(text.charCodeAt(end - 1))) end += 1;
    const piece = text.slice(start, end);
    // Most long strings need no escape (base64 never does): checked first, JSON.stringify being
    // several times slower than the check.
    yield NEEDS_ESCAPE.test(piece) ? JSON.stringify(piece).slice(1, -1) : piece;
    start = end;
  }
  yield '"';
}

/** `value` as JSON.stringify writes it, a piece at a time: its text with each long string left
 * out (a placeholder no string of it can hold: a random token), then each long string in pieces
 * where its placeholder was. */
function* jsonPieces(value: unknown): Generator<string> {
  const token = `~${randomBytes(16).toString('hex')}~`;
  const long: string[] = [];
  const text = JSON.stringify(value, (_key, field: unknown) =>
    typeof field === 'string' && field.length >= LONG_STRING_CHARS ? `${token}${long.push(field) - 1}` : field,
  );
  let at = 0;
  for (const placeholder of text.matchAll(new RegExp(`"${token}(\\d+)"`, 'g'))) {
    yield text.slice(at, placeholder.index);
    yield* stringPieces(long[Number(placeholder[1])]!);
    at = placeholder.index + placeholder[0].length;
  }
  yield text.slice(at);
}

/** `value`'s JSON text as a stream of bytes, made as it is read (one piece ahead). */
export function jsonTextStream(value: unknown): Readable {
  return Readable.from(jsonPieces(value), { objectMode: false, highWaterMark: 64 * 1024 });
}
