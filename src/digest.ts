// SHA-256 as hex: content addresses (image layers), and what Redis keeps in place of a secret or a
// client's name (API keys, live tickets, live socket clients).
import { createHash } from 'node:crypto';

export const sha256Hex = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');
