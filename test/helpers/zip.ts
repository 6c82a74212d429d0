// Zip archives for tests, written by Python's zipfile (Debian's python3, which setup.sh installs):
// a writer independent of the reader under test, able to make the odd entries a client could send
// (a symbolic link, an entry flagged encrypted, a size that lies).
import { execFileSync } from 'node:child_process';

export interface ZipEntry {
  name: string;
  content?: string;
  /** A symbolic link to this target (Unix mode in the external attributes, as Info-ZIP writes it). */
  symlinkTo?: string;
  /** The "encrypted" flag set on an entry of plain data. */
  flaggedEncrypted?: boolean;
  /** Stored (no compression) rather than deflated. */
  stored?: boolean;
  /** Both headers declare this uncompressed size instead of the true one. */
  declaredSize?: number;
  /** The first byte of the entry's data flipped after its checksum was written. */
  damaged?: boolean;
  /** The name's bytes, in hex, in place of `name` (then unused), flagged UTF-8 (general purpose
   * bit 11) as a tool writing UTF-8 names flags them: bytes that are not UTF-8, say. */
  nameHex?: string;
}

const WRITER = `
import io, json, struct, sys, warnings, zipfile
warnings.simplefilter('ignore')  # a duplicate name is on purpose
entries = json.load(sys.stdin)
out = io.BytesIO()
written = []
with zipfile.ZipFile(out, 'w') as z:
    for e in entries:
        info = zipfile.ZipInfo('x' * (len(bytes.fromhex(e['nameHex'])) if 'nameHex' in e else 0) or e['name'])
        info.compress_type = zipfile.ZIP_STORED if e.get('stored') else zipfile.ZIP_DEFLATED
        data = e.get('content', '').encode()
        if 'symlinkTo' in e:
            info.create_system = 3
            info.external_attr = (0o120777 << 16)
            data = e['symlinkTo'].encode()
        else:
            info.external_attr = (0o100644 << 16)
        z.writestr(info, data)
        written.append((info, e))
raw = bytearray(out.getvalue())

def central_record(info):
    at = raw.find(b'PK\\x01\\x02')
    while at >= 0:
        if struct.unpack_from('<I', raw, at + 42)[0] == info.header_offset:
            return at
        at = raw.find(b'PK\\x01\\x02', at + 4)
    raise SystemExit('no central record for ' + info.filename)

# Offsets in the local header and the central directory record: flags 6 and 8, uncompressed size 22
# and 24; the local header's name and extra field lengths at 26 and 28, its data after them from 30.
for info, e in written:
    local, central = info.header_offset, central_record(info)
    if e.get('flaggedEncrypted'):
        for at in (local + 6, central + 8):
            struct.pack_into('<H', raw, at, struct.unpack_from('<H', raw, at)[0] | 1)
    if e.get('damaged'):
        name_length, extra_length = struct.unpack_from('<HH', raw, local + 26)
        raw[local + 30 + name_length + extra_length] ^= 0xFF
    if 'nameHex' in e:
        name = bytes.fromhex(e['nameHex'])
        raw[local + 30:local + 30 + len(name)] = name
        raw[central + 46:central + 46 + len(name)] = name
        for at in (local + 6, central + 8):
            struct.pack_into('<H', raw, at, struct.unpack_from('<H', raw, at)[0] | 0x800)
    if 'declaredSize' in e:
        struct.pack_into('<I', raw, local + 22, e['declaredSize'])
        struct.pack_into('<I', raw, central + 24, e['declaredSize'])
sys.stdout.buffer.write(bytes(raw))
`;

export function makeZip(entries: ZipEntry[]): Buffer {
  return execFileSync('/usr/bin/python3', ['-c', WRITER], { input: JSON.stringify(entries) });
}
