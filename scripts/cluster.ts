/**
 * A local raftlog cluster for trying things out: `npm start`, `npm run status`,
 * `npm run kill -- leader`, `npm run restart -- n1`, `npm run stop`,
 * `npm run add-node`, `npm run remove-node -- n2`, `npm run rolling-restart`.
 * Run `tsx scripts/cluster.ts --help` for everything.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { MAX_NODES, MIN_NODES } from './local-cluster/cluster-state.js';
import { kill } from './local-cluster/commands/kill.js';
import { addNode, removeNode } from './local-cluster/commands/members.js';
import { restart } from './local-cluster/commands/restart.js';
import { rollingRestart } from './local-cluster/commands/rolling-restart.js';
import { DEFAULT_BASE_PORT, DEFAULT_LOG_LEVEL, DEFAULT_NODES, start } from './local-cluster/commands/start.js';
import { status } from './local-cluster/commands/status.js';
import { stop } from './local-cluster/commands/stop.js';
import { ClusterScriptError } from './local-cluster/errors.js';
import { STOP_GRACE_MS } from './local-cluster/node-process.js';
import { clusterLayout, DEFAULT_CLUSTER_DIR, displayPath, STATE_FILE_NAME } from './local-cluster/paths.js';

const HELP_AFTER = `
Everything lives in one directory (--dir, default ${displayPath(DEFAULT_CLUSTER_DIR)}/ in the project):
  ${STATE_FILE_NAME}   node ids, addresses, pids, data directories, log files and flags
  data/<id>/     each node's Raft log
  <id>.log       each node's output (JSON lines)

start
  Starts n1..nN on 127.0.0.1, ports --base-port, --base-port+1, ... (the CLI's
  default endpoints are 127.0.0.1:7001-7003), each node a detached process, and
  returns once they have elected a leader; the nodes keep running.
  Already running: says so, prints the status and starts nothing.
  Stopped: resumes the same cluster with its data (the node count is the old one).
  A different --nodes than the stopped cluster's: refuses; --fresh wipes the
  directory's data and logs first (it refuses while the cluster runs).
  A port in use: refuses before starting anything. A node that fails to start
  stops the ones started with it.
  --tls: mutual TLS (README, "TLS"): a throwaway CA signs a certificate per node
  and one for clients in <dir>/tls/ (openssl needed); the other commands use
  the client certificate, and \`npm start\` prints how to point the CLI at it.
kill <node|leader>     SIGKILL, as a crash would, and waits until it has exited
restart <node|leader>  starts the node again with its flags and data (stops it first if it runs)
rolling-restart        restarts every node in turn, followers first and the leader last (SIGTERM:
                       it hands leadership over first), each back and caught up before the next;
                       a few writers keep writing meanwhile and each step says what they saw
                       (--no-writes: none)
stop                   SIGTERM to every node, SIGKILL after ${STOP_GRACE_MS / 1000} s; the data stays
add-node               starts the next node (one past the highest id ever used, on the port
                       that goes with it) with an empty data dir and --join, adds it as a
                       learner, waits until it has caught up and promotes it to voter
                       (--learner: leave it a learner)
remove-node <node>     removes it from the configuration (refused if the others would lose
                       their quorum), waits for its process to exit (a removed node leaves by
                       itself), deletes its data dir and drops it from ${STATE_FILE_NAME}

Replacing a node whose disk died (here n3):
  npm run kill -- n3; rm -rf .cluster/data/n3
  npm run remove-node -- n3
  npm run add-node

Pids are checked before any signal: a pid counts as a node only while its
command line is src/node/main.ts with that node's --id and --data.

Examples:
  npm start                      3 nodes on 7001-7003
  npm start -- --nodes 5         5 nodes on 7001-7005
  npm run status
  npm run kill -- leader
  npm run restart -- n1
  npm run rolling-restart
  npm run stop
  npm run add-node
  npm run remove-node -- n2
  npm run cluster -- status --json`;

function integerIn(min: number, max: number): (text: string) => number {
  return (text) => {
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < min || value > max) throw new InvalidArgumentError(`expected an integer in ${min}..${max}`);
    return value;
  };
}

/** pino's levels: a node given another one exits at startup. */
const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

