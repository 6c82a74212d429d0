// Every runtime on its real image, through the sandbox engine: its toolchain version matches
// the runtime's data, hello world, reading stdin, a compile error with the compiler's message
// (compiled languages), and a runtime error with its stderr. The images are built first (a no-op
// when the data dir already holds them: CELLBLOCK_DATA_DIR, default /var/lib/cellblock).
// Each run gets a fresh root: an overlay of the image's layers with a tmpfs upper, as the pool
// makes them, unmounted afterwards.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildImages } from '../../src/images/builder.js';
import { ImageBuildError } from '../../src/images/errors.js';
import { dataDirFromEnv, defaultDefinitionsDir } from '../../src/images/paths.js';
import { loadRuntimes } from '../../src/images/runtimes.js';
import { openImageStore, overlayLowerdir } from '../../src/images/store.js';
import type { BuiltImage, Runtime } from '../../src/images/types.js';
import { variantOf } from '../../src/images/variants.js';
import { compileArgv, runArgv, stageEnv } from '../../src/executor/argv.js';
import { effectiveLimits } from '../../src/executor/limits.js';
import type { Limits, RunResult, Sandbox, Verdict } from '../../src/sandbox/types.js';
import { MiB } from '../../src/units.js';
import { definitionsDir, mountsUnder, scratchDir, whyNoLayerBuilds } from './helpers.js';

/** Per runtime: a program summing two numbers from stdin, a program the compiler rejects (with a
 * word its message must contain), and one that fails at run time (with its stderr). */
interface Cases {
  sum: string;
  compileError?: { source: string; message: RegExp };
  /** A compiled language's program beside other files (a header, a data file it reads): the
   * compiler must get only the sources. Prints the data file's first line. */
  withFiles?: { source: string; files: Record<string, string> };
  runtimeError: { source: string; exitCode: number; stderr: RegExp };
  /** A runtime whose heap would be sized from the machine's RAM, told the run's memory limit by its
   * file's limit placeholders (images/README.md, "Runtimes"): each of `fits` (small live data, far
   * more garbage than the limit) ends ok at its memoryBytes, where the runtime, sizing its heap
   * from the host's RAM, was killed (memory_limit), `runs` times (Go's was killed in most runs,
   * not all); `exceeds` (live data above the limit) ends as `verdict`. */
  heap?: {
    fits: { what: string; source: string; memoryBytes: number; runs?: number }[];
    exceeds: { source: string; memoryBytes: number; verdict: Verdict; stderr?: RegExp };
  };
  /** A runtime told its CPU limit ({cpuCores}): the program prints how many threads run its code
   * at once, `stdout(cpuCores)`. */
  threads?: { source: string; stdout: (cpuCores: number) => string };
  /** Programs using what judges' programs take for granted beyond the language's core (a library
   * unit, linking libc, an extension), each compiling cleanly and printing `stdout`: a package the
   * image lacks fails here rather than on a client's job (the image definition installs it). */
  features?: { what: string; source: string; stdout: string }[];
  /** A runtime whose stack is its own (a JVM's thread, V8's limit, Ruby's VM stack), told the run's
   * stackBytes ({stackKiB}, {stackBytes}): `source(depth)` recurses that deep and prints the depth.
   * 10^5 (a DFS of a path of 10^5 nodes) runs at the default stackBytes, where the runtime's own
   * stack ended it at 10-23 thousand; `deeper` does not, and runs at the largest stackBytes. */
  stack?: { source: (depth: number) => string; deeper: number };
}

