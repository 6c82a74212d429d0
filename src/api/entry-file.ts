// The name of a submission's entry file where the client gave none (/v1's `source`, Piston's
// unnamed file): the runtime's `sourceFile` (`main.c`, `Main.java`), except for Java. javac
// requires a public class to be in a file of its name (JLS 7.6), and the java runtime runs the
// class its entry file is named after (`{entryStem}` in images/runtimes/java.json), so a Java
// source is named after the class it declares to be run: `public class Solution` is
// `Solution.java`, which compiles and runs, as Piston's source launcher (`java file.java`) runs it;
// a source that ran as `Main` under the runtime's `Main.java` still does. Judge0 names its file
// itself (`Main.java`), as Judge0 does.
import { stemOf } from '../executor/argv.js';
import { NAME_MAX_BYTES } from '../executor/check.js';
import type { Runtime } from '../images/types.js';

const JAVA_SUFFIX = '.java';

/** The entry file's name where the client gave none. */
export function entryFileName(runtime: Runtime, source: string): string {
  return javaEntryFileName(runtime, source, runtime.sourceFile) ?? runtime.sourceFile;
}

/** For a runtime of Java sources (its `sourceFile` is one), `<Class>.java` for the class `source`
 * is to run (javaClassToRun, preferring the class that `name`, the file's name otherwise, would
 * run); undefined for another runtime, or a source that names no such class. */
export function javaEntryFileName(runtime: Runtime, source: string, name: string): string | undefined {
  if (!runtime.sourceFile.endsWith(JAVA_SUFFIX)) return undefined;
  // The class a file of that name runs (`{entryStem}`): `src/Main.java` runs `Main`.
  const className = javaClassToRun(source, stemOf(name));
  if (className === undefined) return undefined;
  const fileName = `${className}${JAVA_SUFFIX}`;
  return Buffer.byteLength(fileName) <= NAME_MAX_BYTES ? fileName : undefined;
}

/** A Java entry file the client named, named after the class it is to run in the directory it was
 * given (`solution.java` holding `class Main` is `Main.java`), since the java runtime runs the
 * class its entry file is named after; as given where that class is unknown, or where `taken`
 * says another file has that name. */
export function javaEntryFileRenamed(runtime: Runtime, source: string, name: string, taken: (name: string) => boolean): string {
  const javaName = javaEntryFileName(runtime, source, name);
  if (javaName === undefined) return name;
  const renamed = `${name.slice(0, name.lastIndexOf('/') + 1)}${javaName}`;
  return renamed === name || taken(renamed) ? name : renamed;
}

const TYPE_KEYWORDS: ReadonlySet<string> = new Set(['class', 'interface', 'enum', 'record']);

/** The class a Java source is to be run as: its public top-level type, whose file javac requires
 * to be named after it; else, of its top-level types with a `static void main(`, `expected` (the
 * class its file's name already runs: a source that ran as `Main` still does) or else the first
 * (the one the source launcher runs in a source Piston runs: it runs the first top-level type). */
export function javaClassToRun(source: string, expected?: string): string | undefined {
  let depth = 0;
  /** The tokens of the top-level declaration being read, up to its body. */
  let declaration: string[] = [];
  /** The top-level type whose body is being read. */
  let type: { name: string; hasMain: boolean } | undefined;
  /** The tokens of the member of that body being read, up to its own body or end. */
  let member: string[] = [];
  const withMain: string[] = [];
  for (const token of javaTokens(source)) {
    if (token === '{') {
      if (depth === 0) {
        const at = declaration.findIndex((word, i) => TYPE_KEYWORDS.has(word) && isIdentifier(declaration[i + 1]));
        if (at >= 0 && declaration.slice(0, at).includes('public')) return declaration[at + 1];
        type = at >= 0 ? { name: declaration[at + 1]!, hasMain: false } : undefined;
        declaration = [];
      }
      member = [];
      depth += 1;
    } else if (token === '}') {
      depth = Math.max(0, depth - 1);
      if (depth === 0 && type?.hasMain) withMain.push(type.name);
      if (depth === 0) type = undefined;
      member = [];
    } else if (token === ';') {
      if (depth === 0) declaration = [];
      member = [];
    } else if (depth === 0) {
      declaration.push(token);
    } else if (depth === 1) {
      if (token === '(' && type && member.at(-1) === 'main' && member.at(-2) === 'void' && member.includes('static')) type.hasMain = true;
      member.push(token);
    }
  }
  return expected !== undefined && withMain.includes(expected) ? expected : withMain[0];
}

const IDENTIFIER = /[\p{ID_Start}_$][\p{ID_Continue}$]*/uy;
const NUMBER = /\d[\w.]*/y;

function isIdentifier(word: string | undefined): boolean {
  if (word === undefined || TYPE_KEYWORDS.has(word)) return false;
  IDENTIFIER.lastIndex = 0;
  return IDENTIFIER.exec(word)?.[0] === word;
}

/** What the declarations are read from: words (identifiers and keywords), braces, parentheses,
 * `;` and `@`. Comments, string and character literals and text blocks are skipped, so that what
 * they hold is not taken for code. Linear in the source. */
function* javaTokens(source: string): Generator<string> {
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    if (c === '/' && source[i + 1] === '/') {
      const end = source.indexOf('\n', i);
      i = end < 0 ? source.length : end + 1;
    } else if (c === '/' && source[i + 1] === '*') {
      const end = source.indexOf('*/', i + 2);
      i = end < 0 ? source.length : end + 2;
    } else if (c === '"' || c === "'") {
      i = literalEnd(source, i);
    } else if ('{}();@'.includes(c)) {
      yield c;
      i += 1;
    } else {
      const word = matchAt(IDENTIFIER, source, i);
      if (word !== undefined) yield word;
      // A number is skipped whole: 0x1F is no word x1F.
      i += word?.length ?? matchAt(NUMBER, source, i)?.length ?? 1;
    }
  }
}

function matchAt(pattern: RegExp, source: string, at: number): string | undefined {
  pattern.lastIndex = at;
  return pattern.exec(source)?.[0];
}

/** Where the string, text block or character literal starting at `start` ends (an unterminated one
 * at its line's end, as javac reports it; a text block at the source's). */
function literalEnd(source: string, start: number): number {
  const quote = source[start]!;
  const textBlock = source.startsWith('"""', start);
  let i = start + (textBlock ? 3 : 1);
  while (i < source.length) {
    if (source[i] === '\\') i += 2;
    else if (textBlock ? source.startsWith('"""', i) : source[i] === quote) return i + (textBlock ? 3 : 1);
    else if (!textBlock && source[i] === '\n') return i + 1;
    else i += 1;
  }
  return source.length;
}
