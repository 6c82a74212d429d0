// Output comparison (docs/theory-of-operation.md): equal after removing trailing whitespace from
// every line and trailing empty lines from the end, Judge0's rule.
function normalize(text: string): string {
  const lines = text.split('\n').map((line) => line.replace(/\s+$/, ''));
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines.join('\n');
}

export function outputMatches(stdout: Buffer | string, expectedOutput: string): boolean {
  return normalize(typeof stdout === 'string' ? stdout : stdout.toString('utf8')) === normalize(expectedOutput);
}
