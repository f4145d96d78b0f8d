/** Where things are: the project, the node's entry point, and a cluster directory's layout. */
import { isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The node's entry point. Its absolute path in a process's command line is how we recognise our nodes. */
export const NODE_MAIN = join(PROJECT_ROOT, 'src', 'node', 'main.ts');

/** `.cluster/` in the project root, already gitignored. */
export const DEFAULT_CLUSTER_DIR = join(PROJECT_ROOT, '.cluster');

export const STATE_FILE_NAME = 'cluster.json';

/** Where the user typed the command: npm runs scripts in the project root and passes the original directory as INIT_CWD. */
const USER_CWD = process.env.INIT_CWD ?? process.cwd();

export interface ClusterLayout {
  readonly dir: string;
  readonly stateFile: string;
  readonly dataRoot: string;
  dataDir(id: string): string;
  logFile(id: string): string;
}

export function clusterLayout(dir: string): ClusterLayout {
  const absolute = resolve(USER_CWD, dir);
  return {
    dir: absolute,
    stateFile: join(absolute, STATE_FILE_NAME),
    dataRoot: join(absolute, 'data'),
    dataDir: (id) => join(absolute, 'data', id),
    logFile: (id) => join(absolute, `${id}.log`),
  };
}

/** A path as short as it can be for the person reading it: relative to the working directory when inside it. */
export function displayPath(path: string): string {
  const inside = relative(USER_CWD, path);
  if (inside === '') return '.';
  return inside.startsWith('..') || isAbsolute(inside) ? path : inside;
}
