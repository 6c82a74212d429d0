// Cgroups a test makes to stand for a service manager's (a unit's, a slice's): under our own
// `cellblock/` parent in each hierarchy, made with that parent where it is missing.
import path from 'node:path';
import { killCgroupPids, removeCgroupDirIfEmpty, removeCgroupTree } from '../../src/sandbox/cgroups/cgroupfs.js';

/** Kills what a test's cgroup tree still holds and removes it, then its parent (our `cellblock/`)
 * where nothing else is left in it: the test's mkdir made that parent when no service had one.
 * Reports rather than throws: a failure here must not hide the test's own. */
export async function removeTestCgroup(dir: string): Promise<void> {
  try {
    await removeCgroupTree(dir, killCgroupPids);
    removeCgroupDirIfEmpty(path.dirname(dir));
  } catch (error) {
    console.error(`could not remove the test cgroup ${dir}: ${(error as Error).message}`);
  }
}
