/** `restart <node|leader>`: starts a node again with the same flags and data directory (stopping it first if it runs). */
import { LOOPBACK, requireState, withPid, writeState } from '../cluster-state.js';
import { queryCluster } from '../cluster-status.js';
import { ClusterScriptError } from '../errors.js';
import { launchNodes } from '../node-launch.js';
import { runningPid, stopNode } from '../node-process.js';
import { type ClusterLayout, displayPath } from '../paths.js';
import { pollUntil } from '../poll.js';
import { busyPorts } from '../ports.js';
import { resolveTarget } from './target.js';

/** How long to wait for the restarted node to hear from a leader before reporting anyway. */
const FOLLOW_TIMEOUT_MS = 30_000;

export async function restart(layout: ClusterLayout, target: string): Promise<void> {
  let state = await requireState(layout);
  const node = resolveTarget(state, await queryCluster(state), target);
  const pid = await runningPid(node);
  if (pid !== null) {
    const outcome = await stopNode(pid, node);
    console.log(`Stopped ${node.id} (pid ${pid})${outcome === 'killed' ? ' with SIGKILL after SIGTERM timed out' : ''}.`);
  }
  state = withPid(state, node.id, null);
  await writeState(layout, state);

  const port = Number(node.address.split(':')[1]);
  if ((await busyPorts(LOOPBACK, [port])).length > 0) {
    throw new ClusterScriptError(`port ${port} of ${node.id} is in use by another program; ${node.id} was not started`);
  }
  state = await launchNodes(layout, state, [node.id]);
  const restarted = state.nodes.find((candidate) => candidate.id === node.id);
  const following = await pollUntil(
    async () => {
      const entry = (await queryCluster(state)).nodes.find((candidate) => candidate.node.id === node.id);
      return entry?.state === 'up' && entry.status.leader !== null ? entry.status : undefined;
    },
    { timeoutMs: FOLLOW_TIMEOUT_MS, intervalMs: 200 },
  );
  const where =
    following === undefined
      ? 'it has not heard from a leader yet'
      : `term ${following.term}, leader ${following.leader}, applied ${following.appliedIndex} of commit ${following.commitIndex}`;
  console.log(`Started ${node.id} again (pid ${restarted?.pid}, data ${displayPath(node.dataDir)}): ${where}.`);
}