/** Programs for Cases.heap. */
const HEAP = {
  java: {
    garbage:
      'public class Main {\n  public static void main(String[] args) {\n    // ~16 MB live (a ring of 16 1 MB arrays), 3000 1 MB arrays allocated: 3 GB of garbage.\n    byte[][] ring = new byte[16][];\n    for (int i = 0; i < 3000; i++) ring[i % ring.length] = new byte[1 << 20];\n    System.out.println(ring.length);\n  }\n}\n',
    array: 'public class Main {\n  public static void main(String[] args) {\n    int[] a = new int[34_000_000];\n    for (int i = 0; i < a.length; i += 1024) a[i] = i;\n    System.out.println(a.length);\n  }\n}\n',
    live: 'public class Main {\n  public static void main(String[] args) {\n    byte[][] keep = new byte[300][];\n    for (int i = 0; i < keep.length; i++) keep[i] = new byte[1 << 20];\n    System.out.println(keep.length);\n  }\n}\n',
  },
  javascript: {
    // Arrays of 2^16 elements (0.5 MB, in V8's large-object space, which only a full collection frees).
    garbage: '// ~16 MB live (a ring of 32 0.5 MB arrays), 2000 allocated: 1 GB of garbage.\nconst ring = new Array(32);\nfor (let i = 0; i < 2000; i++) {\n  const a = new Array(1 << 16);\n  a[0] = i;\n  ring[i % ring.length] = a;\n}\nconsole.log(ring.length);\n',
    live: 'const keep = [];\nfor (let i = 0; i < 600; i++) keep.push(new Array(1 << 16).fill(i));\nconsole.log(keep.length);\n',
  },
  // Each page of a slice written: Go's fresh pages are zero, and untouched they would not count.
  go: (live: number) =>
    `package main\n\nimport "fmt"\n\n// ${live} MB live (a ring of 1 MB slices), 3000 allocated: 3 GB of garbage.\nfunc main() {\n\tring := make([][]byte, ${live})\n\tfor i := 0; i < 3000; i++ {\n\t\ta := make([]byte, 1<<20)\n\t\tfor j := 0; j < len(a); j += 4096 {\n\t\t\ta[j] = byte(i)\n\t\t}\n\t\tring[i%len(ring)] = a\n\t}\n\tsum := 0\n\tfor _, a := range ring {\n\t\tsum += int(a[0])\n\t}\n\tfmt.Println(sum)\n}\n`,
  goLive:
    'package main\n\nimport "fmt"\n\nfunc main() {\n\tkeep := make([][]byte, 0, 300)\n\tfor i := 0; i < 300; i++ {\n\t\ta := make([]byte, 1<<20)\n\t\tfor j := 0; j < len(a); j += 4096 {\n\t\t\ta[j] = 1\n\t\t}\n\t\tkeep = append(keep, a)\n\t}\n\tfmt.Println(len(keep))\n}\n',
  ruby: {
    garbage: '# ~16 MB live (a ring of 16 1 MB strings), 3000 allocated: 3 GB of garbage.\nring = Array.new(16)\n3000.times { |i| ring[i % 16] = "x" * (1 << 20) }\nputs ring.size\n',
    live: 'keep = []\n300.times { keep << "x" * (1 << 20) }\nputs keep.size\n',
  },
};

/** Programs for Cases.stack: a recursion `depth` deep, printing its depth. */
const STACK = {
  java: (depth: number) => `public class Main {\n  static int depth(int n) { return n == 0 ? 0 : 1 + depth(n - 1); }\n  public static void main(String[] args) { System.out.println(depth(${depth})); }\n}\n`,
  javascript: (depth: number) => `function depth(n) { return n === 0 ? 0 : 1 + depth(n - 1); }\nconsole.log(depth(${depth}));\n`,
  ruby: (depth: number) => `def depth(n) = n == 0 ? 0 : 1 + depth(n - 1)\nputs depth(${depth})\n`,
};

