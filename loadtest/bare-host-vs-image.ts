// Why the bare side runs the image's own files (loadtest/service/bare.ts): python hello world run
// bare by the C runner with the host's /usr/bin/python3 and with the python image's (chrooted in
// its layers), alternating, RUNS runs each per round. Both are the same Debian build; what differs
// is what each reads at start-up (the host's site-packages may hold .pth files that import
// modules). Not a test: figures only.
//
//   node --import tsx loadtest/bare-host-vs-image.ts [--runs 200] [--rounds 3]
//
// Needs root and the python image built (cellblock images build python).
import { parseArgs } from 'node:util';
import { loadRuntimes } from '../src/images/runtimes.js';
import { createBareRunner } from './service/bare.js';
import { runInterruptible } from './service/interrupt.js';
import type { BareProgram } from './service/scenarios.js';
import { distribution } from './service/stats.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '200' }, rounds: { type: 'string', default: '3' } } });
const python = loadRuntimes().find((runtime) => runtime.id === 'python');
if (!python) throw new Error('no python runtime in images/runtimes');

const hello = (image: string | undefined): BareProgram => ({
  ...(image ? { image } : {}),
  files: { [python.sourceFile]: python.helloWorld.source },
  commands: [[python.run.argv[0]!, python.sourceFile]],
  env: python.env,
});
const sides: [string, BareProgram][] = [
  ['host /usr/bin/python3', hello(undefined)],
  [`image ${python.image}`, hello(python.image)],
];

const runner = await createBareRunner();
await runInterruptible('bare-host-vs-image', async () => {
  console.log(`# python hello bare, ${values.runs} runs per side and round, back to back; p50 ms`);
  for (let round = 1; round <= Number(values.rounds); round++) {
    const figures: string[] = [];
    for (const [name, program] of sides) {
      const run = await runner.run(program, { runs: Number(values.runs), loops: 1, gapMs: 0 });
      if (run.failures > 0) throw new Error(`${name}: ${run.failures} runs failed`);
      figures.push(`${name} ${distribution(run.latenciesMs).p50.toFixed(2)}`);
    }
    console.log(`round ${round}: ${figures.join('   ')}`);
  }
}, async () => {
  runner.close();
});
