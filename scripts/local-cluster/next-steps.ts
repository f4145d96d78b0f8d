/** The commands to try next, spelled out with whatever options this cluster needs (its --dir, its endpoints). */
import { DEFAULT_ENDPOINTS, ENDPOINTS_ENV } from '../../src/cli/context.js';
import type { ClusterState } from './cluster-state.js';
import { cliTlsExports } from './cluster-tls.js';
import { type ClusterLayout, DEFAULT_CLUSTER_DIR, displayPath } from './paths.js';

export function endpointList(state: ClusterState): string {
  return state.nodes.map((node) => node.address).join(',');
}

/** `npm run NAME -- ARGS` plus `--dir DIR` when the cluster is not in the default directory. */
export function npmCommand(layout: ClusterLayout, name: string, ...args: string[]): string {
  const all = layout.dir === DEFAULT_CLUSTER_DIR ? args : [...args, '--dir', shellQuote(displayPath(layout.dir))];
  if (name === 'start') return all.length === 0 ? 'npm start' : `npm start -- ${all.join(' ')}`;
  return all.length === 0 ? `npm run ${name}` : `npm run ${name} -- ${all.join(' ')}`;
}

export function nextSteps(layout: ClusterLayout, state: ClusterState, exampleNode: string): string[] {
  const lines = ['Try:'];
  const endpoints = endpointList(state);
  if (endpoints !== DEFAULT_ENDPOINTS) {
    lines.push(`  # the CLI's default endpoints are ${DEFAULT_ENDPOINTS}; these nodes are:`, `  export ${ENDPOINTS_ENV}=${endpoints}`);
  }
  lines.push(...cliTlsExports(state));
  const steps: [command: string, why: string][] = [
    ['npx raftlog put greeting hello', ''],
    ['npx raftlog get greeting', ''],
    [npmCommand(layout, 'status'), 'every node: role, term, indexes, digest'],
    [npmCommand(layout, 'kill', 'leader'), 'SIGKILL the leader; another one takes over'],
    [npmCommand(layout, 'restart', exampleNode), 'start a node again; it catches up'],
    [npmCommand(layout, 'stop'), `stop every node; \`${npmCommand(layout, 'start')}\` resumes with the data`],
  ];
  const width = Math.max(...steps.map(([command]) => command.length));
  for (const [command, why] of steps) lines.push(`  ${why === '' ? command : `${command.padEnd(width)}   # ${why}`}`);
  return lines;
}

function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}
