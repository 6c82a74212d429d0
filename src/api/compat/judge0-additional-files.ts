// Judge0's additional_files: a zip (base64, whatever base64_encoded says) whose files are put in
// the box beside the source file. Judge0's IsolateJob extracts it with `unzip -n` inside the box,
// so that the source file, and an earlier entry of the same name, are kept. Here the zip is read
// in the API (yauzl: it validates entry names and sizes) and becomes plain files of the job, as
// /v1's `files` are: checked and bounded before anything is queued, and never unpacked by a
// worker. What Judge0 would extract and this service refuses (a symbolic link, an encrypted
// entry) is a 422 rather than a file missing at run time.
import { isUtf8 } from 'node:buffer';
import { posix } from 'node:path';
import { crc32 } from 'node:zlib';
import yauzl from 'yauzl';
import { shownFileName, shownUnits } from '../../executor/check.js';

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

/** An entry's name as its bytes are (one character each, not decoded), backslashes read as
 * separators and normalised as the decoded name is (yauzl, posix.normalize): two entries of one
 * name here are one file to unzip. */
function writtenName(entry: yauzl.Entry): string {
  return posix.normalize(entry.fileNameRaw.toString('latin1').replace(/\\/g, '/'));
}

/** The length of the UTF-8 sequence at `at` (1 to 4), or 0 where the bytes there are none. */
function utf8SequenceAt(bytes: Buffer, at: number): number {
  const lead = bytes[at]!;
  const length = lead < 0x80 ? 1 : lead >= 0xc2 && lead < 0xe0 ? 2 : lead >= 0xe0 && lead < 0xf0 ? 3 : lead >= 0xf0 && lead < 0xf5 ? 4 : 0;
  return length > 0 && isUtf8(bytes.subarray(at, at + length)) ? length : 0;
}

/** A name's bytes for a message: UTF-8 where they are, each other byte as \xNN; a long name
 * shortened between those, never inside an escape or a character (shownUnits). */
function shownBytes(name: string): string {
  const bytes = Buffer.from(name, 'latin1');
  const units: string[] = [];
  for (let at = 0; at < bytes.length; ) {
    const length = utf8SequenceAt(bytes, at);
    units.push(length > 0 ? bytes.subarray(at, at + length).toString('utf8') : `\\x${hexByte(bytes[at]!)}`);
    at += length || 1;
  }
  return shownUnits(units);
}

const hexByte = (byte: number): string => byte.toString(16).padStart(2, '0');

/** Where two names' bytes (one character each) first differ: the offset, and each one's byte there
 * or its end. Two long names may differ past what shownBytes shows of them. */
function firstDifference(first: string, second: string): string {
  let at = 0;
  while (at < first.length && at < second.length && first[at] === second[at]) at++;
  const byteAt = (name: string) => (at < name.length ? `0x${hexByte(name.charCodeAt(at))}` : 'the end of the name');
  return `differ first at byte ${at} (${byteAt(first)} and ${byteAt(second)})`;
}

/** Entries an archive may hold per file a submission may have (CELLBLOCK_MAX_FILES): room for
 * each file's own directories on the way (`a/b/c/file`) and repeated names. */
export const ZIP_ENTRIES_PER_FILE = 16;

/** The additional files of a submission's `additional_files` attribute, or why they are refused
 * (a message for Judge0's 422 under that attribute); undefined when the attribute is blank.
 * `maxFiles` (CELLBLOCK_MAX_FILES) bounds the files read: past it, the archive is refused before
 * its other entries are read; the job's own count, the source file among them, is checked when it
 * is admitted (admissionProblem: "65 files with the source file; at most 64"). */
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
  // Directories and repeated names make no file, yet each costs a read of its entry: bounded by
  // the count the archive's directory declares, before any is read (30,000 directory entries in a
  // 3.6 MB request held the API ~0.85 s).
  const maxEntries = maxFiles * ZIP_ENTRIES_PER_FILE;
  if (zipfile.entryCount > maxEntries) {
    zipfile.close();
    return { error: `holds ${zipfile.entryCount} entries (directories and repeated names included); at most ${maxEntries}, ${ZIP_ENTRIES_PER_FILE} for each of the ${maxFiles} files a submission may have` };
  }
  const files: AdditionalFile[] = [];
  /** Each name taken, and the bytes of the entry that took it. */
  const seen = new Map<string, string>();
  let unpackedBytes = 0;
  try {
    for await (const entry of zipfile.eachEntry()) {
      // Directories are made for the files in them.
      if (entry.fileName.endsWith('/')) continue;
      if (((entry.externalFileAttributes >>> 16) & S_IFMT) === S_IFLNK) {
        return { error: `holds a symbolic link (${shownFileName(entry.fileName)}); only regular files are extracted` };
      }
      if (entry.isEncrypted()) return { error: `holds an encrypted file (${shownFileName(entry.fileName)})` };
      // "./a" and "a//b" as unzip writes them; unzip -n: an earlier entry of the same name stays.
      const name = posix.normalize(entry.fileName);
      const written = writtenName(entry);
      const taken = seen.get(name);
      if (taken !== undefined) {
        // The same bytes (or "./a" and "a"): one file to unzip too, the first kept as unzip -n
        // keeps an earlier entry of its name. Other bytes that decode alike (a name flagged UTF-8
        // whose bytes are not, each bad sequence read as U+FFFD; "é" in CP437 and in UTF-8) would
        // be one file here where unzip writes two: refused, rather than the second dropped.
        if (taken === written) continue;
        return {
          error: `holds two entries that would both be "${shownFileName(name)}": their names' bytes, "${shownBytes(taken)}" and "${shownBytes(written)}", ${firstDifference(taken, written)}, and unzip writes two files (a name is read as UTF-8 where it is flagged so, a byte that is not UTF-8 as U+FFFD, else as CP437); give them names that differ as text`,
        };
      }
      seen.set(name, written);
      // Said as admissionProblem says a job's files, the source file counted: this entry and those
      // taken are maxFiles + 1; the source file adds one, and an entry of its name is dropped for
      // it (extraFiles), so the job would have at least maxFiles + 1.
      if (files.length === maxFiles) return { error: `${maxFiles + 1} or more files with the source file; at most ${maxFiles}` };
      unpackedBytes += entry.uncompressedSize;
      if (unpackedBytes > maxBytes) return { error: `unpacks to more than ${maxBytes} bytes` };
      // yauzl checks that the data has the size its entry says (validateEntrySizes), so the
      // bound above holds for what is read; the checksum is the zip's own check of the bytes.
      const chunks: Buffer[] = [];
      for await (const chunk of await zipfile.openReadStreamPromise(entry)) chunks.push(chunk as Buffer);
      const content = Buffer.concat(chunks);
      if (crc32(content) !== entry.crc32) return { error: `is damaged: ${shownFileName(entry.fileName)} does not match its checksum` };
      files.push({ name, content });
    }
  } catch (error) {
    return { error: `is not a valid zip archive (${(error as Error).message})` };
  }
  return { files, zipBase64: zip.toString('base64'), unpackedBytes };
}
