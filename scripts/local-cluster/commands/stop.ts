/** `stop`: SIGTERM every node, SIGKILL those still there after the grace period; the data stays. */
import { readState, withPid, writeState } from '../cluster-state.js';
import { npmCommand } from '../next-steps.js';
import { runningPid, STOP_GRACE_MS, stopNode } from '../node-process.js';
import { type ClusterLayout, displayPath } from '../paths.js';

export async function stop(layout: ClusterLayout): Promise<void> {
  let state = await readState(layout);
  if (state === null) {
    console.log(`No local cluster in ${displayPath(layout.dir)}; nothing to stop.`);
    return;
  }
  const outcomes = await Promise.all(
    state.nodes.map(async (node) => {
      const pid = await runningPid(node);
      const outcome = pid === null ? 'not-running' : await stopNode(pid, node);
      return { node, pid, outcome };
    }),
  );
  for (const { node, pid, outcome } of outcomes) {
    if (outcome === 'not-running') console.log(`  ${node.id}  was not running`);
    else if (outcome === 'stopped') console.log(`  ${node.id}  stopped (pid ${pid})`);
    else console.log(`  ${node.id}  killed (pid ${pid}): still running ${STOP_GRACE_MS / 1000} s after SIGTERM`);
    state = withPid(state, node.id, null);
  }
  await writeState(layout, state);
  console.log(
    `Stopped. The data stays in ${displayPath(layout.dataRoot)}: \`${npmCommand(layout, 'start')}\` resumes the cluster, ` +
      `\`${npmCommand(layout, 'start', '--fresh')}\` starts a new one.`,
  );
}
