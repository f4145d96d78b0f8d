/**
 * `raftlog dashboard`: serves a live web page of the cluster (src/dashboard)
 * until interrupted.
 */
import { DEFAULT_LISTEN, DEFAULT_POLL_INTERVAL_MS, isLoopback, parseListen } from '../../dashboard/listen.js';
import { wholeNumber } from '../arguments.js';
import type { CliCommand } from '../context.js';
import { UsageError } from '../exit-codes.js';

const HELP_AFTER = `
The page shows, live (pushed by the server about once a second):
  - every node on one axis of log positions: the compacted part of its log, the
    first index it keeps, its snapshot, applied, commit and last index; on each
    follower the match index the leader tracks for it
  - each node's role, term, the leader it knows and its state digest; a node that
    does not answer is shown DOWN with its last known values, greyed
  - the durable consumers on the same axis, with their lag behind the commit index
  - a timeline of elections, leader changes, snapshots, membership changes and
    nodes going down and coming back
Members that the cluster's configuration names but --endpoints does not (a node
added later) are found and shown too. The page has no login: keep --listen on a
loopback address unless the network is trusted.

Examples:
  raftlog dashboard                                   http://127.0.0.1:${parseListen(DEFAULT_LISTEN).port}/ for the default endpoints
  raftlog --endpoints 10.0.0.5:7001 dashboard --listen 127.0.0.1:9000`;

interface DashboardOptions {
  readonly listen?: string;
  readonly interval?: string;
}

export const dashboardCommand: CliCommand = {
  register(program, context) {
    program
      .command('dashboard')
      .description('serve a live web page of the cluster (nodes and consumers on the log, a timeline of events) until Ctrl-C or SIGTERM')
      .option('--listen <host:port>', `where to serve the page; port 0 picks a free one (default ${DEFAULT_LISTEN})`)
      .option('--interval <ms>', `time between two polls of the nodes, at least 100 (default ${DEFAULT_POLL_INTERVAL_MS})`)
      .addHelpText('after', HELP_AFTER)
      .action(async (options: DashboardOptions) => {
        const { endpoints, tls } = context.globals();
        const listen = options.listen ?? DEFAULT_LISTEN;
        let host: string;
        try {
          host = parseListen(listen).host;
        } catch (error) {
          throw new UsageError(`dashboard: --listen: ${(error as Error).message}`);
        }
        const intervalMs = options.interval === undefined ? DEFAULT_POLL_INTERVAL_MS : wholeNumber('dashboard: --interval', options.interval, 100);
        // Loaded only here: the other commands do not pay for the server at startup.
        const { startDashboard } = await import('../../dashboard/server.js');
        const dashboard = await startDashboard({ endpoints, listen, intervalMs, ...(tls === undefined ? {} : { tls }) });
        if (!isLoopback(host)) {
          context.io.err(
            `warning: the dashboard has no login, and ${host} is not a loopback address: whoever reaches ${dashboard.url} sees the cluster`,
          );
        }
        context.result(
          { command: 'dashboard', url: dashboard.url, endpoints: [...endpoints], intervalMs },
          `dashboard at ${dashboard.url} (polling ${endpoints.join(', ')} every ${intervalMs} ms; Ctrl-C stops it)`,
        );
        await new Promise<void>((resolve) => context.io.onInterrupt(resolve));
        await dashboard.close();
      });
  },
};
