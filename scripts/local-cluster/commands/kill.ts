/** `kill <node|leader>`: SIGKILL, as a crash would; the node's data stays for `restart`. */
import { requireState, withPid, writeState } from '../cluster-state.js';
import { type ClusterReport, queryCluster } from '../cluster-status.js';
import { ClusterScriptError } from '../errors.js';
import { npmCommand } from '../next-steps.js';
import { killNode, runningPid } from '../node-process.js';
import type { ClusterLayout } from '../paths.js';
import { pollUntil } from '../poll.js';
import { resolveTarget } from './target.js';

/** Long enough for several election rounds on a busy machine. */
const NEW_LEADER_TIMEOUT_MS = 30_000;

export async function kill(layout: ClusterLayout, target: string): Promise<void> {
  const state = await requireState(layout);
  const before = await queryCluster(state);
  const node = resolveTarget(state, before, target);
  const pid = await runningPid(node);
  if (pid === null || (await killNode(pid, node)) === 'not-running') {
    throw new ClusterScriptError(`${node.id} is not running; nothing to kill`);
  }
  const after = withPid(state, node.id, null);
  await writeState(layout, after);
  console.log(`Killed ${node.id} (pid ${pid}) with SIGKILL; it has exited.`);

  if (before.leader?.id === node.id) {
    const alive = before.nodes.filter((entry) => entry.state !== 'down' && entry.node.id !== node.id).length;
    const majority = Math.floor(state.nodes.length / 2) + 1;
    if (alive < majority) {
      console.log(`It was the leader; ${alive} of ${state.nodes.length} nodes are left, fewer than the ${majority} needed to elect another.`);
    } else {
      const report: ClusterReport | undefined = await pollUntil(
        async () => {
          const now = await queryCluster(after);
          return now.leader !== null && now.leader.id !== node.id ? now : undefined;
        },
        { timeoutMs: NEW_LEADER_TIMEOUT_MS, intervalMs: 200 },
      );
      console.log(
        report?.leader
          ? `It was the leader; the new leader is ${report.leader.id} (term ${report.leader.term}).`
          : `It was the leader; no new leader after ${NEW_LEADER_TIMEOUT_MS / 1000} s (see \`${npmCommand(layout, 'status')}\`).`,
      );
    }
  }
  console.log(`Start it again with \`${npmCommand(layout, 'restart', node.id)}\`.`);
}
