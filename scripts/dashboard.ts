/**
 * `npm run dashboard`: the live dashboard (src/dashboard) of the local
 * cluster, its endpoints read from the cluster's state file as `npm run
 * status` reads them. Nodes added later with `npm run add-node` show up by
 * themselves (the dashboard follows the configuration).
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { DEFAULT_LISTEN, DEFAULT_POLL_INTERVAL_MS, parseListen } from '../src/dashboard/listen.js';
import { startDashboard } from '../src/dashboard/server.js';
import { requireState } from './local-cluster/cluster-state.js';
import { clientTls } from './local-cluster/cluster-tls.js';
import { ClusterScriptError } from './local-cluster/errors.js';
import { clusterLayout, DEFAULT_CLUSTER_DIR, displayPath } from './local-cluster/paths.js';

function listenAddress(text: string): string {
  try {
    parseListen(text);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
  return text;
}

function interval(text: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 100) throw new InvalidArgumentError('expected a whole number of milliseconds, at least 100');
  return value;
}

const program = new Command('dashboard')
  .description('serve a live web page of the local cluster (every node and consumer on the log, a timeline of events) until Ctrl-C')
  .option('--dir <dir>', `the cluster's directory`, DEFAULT_CLUSTER_DIR)
  .option('--listen <host:port>', 'where to serve the page; port 0 picks a free one', listenAddress, DEFAULT_LISTEN)
  .option('--interval <ms>', 'time between two polls of the nodes', interval, DEFAULT_POLL_INTERVAL_MS)
  .exitOverride()
  .action(async (options: { dir: string; listen: string; interval: number }) => {
    const layout = clusterLayout(options.dir);
    const state = await requireState(layout);
    const endpoints = state.nodes.map((node) => `${node.id}=${node.address}`);
    const dashboard = await startDashboard({ endpoints, listen: options.listen, intervalMs: options.interval, ...clientTls(state) });
    console.log(`dashboard of the cluster in ${displayPath(layout.dir)} at ${dashboard.url} (nodes ${endpoints.join(', ')}; Ctrl-C stops it)`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await dashboard.close();
  });

try {
  await program.parseAsync(process.argv.slice(2), { from: 'user' });
} catch (error) {
  if (error instanceof CommanderError) {
    process.exitCode = error.code === 'commander.helpDisplayed' ? 0 : 2;
  } else if (error instanceof ClusterScriptError || (error instanceof Error && error.message.startsWith('dashboard:'))) {
    console.error(`error: ${error.message}`);
    process.exitCode = 1;
  } else {
    throw error;
  }
}