interface DirOption {
  readonly dir: string;
}

function program(): Command {
  const root = new Command('cluster')
    .description('Run a local raftlog cluster: one process per node on 127.0.0.1.')
    .addHelpText('after', HELP_AFTER)
    .showSuggestionAfterError(true)
    .exitOverride();
  const withDir = (command: Command) => command.option('--dir <dir>', `the cluster's directory`, DEFAULT_CLUSTER_DIR).exitOverride();

  withDir(root.command('start'))
    .description(`start a cluster of ${DEFAULT_NODES} nodes (or --nodes), or resume the stopped one`)
    .option(
      '--nodes <n>',
      `number of nodes, ${MIN_NODES}..${MAX_NODES} (default ${DEFAULT_NODES}, or the stopped cluster's)`,
      integerIn(MIN_NODES, MAX_NODES),
    )
    .option('--base-port <port>', `port of n1; n2 gets the next one, and so on (default ${DEFAULT_BASE_PORT})`, integerIn(1024, 65535 - MAX_NODES))
    .option('--fresh', 'wipe the data and logs of the stopped cluster in --dir first')
    .option('--tls', 'mutual TLS: a throwaway CA and a certificate per node in --dir/tls (a new cluster only)')
    .addOption(
      new Option('--log-level <level>', `the nodes' --log-level (default ${DEFAULT_LOG_LEVEL}, or the stopped cluster's)`).choices(LOG_LEVELS),
    )
    .action(async (options: DirOption & { nodes?: number; basePort?: number; fresh?: boolean; logLevel?: string; tls?: boolean }) => {
      await start(clusterLayout(options.dir), {
        nodes: options.nodes,
        basePort: options.basePort,
        logLevel: options.logLevel,
        fresh: options.fresh === true,
        tls: options.tls === true,
      });
    });
  withDir(root.command('status'))
    .description('one row per node: pid, role, term, leader, commit and applied index, first index of its log, latest snapshot, digest')
    .option('--json', 'one JSON object: the leader and every node')
    .action(async (options: DirOption & { json?: boolean }) => status(clusterLayout(options.dir), { json: options.json === true }));
  withDir(root.command('kill'))
    .description('SIGKILL one node (an id like n2, or "leader")')
    .argument('<node>', 'node id, or "leader"')
    .action(async (node: string, options: DirOption) => kill(clusterLayout(options.dir), node));
  withDir(root.command('restart'))
    .description('start a node again with the same flags and data directory')
    .argument('<node>', 'node id, or "leader"')
    .action(async (node: string, options: DirOption) => restart(clusterLayout(options.dir), node));
  withDir(root.command('rolling-restart'))
    .description('restart every node in turn (followers first, the leader last), each back and caught up before the next')
    .option('--no-writes', 'do not write while restarting (by default a few writers show what clients see)')
    .action(async (options: DirOption & { writes: boolean }) => rollingRestart(clusterLayout(options.dir), { writes: options.writes }));
  withDir(root.command('add-node'))
    .description('start the next node, add it as a learner, and promote it once it has caught up')
    .option('--learner', 'leave it a learner (promote it later with `npx raftlog member promote`)')
    .action(async (options: DirOption & { learner?: boolean }) => addNode(clusterLayout(options.dir), { learner: options.learner === true }));
  withDir(root.command('remove-node'))
    .description('remove a node from the cluster, wait for it to exit, delete its data')
    .argument('<node>', 'node id')
    .action(async (node: string, options: DirOption) => removeNode(clusterLayout(options.dir), node));
  withDir(root.command('stop'))
    .description('stop every node (SIGTERM, then SIGKILL); the data stays')
    .action(async (options: DirOption) => stop(clusterLayout(options.dir)));
  return root;
}

// `npm run status | head` closes our stdout early; that is no reason to crash halfway through a command.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
});

try {
  await program().parseAsync(process.argv.slice(2), { from: 'user' });
} catch (error) {
  if (error instanceof CommanderError) {
    // commander has printed the help or the usage error already.
    process.exitCode = error.code === 'commander.helpDisplayed' ? 0 : 2;
  } else if (error instanceof ClusterScriptError) {
    console.error(`error: ${error.message}`);
    process.exitCode = 1;
  } else {
    throw error;
  }
}
