/** `status`: one row per node (a dead node shows as down), and who leads. */
import { requireState } from '../cluster-state.js';
import { queryCluster } from '../cluster-status.js';
import type { ClusterLayout } from '../paths.js';
import { statusJson, statusTable } from '../status-output.js';

export async function status(layout: ClusterLayout, { json }: { readonly json: boolean }): Promise<void> {
  const report = await queryCluster(await requireState(layout));
  if (json) console.log(JSON.stringify(statusJson(layout.dir, report)));
  else for (const line of statusTable(report)) console.log(line);
}
