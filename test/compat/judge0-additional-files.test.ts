// Judge0's additional_files read in the API: a zip from a client, unpacked with bounds and checks
// before anything is queued (src/api/compat/judge0-additional-files.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readAdditionalFiles } from '../../src/api/compat/judge0-additional-files.js';
import { makeZip, type ZipEntry } from '../helpers/zip.js';

const read = (entries: ZipEntry[], maxFiles = 10, maxBytes?: number) => readAdditionalFiles(makeZip(entries).toString('base64'), maxFiles, maxBytes);
const refusal = async (entries: ZipEntry[], maxFiles = 10, maxBytes?: number): Promise<string> => {
  const result = await read(entries, maxFiles, maxBytes);
  assert.ok(result && 'error' in result, JSON.stringify(result));
  return result.error;
};

describe('judge0 additional_files', () => {
  it('unpacks regular files as unzip -n would: directories made for their files, the first of two same names kept', async () => {
    const zip = makeZip([
      { name: 'lib/', content: '' },
      { name: 'lib/util.h', content: '#define X 1\n' },
      { name: 'data.txt', content: 'first', stored: true },
      { name: './data.txt', content: 'second' },
      { name: 'empty', content: '' },
    ]);
    const result = await readAdditionalFiles(zip.toString('base64'), 10);
    assert.ok(result && 'files' in result, JSON.stringify(result));
    assert.deepEqual(
      result.files.map((file) => [file.name, file.content.toString()]),
      [['lib/util.h', '#define X 1\n'], ['data.txt', 'first'], ['empty', '']],
    );
    assert.equal(result.zipBase64, zip.toString('base64'));
    assert.equal(await readAdditionalFiles('', 10), undefined);
    assert.equal(await readAdditionalFiles(null, 10), undefined);
  });

  it('refuses two entries whose names differ only in bytes that are not UTF-8 (one name here, two files to unzip); keeps the first of two identical names', async () => {
    const named = (bytes: string, content = 'x') => ({ name: '', nameHex: Buffer.from(bytes, 'latin1').toString('hex'), content });
    assert.equal(
      await refusal([named('lib/a\xff.txt'), named('lib/a\xfe.txt')]),
      'holds two entries that would both be "lib/a\uFFFD.txt": their names\' bytes, "lib/a\\xff.txt" and "lib/a\\xfe.txt", differ first at byte 5 (0xff and 0xfe), and unzip writes two files (a name is read as UTF-8 where it is flagged so, a byte that is not UTF-8 as U+FFFD, else as CP437); give them names that differ as text',
    );
    // A U+FFFD written in UTF-8 is a name of its own too; UTF-8 in a name is shown as it reads.
    assert.match(await refusal([named('\xc3\xa9\xef\xbf\xbd'), named('\xc3\xa9\xff')]), /their names' bytes, "é\uFFFD" and "é\\xff", differ first at byte 2 \(0xef and 0xff\)/);
    // Long names: shown shortened, never inside an escape, and where they differ said by offset,
    // past what is shown of them.
    const long = (last: string) => named(`${'\x80'.repeat(15)}${'b'.repeat(100)}${last}`);
    const cut = await refusal([long('\xff'), long('\xfe')]);
    const shownLong = `${'\\x80'.repeat(15)}${'b'.repeat(4)}...`;
    assert.equal(cut?.slice(0, cut.indexOf(', and unzip')), `holds two entries that would both be "${'\uFFFD'.repeat(15)}${'b'.repeat(49)}...": their names' bytes, "${shownLong}" and "${shownLong}", differ first at byte 115 (0xff and 0xfe)`);
    // "a" and 21 escapes: cut after the 15th (61 characters), not inside the 16th at 64.
    const escapes = await refusal([named(`a${'\xff'.repeat(21)}`), named(`a${'\xff'.repeat(20)}\xfe`)]);
    const fifteen = `a${'\\xff'.repeat(15)}...`;
    assert.ok(escapes?.includes(`their names' bytes, "${fifteen}" and "${fifteen}", differ first at byte 21 (0xff and 0xfe)`), escapes);
    // "é" in CP437 (0x82, no UTF-8 flag) and in UTF-8: unzip writes the first's byte as it is, two files.
    const cp437 = makeZip([{ name: 'x', content: 'cp437' }, named('\xc3\xa9')]);
    for (const header of ['PK\x03\x04', 'PK\x01\x02']) cp437[cp437.indexOf(Buffer.from(header, 'latin1')) + (header.endsWith('\x04') ? 30 : 46)] = 0x82;
    const both = await readAdditionalFiles(cp437.toString('base64'), 10);
    assert.ok(both && 'error' in both && both.error.startsWith('holds two entries that would both be "é": their names\' bytes, "\\x82" and "é", differ'), JSON.stringify(both));
    // The same bytes twice (as unzip -n: the first kept), and once with "./" before them.
    const result = await read([named('a\xff', 'first'), named('a\xff', 'second'), named('./a\xff', 'third'), { name: 'data.txt', content: 'one' }, { name: 'data.txt', content: 'two' }]);
    assert.ok(result && 'files' in result, JSON.stringify(result));
    assert.deepEqual(result.files.map((file) => [file.name, file.content.toString()]), [['a\uFFFD', 'first'], ['data.txt', 'one']]);
  });

  it('refuses what it would not extract faithfully: links, encrypted entries, paths out of the box', async () => {
    assert.match(await refusal([{ name: 'a', content: 'x' }, { name: 'passwd', symlinkTo: '/etc/passwd' }]), /^holds a symbolic link \(passwd\)/);
    assert.equal(await refusal([{ name: 'secret', content: 'x', flaggedEncrypted: true }]), 'holds an encrypted file (secret)');
    // A name of up to 64 KiB is shown shortened, as every message quotes a name.
    const longName = 'n'.repeat(1000);
    const shown = `${'n'.repeat(64)}...`;
    assert.match(await refusal([{ name: longName, symlinkTo: '/etc/passwd' }]), new RegExp(`^holds a symbolic link \\(${shown.replace(/\./g, '\\.')}\\);`));
    assert.equal(await refusal([{ name: longName, content: 'x', flaggedEncrypted: true }]), `holds an encrypted file (${shown})`);
    assert.match(await refusal([{ name: '../escape', content: 'x' }]), /^is not a valid zip archive \(invalid relative path: \.\.\/escape\)$/);
    assert.match(await refusal([{ name: '/etc/cron.d/x', content: 'x' }]), /absolute path/);
  });

  it('bounds the files and the bytes before it reads them, and holds an entry to the size it declares', async () => {
    const three = [1, 2, 3].map((n) => ({ name: `f${n}`, content: 'x' }));
    // The source file counted, as admissionProblem counts a job's files ("3 files with the source file; at most 2").
    assert.equal(await refusal(three, 2), '3 or more files with the source file; at most 2');
    assert.ok((await read(three, 3)) !== undefined);
    assert.equal(await refusal([{ name: 'big', content: 'y'.repeat(2000) }], 10, 1000), 'unpacks to more than 1000 bytes');
    // Entries that make no file (directories, repeated names) are bounded too: 16 per file allowed.
    const directories = Array.from({ length: 33 }, (_, n) => ({ name: `d${n}/` }));
    assert.equal(await refusal(directories, 2), 'holds 33 entries (directories and repeated names included); at most 32, 16 for each of the 2 files a submission may have');
    const atBound = await read(directories.slice(0, 32), 2);
    assert.ok(atBound && 'files' in atBound && atBound.files.length === 0, JSON.stringify(atBound));
    // A bomb that declares 10 bytes: reading stops past them, nothing larger is made.
    assert.match(await refusal([{ name: 'bomb', content: 'z'.repeat(1_000_000), declaredSize: 10 }]), /^is not a valid zip archive \(too many bytes in the stream/);
  });

  it('refuses damaged data, and what is no zip', async () => {
    assert.equal(await refusal([{ name: 'a.txt', content: 'hello', stored: true, damaged: true }]), 'is damaged: a.txt does not match its checksum');
    assert.equal(await refusal([{ name: 'd'.repeat(1000), content: 'hello', stored: true, damaged: true }]), `is damaged: ${'d'.repeat(64)}... does not match its checksum`);
    const notZip = await readAdditionalFiles(Buffer.from('not a zip').toString('base64'), 10);
    assert.ok(notZip && 'error' in notZip && notZip.error.startsWith('is not a zip archive'));
    assert.deepEqual(await readAdditionalFiles(42, 10), { error: 'is invalid' });
  });
});
