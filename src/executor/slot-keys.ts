// The executor's pool keys. A pre-warmed container carries its stage's limits (cgroup limits,
// /tmp's size), and a start with other limits writes them on the job's path (a /tmp resize wakes
// init before the program). So a runtime's slots are kept per image and per stage: runs under the
// image's name, compiles under `<image>:compile` (no image name has a colon). /metrics shows the
// pool's figures under these keys.

export type Stage = 'run' | 'compile';

const COMPILE_SUFFIX = ':compile';

export function slotKey(image: string, stage: Stage): string {
  return stage === 'compile' ? `${image}${COMPILE_SUFFIX}` : image;
}

export function imageOfSlotKey(key: string): string {
  return key.endsWith(COMPILE_SUFFIX) ? key.slice(0, -COMPILE_SUFFIX.length) : key;
}
