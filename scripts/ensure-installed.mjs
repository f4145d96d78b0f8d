#!/usr/bin/env node
// First step of `npm start`: on a fresh clone nothing is installed yet, not
// even tsx to run the TypeScript scripts, so this one is plain JavaScript.
// It runs `npm ci` only when a dependency is missing: npm ci deletes
// node_modules first, which is not something to do on a working install.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const MIN_NODE = [20, 15];

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < MIN_NODE[0] || (major === MIN_NODE[0] && minor < MIN_NODE[1])) {
  console.error(`raftlog needs Node.js ${MIN_NODE.join('.')} or newer; this is ${process.version}.`);
  process.exit(1);
}

const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const declared = Object.keys({ ...manifest.dependencies, ...manifest.devDependencies });
const missing = [
  ...declared.filter((name) => !existsSync(join(root, 'node_modules', name, 'package.json'))),
  ...(existsSync(join(root, 'node_modules', '.bin', 'tsx')) ? [] : ['node_modules/.bin/tsx']),
];

if (missing.length > 0) {
  console.log(
    `Installing the dependencies (npm ci): ${missing.length === declared.length + 1 ? 'node_modules is missing' : `missing ${missing.join(', ')}`}`,
  );
  // Under `npm start`, npm_execpath is the npm that runs us: use the same one.
  const npmCli = process.env.npm_execpath;
  const [command, args] =
    npmCli !== undefined && npmCli.endsWith('.js') ? [process.execPath, [npmCli, 'ci']] : [process.platform === 'win32' ? 'npm.cmd' : 'npm', ['ci']];
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  if (result.status !== 0) {
    console.error(`npm ci failed (${result.error?.message ?? `exit code ${result.status}`}); fix that and run npm start again.`);
    process.exit(1);
  }
}