const CASES: Record<string, Cases> = {
  python: {
    sum: 'import sys\na, b = map(int, sys.stdin.read().split())\nprint(a + b)\n',
    runtimeError: { source: 'print("before")\nraise ValueError("boom")\n', exitCode: 1, stderr: /ValueError: boom/ },
  },
  javascript: {
    sum: "const [a, b] = require('fs').readFileSync(0, 'utf8').trim().split(/\\s+/).map(Number);\nconsole.log(a + b);\n",
    runtimeError: { source: 'console.log("before");\nthrow new Error("boom");\n', exitCode: 1, stderr: /Error: boom/ },
    // V8's heap limit from the host's RAM (4144 MB on 24 GB): killed at 128 MiB, as at 256.
    heap: {
      fits: [{ what: '1 GB of garbage, 16 MB live', source: HEAP.javascript.garbage, memoryBytes: 128 * MiB }],
      // V8's heap limit reached: its fatal error aborts.
      exceeds: { source: HEAP.javascript.live, memoryBytes: 128 * MiB, verdict: 'signaled', stderr: /JavaScript heap out of memory/ },
    },
    // V8's own limit (984 KiB): ~11 thousand frames at any stackBytes.
    stack: { source: STACK.javascript, deeper: 1_000_000 },
  },
  ruby: {
    sum: 'a, b = $stdin.read.split.map(&:to_i)\nputs a + b\n',
    runtimeError: { source: 'puts "before"\nraise "boom"\n', exitCode: 1, stderr: /boom \(RuntimeError\)/ },
    // Ruby's malloc limits are the same on any machine (its old objects' up to 128 MB before a full
    // collection): killed at 128 MiB, 202 MB at 256.
    heap: {
      fits: [{ what: '3 GB of garbage, 16 MB live', source: HEAP.ruby.garbage, memoryBytes: 128 * MiB }],
      exceeds: { source: HEAP.ruby.live, memoryBytes: 128 * MiB, verdict: 'memory_limit' },
    },
    // Ruby's VM stack (1 MiB): ~10 thousand frames at any stackBytes.
    stack: { source: STACK.ruby, deeper: 1_000_000 },
  },
  c: {
    sum: '#include <stdio.h>\nint main(void) {\n  long a, b;\n  if (scanf("%ld %ld", &a, &b) != 2) return 2;\n  printf("%ld\\n", a + b);\n  return 0;\n}\n',
    compileError: { source: 'int main(void) {\n  return undefined_name;\n}\n', message: /undefined_name.*undeclared|error:.*undefined_name/ },
    withFiles: {
      source: '#include <stdio.h>\n#include "util.h"\nint main(void) {\n  char line[64];\n  FILE *f = fopen("input.txt", "r");\n  if (!f || !fgets(line, sizeof line, f)) return 2;\n  fputs(line, stdout);\n  return ZERO;\n}\n',
      files: { 'util.h': '#define ZERO 0\n', 'input.txt': 'data line\n' },
    },
    runtimeError: { source: '#include <stdio.h>\nint main(void) {\n  printf("before\\n");\n  fprintf(stderr, "boom\\n");\n  return 3;\n}\n', exitCode: 3, stderr: /boom/ },
  },
  cpp: {
    sum: '#include <iostream>\nint main() {\n  long a, b;\n  std::cin >> a >> b;\n  std::cout << a + b << std::endl;\n}\n',
    compileError: { source: '#include <iostream>\nint main() {\n  std::cout << "x" << std::endl\n}\n', message: /error: expected .;. before/ },
    withFiles: {
      source: '#include <fstream>\n#include <iostream>\n#include <string>\n#include "util.hpp"\nint main() {\n  std::ifstream in("input.txt");\n  std::string line;\n  if (!std::getline(in, line)) return 2;\n  std::cout << line << std::endl;\n  return ZERO;\n}\n',
      files: { 'util.hpp': '#define ZERO 0\n', 'input.txt': 'data line\n' },
    },
    runtimeError: { source: '#include <stdexcept>\nint main() {\n  throw std::runtime_error("boom");\n}\n', exitCode: -1, stderr: /boom/ },
  },
  java: {
    sum: 'import java.util.Scanner;\npublic class Main {\n  public static void main(String[] args) {\n    Scanner in = new Scanner(System.in);\n    long a = in.nextLong(), b = in.nextLong();\n    System.out.println(a + b);\n  }\n}\n',
    compileError: { source: 'public class Main {\n  public static void main(String[] args) {\n    int x = "text";\n  }\n}\n', message: /incompatible types/ },
    withFiles: {
      source: 'import java.nio.file.*;\npublic class Main {\n  public static void main(String[] args) throws Exception {\n    System.out.println(Files.readAllLines(Path.of("input.txt")).get(0) + Util.SUFFIX);\n  }\n}\n',
      files: { 'Util.java': 'class Util {\n  static final String SUFFIX = "";\n}\n', 'input.txt': 'data line\n' },
    },
    runtimeError: { source: 'public class Main {\n  public static void main(String[] args) {\n    System.out.println("before");\n    throw new RuntimeException("boom");\n  }\n}\n', exitCode: 1, stderr: /java\.lang\.RuntimeException: boom/ },
    // The JVM's heap from the host's RAM (maxMemory 5827 MB on 24 GB): killed at 128 MiB (Judge0's
    // memory_limit 128000) and at 256.
    heap: {
      fits: [
        { what: '3 GB of garbage, 16 MB live', source: HEAP.java.garbage, memoryBytes: 128 * MiB },
        // 136 MB: more than the old generation of the serial collector's default shape (2/3 of the
        // heap, 128 MB at 256 MiB), where an array too big for the young one must go: an
        // OutOfMemoryError with the heap all but empty.
        { what: 'one array of 53% of the limit', source: HEAP.java.array, memoryBytes: 256 * MiB },
      ],
      // The heap (-Xmx) is below the limit, the JVM's own memory beside it: the JVM says so.
      exceeds: { source: HEAP.java.live, memoryBytes: 128 * MiB, verdict: 'runtime_error', stderr: /java\.lang\.OutOfMemoryError: Java heap space/ },
    },
    // Runtime.availableProcessors(): the host's CPUs (2 here at any cpuCores) without being told.
    threads: {
      source: 'public class Main {\n  public static void main(String[] args) {\n    System.out.println(Runtime.getRuntime().availableProcessors());\n  }\n}\n',
      stdout: (cpuCores: number) => `${Math.ceil(cpuCores)}\n`,
    },
    // The JVM's thread stack (1 MiB, which the launcher runs main on): ~23 thousand frames.
    stack: { source: STACK.java, deeper: 3_000_000 },
  },
  rust: {
    sum: 'use std::io::Read;\nfn main() {\n    let mut text = String::new();\n    std::io::stdin().read_to_string(&mut text).unwrap();\n    let sum: i64 = text.split_whitespace().map(|n| n.parse::<i64>().unwrap()).sum();\n    println!("{}", sum);\n}\n',
    compileError: { source: 'fn main() {\n    println!("{}", undefined_name);\n}\n', message: /cannot find value `undefined_name`/ },
    // rustc takes the crate root alone ({entry}); `mod util;` finds util.rs beside it.
    withFiles: {
      source: 'mod util;\nfn main() {\n    let text = std::fs::read_to_string("input.txt").unwrap();\n    print!("{}{}", text.lines().next().unwrap(), util::NEWLINE);\n}\n',
      files: { 'util.rs': 'pub const NEWLINE: &str = "\\n";\n', 'input.txt': 'data line\n' },
    },
    runtimeError: { source: 'fn main() {\n    println!("before");\n    panic!("boom");\n}\n', exitCode: 101, stderr: /panicked at 'boom'/ },
  },
  go: {
    sum: 'package main\n\nimport "fmt"\n\nfunc main() {\n\tvar a, b int64\n\tfmt.Scan(&a, &b)\n\tfmt.Println(a + b)\n}\n',
    compileError: { source: 'package main\n\nfunc main() {\n\tprintln(undefinedName)\n}\n', message: /undefined: undefinedName/ },
    withFiles: {
      source: 'package main\n\nimport (\n\t"bufio"\n\t"fmt"\n\t"os"\n)\n\nfunc main() {\n\tf, err := os.Open("input.txt")\n\tif err != nil {\n\t\tos.Exit(2)\n\t}\n\tline, _ := bufio.NewReader(f).ReadString(\'\\n\')\n\tfmt.Print(line)\n\tos.Exit(zero)\n}\n',
      files: { 'util.go': 'package main\n\nconst zero = 0\n', 'input.txt': 'data line\n' },
    },
    runtimeError: { source: 'package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("before")\n\tpanic("boom")\n}\n', exitCode: 2, stderr: /panic: boom/ },
    heap: {
      fits: [
        // With GOMAXPROCS 2 under one core's CPU time, its collector fell behind: killed in 7 of 10
        // runs at 64 MiB on a busy machine (fewer on an idle one); in none with GOMAXPROCS 1.
        { what: '3 GB of garbage, 8 MB live', source: HEAP.go(8), memoryBytes: 64 * MiB, runs: 3 },
        // Killed in every run without GOMEMLIMIT: twice its live data is its heap's goal.
        { what: '3 GB of garbage, 48 MB live', source: HEAP.go(48), memoryBytes: 100 * MiB },
      ],
      exceeds: { source: HEAP.goLive, memoryBytes: 100 * MiB, verdict: 'memory_limit' },
    },
    threads: {
      source: 'package main\n\nimport (\n\t"fmt"\n\t"runtime"\n)\n\nfunc main() {\n\tfmt.Println(runtime.GOMAXPROCS(0))\n}\n',
      stdout: (cpuCores: number) => `${Math.ceil(cpuCores)}\n`,
    },
  },
  php: {
    sum: '<?php\n[$a, $b] = array_map(\'intval\', preg_split(\'/\\s+/\', trim(stream_get_contents(STDIN))));\necho $a + $b, "\\n";\n',
    runtimeError: { source: '<?php\necho "before\\n";\nthrow new Exception("boom");\n', exitCode: 255, stderr: /Uncaught Exception: boom/ },
    // Debian's php8.2-cli alone has none of these (mb_strlen was a fatal error): php8.2-mbstring,
    // -bcmath and -gmp in images/php.json.
    features: [
      { what: 'mbstring', source: "<?php\necho mb_strlen('héllo'), ' ', mb_strtoupper('héllo'), \"\\n\";\n", stdout: '5 HÉLLO\n' },
      { what: 'bcmath', source: "<?php\necho bcadd('99999999999999999999', '1'), ' ', bcdiv('1', '3', 5), \"\\n\";\n", stdout: '100000000000000000000 0.33333\n' },
      { what: 'gmp', source: "<?php\necho gmp_strval(gmp_add('99999999999999999999', 1)), ' ', gmp_strval(gmp_fact(25)), \"\\n\";\n", stdout: '100000000000000000000 15511210043330985984000000\n' },
    ],
  },
  perl: {
    sum: 'my ($a, $b) = split " ", do { local $/; <STDIN> };\nprint $a + $b, "\\n";\n',
    runtimeError: { source: 'print "before\\n";\ndie "boom\\n";\n', exitCode: 255, stderr: /^boom$/m },
  },
  lua: {
    sum: 'local a, b = io.read("n", "n")\nprint(math.tointeger(a + b))\n',
    runtimeError: { source: 'print("before")\nerror("boom")\n', exitCode: 1, stderr: /boom/ },
  },
  csharp: {
    sum: 'using System;\nusing System.Linq;\n\npublic class Program\n{\n    public static void Main()\n    {\n        var sum = Console.In.ReadToEnd().Split((char[])null, StringSplitOptions.RemoveEmptyEntries).Select(long.Parse).Sum();\n        Console.WriteLine(sum);\n    }\n}\n',
    compileError: { source: 'public class Program\n{\n    public static void Main()\n    {\n        int x = "text";\n    }\n}\n', message: /error CS0029: Cannot implicitly convert type `string' to `int'/ },
    withFiles: {
      source: 'using System;\nusing System.IO;\n\npublic class Program\n{\n    public static void Main()\n    {\n        Console.WriteLine(File.ReadAllLines("input.txt")[0] + Util.Suffix);\n    }\n}\n',
      files: { 'Util.cs': 'static class Util\n{\n    public const string Suffix = "";\n}\n', 'input.txt': 'data line\n' },
    },
    runtimeError: { source: 'using System;\n\npublic class Program\n{\n    public static void Main()\n    {\n        Console.WriteLine("before");\n        throw new InvalidOperationException("boom");\n    }\n}\n', exitCode: 1, stderr: /System\.InvalidOperationException: boom/ },
  },
  pascal: {
    sum: 'program Sum;\nvar a, b: Int64;\nbegin\n  readln(a, b);\n  writeln(a + b);\nend.\n',
    compileError: { source: 'program Broken;\nbegin\n  writeln(undefinedName);\nend.\n', message: /Identifier not found "undefinedName"/ },
    // fpc takes the program file alone ({entry}) and finds the units it uses beside it.
    withFiles: {
      source: "program WithFiles;\nuses Util;\nvar f: Text; line: string;\nbegin\n  Assign(f, 'input.txt');\n  Reset(f);\n  readln(f, line);\n  writeln(line);\n  Halt(Zero);\nend.\n",
      files: { 'util.pas': 'unit Util;\ninterface\nconst Zero = 0;\nimplementation\nend.\n', 'input.txt': 'data line\n' },
    },
    runtimeError: { source: "program Fail;\nbegin\n  writeln('before');\n  writeln(StdErr, 'boom');\n  Halt(3);\nend.\n", exitCode: 3, stderr: /boom/ },
    // cthreads and cmem link libc (libc6-dev: `cannot find -lpthread`, `-lc` without it); gvector is
    // fcl-stl's (fp-units-fcl: `Can't find unit gvector` without it).
    features: [
      {
        what: 'a TThread (uses cthreads)',
        source: 'program Threads;\n{$mode objfpc}\nuses cthreads, Classes;\ntype\n  TSum = class(TThread)\n  public\n    Total: Int64;\n  protected\n    procedure Execute; override;\n  end;\nprocedure TSum.Execute;\nvar i: Integer;\nbegin\n  for i := 1 to 1000 do Total := Total + i;\nend;\nvar t: TSum;\nbegin\n  t := TSum.Create(False);\n  t.WaitFor;\n  writeln(t.Total);\n  t.Free;\nend.\n',
        stdout: '500500\n',
      },
      { what: "libc's allocator (uses cmem)", source: 'program Mem;\nuses cmem;\nvar p: PInt64;\nbegin\n  GetMem(p, SizeOf(Int64));\n  p^ := 42;\n  writeln(p^);\n  FreeMem(p);\nend.\n', stdout: '42\n' },
      {
        what: "fcl-stl's TVector (uses gvector)",
        source: 'program Vec;\n{$mode objfpc}\nuses gvector;\ntype TInts = specialize TVector<LongInt>;\nvar v: TInts; i, sum: LongInt;\nbegin\n  v := TInts.Create;\n  for i := 1 to 10 do v.PushBack(i);\n  sum := 0;\n  for i := 0 to v.Size - 1 do sum := sum + v[i];\n  writeln(v.Size, \' \', sum);\n  v.Free;\nend.\n',
        stdout: '10 55\n',
      },
    ],
  },
  haskell: {
    sum: 'main :: IO ()\nmain = do\n  [a, b] <- map read . words <$> getContents :: IO [Integer]\n  print (a + b)\n',
    compileError: { source: 'main :: IO ()\nmain = print undefinedName\n', message: /Variable not in scope: undefinedName/ },
    withFiles: {
      source: 'import Util (firstLine)\n\nmain :: IO ()\nmain = readFile "input.txt" >>= putStrLn . firstLine\n',
      files: { 'Util.hs': 'module Util (firstLine) where\n\nfirstLine :: String -> String\nfirstLine = head . lines\n', 'input.txt': 'data line\n' },
    },
    runtimeError: { source: 'main :: IO ()\nmain = do\n  putStrLn "before"\n  error "boom"\n', exitCode: 1, stderr: /main: boom/ },
  },
  r: {
    sum: 'x <- scan(file("stdin"), quiet = TRUE)\ncat(sum(x), "\\n", sep = "")\n',
    runtimeError: { source: 'cat("before\\n")\nstop("boom")\n', exitCode: 1, stderr: /Error: boom/ },
  },
  bash: {
    sum: 'read -r a b\necho $((a + b))\n',
    runtimeError: { source: 'echo before\nno_such_command_here\n', exitCode: 127, stderr: /no_such_command_here: command not found/ },
  },
};

async function loadSandbox(): Promise<{ sandbox?: Sandbox; why?: string }> {
  try {
    const { createSandbox } = await import('../../src/sandbox/index.js');
    return { sandbox: createSandbox({ instanceId: `images-test-${process.pid}` }) };
  } catch (err) {
    return { why: `the sandbox engine cannot start here: ${(err as Error).message}` };
  }
}

const runtimes = loadRuntimes();
const skipBuild = whyNoLayerBuilds();
const engine = skipBuild ? { why: skipBuild } : await loadSandbox();
const scratch = scratchDir('languages');
const store = openImageStore(dataDirFromEnv());
const images = new Map<string, BuiltImage>();
let rootCount = 0;

/** Mounts a fresh root for `image` (overlay, tmpfs upper), calls `use`, and unmounts it. */
async function withRoot<T>(image: BuiltImage, use: (rootDir: string) => Promise<T>): Promise<T> {
  const dir = join(scratch.dir, `root-${rootCount++}`);
  const rw = join(dir, 'rw');
  const merged = join(dir, 'merged');
  mkdirSync(rw, { recursive: true });
  mkdirSync(merged);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m,mode=0755', 'cellblock-test-rw', rw]);
  try {
    mkdirSync(join(rw, 'upper'));
    mkdirSync(join(rw, 'work'));
    execFileSync('mount', ['-t', 'overlay', 'cellblock-test-root', '-o', `lowerdir=${overlayLowerdir(image)},upperdir=${rw}/upper,workdir=${rw}/work`, merged]);
    try {
      return await use(merged);
    } finally {
      execFileSync('umount', [merged]);
    }
  } finally {
    execFileSync('umount', [rw]);
  }
}

interface Outcome {
  compile?: RunResult;
  run?: RunResult;
}

/** Compiles (when the runtime does) and runs `source` in one work dir, each step in a fresh root,
 * each stage's argv and env expanded as the executor expands them (with the stage's limits). */
async function submit(runtime: Runtime, source: string, stdin = '', argv?: string[], files: Record<string, string> = {}, runLimits: Partial<Limits> = {}): Promise<Outcome> {
  const sandbox = engine.sandbox!;
  const image = images.get(runtime.image)!;
  const work = join(scratch.dir, `work-${rootCount}`);
  mkdirSync(work);
  writeFileSync(join(work, runtime.sourceFile), source);
  for (const [name, content] of Object.entries(files)) writeFileSync(join(work, name), content);
  const fileNames = [runtime.sourceFile, ...Object.keys(files)];
  const outcome: Outcome = {};
  if (runtime.compile && !argv) {
    const limits = effectiveLimits(runtime.defaultLimits, runtime.maxLimits, runtime.compile.limits);
    outcome.compile = await withRoot(image, (rootDir) =>
      sandbox.run({ rootDir, workDirHostPath: work, argv: compileArgv(runtime.compile!, fileNames, [], limits), env: stageEnv(runtime.env, limits), limits }),
    );
    if (outcome.compile.verdict !== 'ok') return outcome;
  }
  const limits = effectiveLimits(runtime.defaultLimits, runtime.maxLimits, runLimits);
  outcome.run = await withRoot(image, (rootDir) =>
    sandbox.run({ rootDir, workDirHostPath: work, argv: argv ?? runArgv(runtime.run.argv, [runtime.sourceFile], [], limits), env: stageEnv(runtime.env, limits), stdin, limits }),
  );
  return outcome;
}

/** The run's result, failing with everything the engine said when a step did not go as `want`. */
function expectRun(outcome: Outcome, want: Verdict): RunResult {
  const show = (r?: RunResult): string =>
    r ? `${r.verdict} exit=${r.exitCode} signal=${r.signalName}\nstdout: ${r.stdout}\nstderr: ${r.stderr}${r.error ? `\nerror: ${JSON.stringify(r.error)}` : ''}` : '(none)';
  assert.ok(outcome.compile === undefined || outcome.compile.verdict === 'ok', `compile failed: ${show(outcome.compile)}`);
  assert.equal(outcome.run?.verdict, want, `run: ${show(outcome.run)}`);
  return outcome.run!;
}

describe('runtimes on their images, through the sandbox engine', { skip: engine.why }, () => {
  before(async () => {
    const names = [...new Set(runtimes.map((r) => r.image))];
    const outcomes = await buildImages(names, {
      store,
      definitionsDir: defaultDefinitionsDir(),
      onProgress: (p) => {
        if (p.phase !== 'output') process.stderr.write(`# images: ${p.image}: ${p.message}\n`);
      },
    });
    for (const o of outcomes) images.set(o.image.name, o.image);
  });

  after(async () => {
    await engine.sandbox?.close();
    assert.deepEqual(mountsUnder(scratch.dir), [], 'every test root is unmounted');
    scratch.remove();
  });

  it('fail a layer whose package does not exist with apt\'s message, storing nothing', async () => {
    // The real base (same definition, so the same stored layer) with a broken layer on top.
    const defs = definitionsDir(scratch.dir, {
      base: JSON.parse(readFileSync(join(defaultDefinitionsDir(), 'base.json'), 'utf8')),
      broken: { name: 'broken', from: 'base', build: { kind: 'chroot', packages: ['cellblock-no-such-package'] } },
    });
    const layersBefore = store.layers().sort();
    await assert.rejects(buildImages(['broken'], { store, definitionsDir: defs }), (err: unknown) => {
      assert.ok(err instanceof ImageBuildError, String(err));
      assert.match(err.detail, /Unable to locate package cellblock-no-such-package/);
      return true;
    });
    assert.equal(store.get('broken'), undefined);
    assert.deepEqual(store.layers().sort(), layersBefore);
    assert.deepEqual(mountsUnder(store.dataDir), []);
  });

  it('store the Debian base once under every Debian image', () => {
    const debian = [...images.values()].filter((i) => i.name !== 'busybox');
    assert.ok(debian.length >= 2);
    const bases = new Set(debian.map((i) => i.layerPaths[0]));
    assert.equal(bases.size, 1, `one base layer, got ${[...bases].join(', ')}`);
  });

  for (const runtime of runtimes) {
    const cases = CASES[runtime.id];
    describe(`${runtime.id} ${runtime.version} on image ${runtime.image}`, () => {
      it('has a case table in this test', () => assert.ok(cases, `add ${runtime.id} to CASES`));

      if (runtime.versionArgv) {
        it('runs the toolchain version the runtime names', async () => {
          const run = expectRun(await submit(runtime, '', '', runtime.versionArgv), 'ok');
          assert.ok(`${run.stdout}${run.stderr}`.includes(runtime.version), `"${runtime.version}" not in: ${run.stdout}${run.stderr}`);
        });
      }

      it('prints hello world', async () => {
        const outcome = await submit(runtime, runtime.helloWorld.source);
        const run = expectRun(outcome, 'ok');
        // A clean compile says nothing: no warnings, and no notes from the toolchain's setup
        // (e.g. a class-data-sharing archive the JVM could not use).
        if (outcome.compile) assert.equal(`${outcome.compile.stdout}${outcome.compile.stderr}`, '');
        assert.equal(run.stdout.toString(), runtime.helloWorld.stdout);
        assert.equal(run.exitCode, 0);
      });

      // A variant's stages on the same image: hello world and stdin, as the runtime's own.
      for (const name of Object.keys(runtime.variants ?? {})) {
        it(`prints hello world and reads stdin by its variant ${name}`, async () => {
          const varied = variantOf(runtime, name)!;
          const outcome = await submit(varied, runtime.helloWorld.source);
          const run = expectRun(outcome, 'ok');
          // Nothing said beside the program's output (Java's launcher compiles without a word).
          assert.equal(`${outcome.compile?.stdout ?? ''}${outcome.compile?.stderr ?? ''}${run.stderr}`, '');
          assert.equal(run.stdout.toString(), runtime.helloWorld.stdout);
          assert.equal(expectRun(await submit(varied, cases!.sum, '40 2\n'), 'ok').stdout.toString(), '42\n');
        });
      }

      const minLimits = runtime.minLimits;
      if (minLimits) {
        it('starts at its minLimits, and not below them', async () => {
          const atMinimum = expectRun(await submit(runtime, runtime.helloWorld.source, '', undefined, {}, minLimits), 'ok');
          assert.equal(atMinimum.stdout.toString(), runtime.helloWorld.stdout);
          for (const [name, least] of Object.entries(minLimits) as [keyof Limits, number][]) {
            const below = await submit(runtime, runtime.helloWorld.source, '', undefined, {}, { ...minLimits, [name]: least - 1 });
            assert.notEqual(below.run?.verdict, 'ok', `${name} ${least - 1}: the minimum is not needed`);
          }
        });
      }

      it('reads stdin', async () => {
        const run = expectRun(await submit(runtime, cases!.sum, '40 2\n'), 'ok');
        assert.equal(run.stdout.toString(), '42\n');
      });

      if (runtime.compile) {
        it("returns the compiler's message for a compile error", async () => {
          const { compile, run } = await submit(runtime, cases!.compileError!.source);
          assert.ok(compile, 'a compile step ran');
          assert.notEqual(compile.verdict, 'ok', 'the compiler rejected the source');
          assert.equal(run, undefined, 'nothing ran after the failed compile');
          const message = `${compile.stdout}${compile.stderr}`;
          assert.match(message, cases!.compileError!.message);
          assert.match(message, new RegExp(runtime.sourceFile.replace('.', '\\.')));
        });

        it('compiles its sources only: a header and a data file beside them stay in the work dir', async () => {
          const { source, files } = cases!.withFiles!;
          const run = expectRun(await submit(runtime, source, '', undefined, files), 'ok');
          assert.equal(run.stdout.toString(), 'data line\n');
        });
      }

      const heap = cases?.heap;
      if (heap) {
        // Its own stages and its variants' (Java's source launcher compiles in the run's JVM).
        for (const name of [undefined, ...Object.keys(runtime.variants ?? {})]) {
          const varied = name === undefined ? runtime : variantOf(runtime, name)!;
          const how = name === undefined ? '' : ` by its variant ${name}`;
          it(`is told its memory limit${how}: garbage of small live data fits, live data above the limit does not`, async () => {
            // CPU time to spare: collecting 3 GB of garbage in a small heap takes a second or so.
            const limits = (memoryBytes: number): Partial<Limits> => ({ memoryBytes, cpuTimeMs: 10_000 });
            for (const fit of heap.fits) {
              for (let run = 0; run < (fit.runs ?? 1); run++) {
                const { metrics } = expectRun(await submit(varied, fit.source, '', undefined, {}, limits(fit.memoryBytes)), 'ok');
                process.stderr.write(`# ${runtime.id}${how}: ${fit.what} at ${fit.memoryBytes / MiB} MiB: peak ${(metrics.peakMemoryBytes / MiB).toFixed(1)} MiB, ${metrics.cpuTimeMs.toFixed(0)} ms of CPU\n`);
              }
            }
            const { exceeds } = heap;
            const run = expectRun(await submit(varied, exceeds.source, '', undefined, {}, limits(exceeds.memoryBytes)), exceeds.verdict);
            if (exceeds.stderr) assert.match(run.stderr.toString(), exceeds.stderr);
          });
        }
      }

      const threads = cases?.threads;
      if (threads) {
        it('runs as many threads at once as its cpuCores', async () => {
          for (const cpuCores of [0.5, 1, runtime.maxLimits.cpuCores]) {
            const run = expectRun(await submit(runtime, threads.source, '', undefined, {}, { cpuCores }), 'ok');
            assert.equal(run.stdout.toString(), threads.stdout(cpuCores), `cpuCores ${cpuCores}`);
          }
        });
      }

      for (const feature of cases?.features ?? []) {
        it(`runs a program using ${feature.what}`, async () => {
          const outcome = await submit(runtime, feature.source);
          const run = expectRun(outcome, 'ok');
          if (outcome.compile) assert.equal(`${outcome.compile.stdout}${outcome.compile.stderr}`, '');
          assert.equal(`${run.stdout}${run.stderr}`, feature.stdout);
        });
      }

      const stack = cases?.stack;
      if (stack) {
        for (const name of [undefined, ...Object.keys(runtime.variants ?? {})]) {
          const varied = name === undefined ? runtime : variantOf(runtime, name)!;
          const how = name === undefined ? '' : ` by its variant ${name}`;
          it(`is told its stack limit${how}: a recursion 10^5 deep at the default, deeper only with a larger stackBytes`, async () => {
            const run = expectRun(await submit(varied, stack.source(100_000)), 'ok');
            assert.equal(run.stdout.toString(), '100000\n');
            const deeper = await submit(varied, stack.source(stack.deeper));
            assert.equal(deeper.compile?.verdict ?? 'ok', 'ok');
            // The runtime's own stack overflow error, not a crash or the memory limit.
            assert.equal(deeper.run?.verdict, 'runtime_error', `${stack.deeper} deep at the default stackBytes: ${deeper.run?.verdict}\n${deeper.run?.stderr}`);
            assert.match(deeper.run!.stderr.toString(), /StackOverflowError|Maximum call stack size exceeded|stack level too deep/);
            const largest = { stackBytes: runtime.maxLimits.stackBytes, cpuTimeMs: 10_000 };
            const { stdout, metrics } = expectRun(await submit(varied, stack.source(stack.deeper), '', undefined, {}, largest), 'ok');
            assert.equal(stdout.toString(), `${stack.deeper}\n`);
            process.stderr.write(`# ${runtime.id}${how}: ${stack.deeper} deep at stackBytes ${largest.stackBytes / MiB} MiB: peak ${(metrics.peakMemoryBytes / MiB).toFixed(1)} MiB\n`);
          });
        }
      }

      it('returns stderr and the exit status of a runtime error', async () => {
        const want = cases!.runtimeError;
        // An uncaught C++ exception ends in abort(): a signal, not an exit status.
        const run = expectRun(await submit(runtime, want.source), want.exitCode < 0 ? 'signaled' : 'runtime_error');
        if (want.exitCode >= 0) assert.equal(run.exitCode, want.exitCode);
        else assert.equal(run.signalName, 'SIGABRT');
        assert.match(run.stderr.toString(), want.stderr);
      });
    });
  }
});
