// Judge0's additional_files: a zip (base64, whatever base64_encoded says) whose files are put in
// the box beside the source file. Judge0's IsolateJob extracts it with `unzip -n` inside the box,
// so that the source file, and an earlier entry of the same name, are kept. Here the zip is read
// in the API (yauzl: it validates entry names and sizes) and becomes plain files of the job, as
// /v1's `files` are: checked and bounded before anything is queued, and never unpacked by a
// worker. What Judge0 would extract and this service refuses (a symbolic link, an encrypted
// entry) is a 422 rather than a file missing at run time.
import { posix } from 'node:path';
import { crc32 } from 'node:zlib';
import yauzl from 'yauzl';

/** Judge0's MAX_EXTRACT_SIZE default (10240 KB): there the most each file may unpack to, here the
 * most a submission's files may unpack to together (and less when the request's body limit is
 * lower: CompatPluginOptions.maxExpansionBytes). */
export const JUDGE0_MAX_EXTRACT_BYTES = 10240 * 1024;

export interface AdditionalFile {
  name: string;
  content: Buffer;
}

export type AdditionalFiles =
  | { files: AdditionalFile[]; /** The zip as received, for reading back. */ zipBase64: string; unpackedBytes: number }
  | { error: string };

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

/** The additional files of a submission's `additional_files` attribute, or why they are refused
 * (a message for Judge0's 422 under that attribute); undefined when the attribute is blank.
 * `maxFiles` bounds the files read (the job's own count is checked when it is admitted). */
export async function readAdditionalFiles(raw: unknown, maxFiles: number, maxBytes = JUDGE0_MAX_EXTRACT_BYTES): Promise<AdditionalFiles | undefined> {
  if (raw === undefined || raw === null || raw === '') return undefined;
  if (typeof raw !== 'string') return { error: 'is invalid' };
  // Ruby's Base64.decode64 skips characters outside the alphabet, as Buffer.from does.
  const zip = Buffer.from(raw, 'base64');
  let zipfile: yauzl.ZipFile;
  try {
    // Names are checked by yauzl (no absolute path, no ".."); a backslash is read as a separator,
    // as unzip reads one.
    zipfile = await yauzl.fromBufferPromise(zip);
  } catch (error) {
    return { error: `is not a zip archive (${(error as Error).message})` };
  }
  const files: AdditionalFile[] = [];
  const seen = new Set<string>();
  let unpackedBytes = 0;
  try {
    for await (const entry of zipfile.eachEntry()) {
      // Directories are made for the files in them.
      if (entry.fileName.endsWith('/')) continue;
      if (((entry.externalFileAttributes >>> 16) & S_IFMT) === S_IFLNK) {
        return { error: `holds a symbolic link (${entry.fileName}); only regular files are extracted` };
      }
      if (entry.isEncrypted()) return { error: `holds an encrypted file (${entry.fileName})` };
      // "./a" and "a//b" as unzip writes them; unzip -n: an earlier entry of the same name stays.
      const name = posix.normalize(entry.fileName);
      if (seen.has(name)) continue;
      seen.add(name);
      if (files.length === maxFiles) return { error: `holds more than ${maxFiles} files` };
      unpackedBytes += entry.uncompressedSize;
      if (unpackedBytes > maxBytes) return { error: `unpacks to more than ${maxBytes} bytes` };
      // yauzl checks that the data has the size its entry says (validateEntrySizes), so the
      // bound above holds for what is read; the checksum is the zip's own check of the bytes.
      const chunks: Buffer[] = [];
      for await (const chunk of await zipfile.openReadStreamPromise(entry)) chunks.push(chunk as Buffer);
      const content = Buffer.concat(chunks);
      if (crc32(content) !== entry.crc32) return { error: `is damaged: ${entry.fileName} does not match its checksum` };
      files.push({ name, content });
    }
  } catch (error) {
    return { error: `is not a valid zip archive (${(error as Error).message})` };
  }
  return { files, zipBase64: zip.toString('base64'), unpackedBytes };
}
