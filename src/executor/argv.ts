// Expansion of a runtime's argv templates (src/images/types.ts, Runtime): `{files}` becomes the
// submitted file names, `{args}` the job's arguments; a run argv without `{args}` gets them
// appended. A placeholder stands alone as one argv element and expands to zero or more elements.
export const FILES_PLACEHOLDER = '{files}';
export const ARGS_PLACEHOLDER = '{args}';

function expand(template: string[], values: Record<string, string[]>): string[] {
  return template.flatMap((part) => values[part] ?? [part]);
}

export function compileArgv(template: string[], fileNames: string[], args: string[]): string[] {
  return expand(template, { [FILES_PLACEHOLDER]: fileNames, [ARGS_PLACEHOLDER]: args });
}

export function runArgv(template: string[], fileNames: string[], args: string[]): string[] {
  const argv = expand(template, { [FILES_PLACEHOLDER]: fileNames, [ARGS_PLACEHOLDER]: args });
  return template.includes(ARGS_PLACEHOLDER) ? argv : [...argv, ...args];
}
