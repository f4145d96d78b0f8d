import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClusterState } from '../../scripts/local-cluster/cluster-state.js';

/**
 * The state file of the local cluster in `dir` as the scripts left it, or
 * null when there is none or it cannot be read: unlike the scripts' own
 * readState it never throws, so that a test's cleanup always gets to kill the
 * nodes it lists.
 */
export async function readClusterState(dir: string): Promise<ClusterState | null> {
  try {
    return JSON.parse(await readFile(join(dir, 'cluster.json'), 'utf8')) as ClusterState;
  } catch {
    return null;
  }
}
