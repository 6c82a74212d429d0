// Reading /proc/self/mountinfo: which mounts live at or under a directory of ours.
import { readFileSync } from 'node:fs';

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
function unescapeMountPath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Mount points (in this process's mount namespace) equal to `dir` or below it, deepest first,
 * so that unmounting them in order never finds a mount still holding a child. */
export function mountPointsUnder(dir: string, mountinfoPath = '/proc/self/mountinfo'): string[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const points: string[] = [];
  for (const line of readFileSync(mountinfoPath, 'utf8').split('\n')) {
    const fields = line.split(' ');
    if (fields.length < 5) continue;
    const point = unescapeMountPath(fields[4]!);
    if (point === dir || point.startsWith(prefix)) points.push(point);
  }
  // Deepest first; among equals (stacked mounts) the later line is the upper one.
  return points.map((p, i) => ({ p, i })).sort((a, b) => b.p.length - a.p.length || b.i - a.i).map((x) => x.p);
}
