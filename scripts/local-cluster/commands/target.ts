/** The node a command names: an id, or `leader` for whichever node leads right now. */
import { type ClusterState, findNode, type NodeRecord } from '../cluster-state.js';
import type { ClusterReport } from '../cluster-status.js';
import { ClusterScriptError } from '../errors.js';
import { statusTable } from '../status-output.js';

export const LEADER = 'leader';

export function resolveTarget(state: ClusterState, report: ClusterReport, target: string): NodeRecord {
  if (target !== LEADER) return findNode(state, target);
  if (report.leader === null) {
    throw new ClusterScriptError(`there is no leader right now:\n\n${statusTable(report).join('\n')}`);
  }
  return findNode(state, report.leader.id);
}
