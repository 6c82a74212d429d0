// SHA-256 as hex: content addresses (image layers), and what Redis keeps in place of a secret or a
// client's name (API keys, live tickets, live socket clients); and canonical JSON, the one text of
// a value that is hashed (a layer's recipe) or compared (an Idempotency-Key's submission).
import { createHash } from 'node:crypto';

export const sha256Hex = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

/** JSON with object keys sorted at every level (undefined fields left out, as JSON leaves them):
 * one text per value, whatever order its fields came in. Image layers' hashes are made of it: a
 * change here is a rebuild of every image. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
