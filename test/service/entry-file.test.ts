// The name of an entry file the client did not name (/v1's `source`, Piston's unnamed file): the
// runtime's source file, but a Java source's is its class's, since javac needs a public class in
// a file of its name and the java runtime runs the class its entry file is named after.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { entryFileName, javaClassToRun } from '../../src/api/entry-file.js';
import { toJobRequest } from '../../src/api/submission.js';
import { loadRuntimes } from '../../src/images/runtimes.js';
import { OutboundPolicy } from '../../src/queue/outbound.js';

const runtimes = loadRuntimes();
const java = runtimes.find((runtime) => runtime.id === 'java')!;
const python = runtimes.find((runtime) => runtime.id === 'python')!;
const MAIN = 'public static void main(String[] args) {}';

describe('the class a Java source is run as', () => {
  it('is its public top-level type, else its first top-level type with a static main', () => {
    const cases: [string, string | undefined][] = [
      ['public class Hello{public static void main(String[] a){System.out.println(42);}}', 'Hello'],
      [`class Solution { ${MAIN} }`, 'Solution'],
      ['package a.b;\n@SuppressWarnings("x") public final class Main { }', 'Main'],
      ['public @interface Marker {}', 'Marker'],
      [`interface Shape { double area(); }\nrecord Circle(double r) implements Shape { public double area() { return r; } }\nenum Run { A, B; ${MAIN} }`, 'Run'],
      [`class Helper { void main() {} static int main; }\nclass Solution { static public void main(String... a) {} }`, 'Solution'],
      [`class Ünïcode { ${MAIN} }`, 'Ünïcode'],
      // Nested types are not top-level: neither a public one nor a main in one.
      [`class Outer { public static class Inner { ${MAIN} } }`, undefined],
      // Comments, strings, characters and text blocks hold no code.
      [`// public class Commented {}\n/* public class Block {} */\nclass Real { String s = "public class Str {"; char c = '{'; String t = """\n  public class Text { \\""" }\n  """; ${MAIN} }`, 'Real'],
      ['print("not java")', undefined],
      ['public class', undefined],
      ['', undefined],
    ];
    for (const [source, expected] of cases) assert.equal(javaClassToRun(source), expected, source);
    // Of several with a main, the one its file's name already runs, where it is one of them.
    const two = `class Helper { ${MAIN} }\nclass Main { ${MAIN} }`;
    assert.equal(javaClassToRun(two, 'Main'), 'Main');
    assert.equal(javaClassToRun(two, 'Other'), 'Helper');
    assert.equal(javaClassToRun(`public class Hello {}\nclass Main { ${MAIN} }`, 'Main'), 'Hello', 'a public class decides its file');
  });

  it('names the file of a Java source after that class, any other runtime\'s after its source file', () => {
    assert.equal(entryFileName(java, `public class Solution { ${MAIN} }`), 'Solution.java');
    assert.equal(entryFileName(java, `class Solution { ${MAIN} }`), 'Solution.java');
    assert.equal(entryFileName(java, 'class Helper {}'), 'Main.java', 'no class to run: the runtime\'s name');
    assert.equal(entryFileName(java, `class Helper { ${MAIN} }\nclass Main { ${MAIN} }`), 'Main.java', 'what ran as Main still does');
    assert.equal(entryFileName(java, `public class ${'A'.repeat(251)} {}`), 'Main.java', 'a name no file system takes');
    assert.equal(entryFileName(python, `public class Solution { ${MAIN} }`), 'main.py');
  });
});

describe('/v1', () => {
  const policy = { maxFiles: 8, maxTests: 4, maxArgs: 8, maxJobOutputBytes: 64 << 20, webhookDestinations: new OutboundPolicy() };
  const source = `public class Solution { ${MAIN} }`;

  it('writes a Java `source` under its class\'s name, and renames a named entry file after the class it runs', () => {
    assert.deepEqual(toJobRequest({ language: 'java', source }, runtimes, policy).files.map((file) => file.name), ['Solution.java']);
    assert.deepEqual(toJobRequest({ language: 'java', source: 'public class Main {}' }, runtimes, policy).files.map((file) => file.name), ['Main.java']);
    const names = (files: { name: string; content: string }[]) => toJobRequest({ language: 'java', files }, runtimes, policy).files.map((file) => file.name);
    // The java runtime runs the class its entry file is named after: a file named otherwise would
    // not run (`solution.java` holding `class Main` ran as Main before the runtime did so).
    assert.deepEqual(names([{ name: 'src/Other.java', content: source }, { name: 'Util.java', content: 'class Util {}' }]), ['src/Solution.java', 'Util.java']);
    assert.deepEqual(names([{ name: 'solution.java', content: `class Main { ${MAIN} }` }]), ['Main.java']);
    assert.deepEqual(names([{ name: 'Other.java', content: source }, { name: 'Solution.java', content: 'class Util {}' }]), ['Other.java', 'Solution.java'], 'a name another file has: as given');
    assert.deepEqual(names([{ name: 'Other.java', content: 'class Helper {}' }]), ['Other.java'], 'no class to run: as given');
  });
});
