// Judge0 language ids ↔ our runtimes. The table is data (judge0-languages.json); this module only
// matches it against the runtimes this deployment has.
import type { Runtime } from '../../images/types.js';
import table from './judge0-languages.json' with { type: 'json' };

interface LanguageEntry {
  id: number;
  name: string;
  sourceFile: string;
  names: string[];
  major?: number;
  alsoIds: number[];
  /** Of alsoIds, those Judge0 1.13 lists as languages of their own. */
  listedIds?: number[];
}

/** One Judge0 language this deployment serves, bound to the runtime that runs it. */
export interface Judge0Language {
  id: number;
  name: string;
  runtime: Runtime;
  /** The submission's file name: Judge0's (its languages' source_file, `script.py`), which a
   * program can see (`__file__`, `$0`); the runtime's own where Judge0's is of another kind. */
  sourceFile: string;
  /** Other Judge0 ids accepted for the same language. */
  alsoIds: number[];
}

const ENTRIES: LanguageEntry[] = table.languages;

const majorVersion = (version: string): number => Number.parseInt(version, 10);

/** ".py" of "script.py"; "" for a name without one. */
const extensionOf = (name: string): string => {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(dot) : '';
};

/** Judge0's name for the file, where its extension is the runtime's: a runtime this table did not
 * foresee (an operator's, of another kind of file) keeps the name its compile and run expect. */
const sourceFileOf = (entry: LanguageEntry, runtime: Runtime): string =>
  extensionOf(entry.sourceFile) === extensionOf(runtime.sourceFile) ? entry.sourceFile : runtime.sourceFile;

function matches(entry: LanguageEntry, runtime: Runtime): boolean {
  const names = [runtime.id, runtime.language, ...runtime.aliases].map((name) => name.toLowerCase());
  if (!entry.names.some((name) => names.includes(name))) return false;
  return entry.major === undefined || majorVersion(runtime.version) === entry.major;
}

/** Newest first, comparing dotted numeric versions ("3.11.2" > "3.9.4"). */
function compareVersionsDescending(a: Runtime, b: Runtime): number {
  const pa = a.version.split(/[.+-]/).map((part) => Number.parseInt(part, 10) || 0);
  const pb = b.version.split(/[.+-]/).map((part) => Number.parseInt(part, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const diff = (pb[i] ?? 0) - (pa[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return 0;
}

export class Judge0Languages {
  private readonly byId = new Map<number, Judge0Language>();
  private readonly byRuntimeId = new Map<string, Judge0Language>();
  readonly listed: Judge0Language[];

  constructor(runtimes: Runtime[]) {
    const listed: Judge0Language[] = [];
    for (const entry of ENTRIES) {
      // Several runtimes may fit one entry (two Python 3s): the newest takes the well-known id.
      const runtime = runtimes.filter((candidate) => matches(entry, candidate)).sort(compareVersionsDescending)[0];
      if (runtime === undefined || this.byRuntimeId.has(runtime.id)) continue;
      const language: Judge0Language = {
        id: entry.id,
        name: entry.name.replace('{version}', runtime.version),
        runtime,
        sourceFile: sourceFileOf(entry, runtime),
        alsoIds: entry.alsoIds,
      };
      listed.push(language, ...(entry.listedIds ?? []).map((id) => ({ ...language, id })));
      this.byRuntimeId.set(runtime.id, language);
      for (const id of [entry.id, ...entry.alsoIds]) this.byId.set(id, language);
    }
    this.listed = listed.sort((a, b) => a.name.localeCompare(b.name) || a.id - b.id);
  }

  /** The language for a Judge0 id, well-known or accepted alias. */
  byLanguageId(id: number): Judge0Language | undefined {
    return this.byId.get(id);
  }

  /** The Judge0 language a finished job ran as, from the runtime recorded in its result. */
  byRuntime(runtimeId: string): Judge0Language | undefined {
    return this.byRuntimeId.get(runtimeId);
  }
}
