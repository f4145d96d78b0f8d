/**
 * The package as a user gets it: `npm pack` (which builds dist/), installed
 * into a fresh project with no network and without the development
 * dependencies, then its `raftlog` binary run: --help, and one node started
 * from the installed package that serves status, a put and a get.
 *
 * npm pack runs in a staging copy (package.json, the build's inputs and what
 * "files" lists), not in the working tree, so the test never writes dist/
 * there and two runs never share one.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectRun, type Run } from '../support/collect-run.js';
import { freePort } from '../support/process-cluster.js';
import { waitFor } from '../support/wait-for.js';
import { offlineProject, type PackedPackage } from './offline-install.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Build, pack and install on a loaded 2-core machine: seconds each, minutes at worst. */
const SETUP_LIMIT_MS = 240_000;
const RUN_LIMIT_MS = 30_000;

interface Manifest {
  readonly files?: readonly string[];
  readonly dependencies?: Readonly<Record<string, string>>;
  readonly devDependencies?: Readonly<Record<string, string>>;
}

interface PackReport {
  readonly filename: string;
  readonly files: readonly { readonly path: string }[];
}

let dir = '';
let app = '';
let packedFiles: string[] = [];
const children: ChildProcess[] = [];

function run(command: string, args: readonly string[], cwd: string, limitMs = RUN_LIMIT_MS): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.RAFTLOG_ENDPOINTS;
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return collectRun(child, `${command} ${args.join(' ')}`, limitMs);
}

async function succeed(command: string, args: readonly string[], cwd: string, limitMs = RUN_LIMIT_MS): Promise<string> {
  const result = await run(command, args, cwd, limitMs);
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(' ')} (in ${cwd}) exited with ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  }
  return result.stdout;
}

/** The installed binary, as `npx raftlog` would find it. */
const raftlog = (args: readonly string[]) => run(join(app, 'node_modules', '.bin', 'raftlog'), args, app);

/** package.json, what the build reads, and what "files" ships (dist/ aside: the build makes it). */
async function stage(into: string): Promise<void> {
  const manifest = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as Manifest;
  const fromFiles = (manifest.files ?? []).map((entry) => entry.replace(/\/$/, '')).filter((entry) => entry !== 'dist');
  const topLevel = (await readdir(ROOT)).filter((name) => /^(README|CHANGELOG|LICEN[CS]E)/i.test(name));
  const inputs = ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'scripts/build.mjs', 'src', ...fromFiles, ...topLevel];
  for (const entry of new Set(inputs)) {
    if (existsSync(join(ROOT, entry))) await cp(join(ROOT, entry), join(into, entry), { recursive: true });
  }
  // The build's tools (typescript) come from the checkout's install.
  await symlink(join(ROOT, 'node_modules'), join(into, 'node_modules'), 'dir');
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'raftlog-pack-'));
  const staging = join(dir, 'staging');
  await stage(staging);

  const report = JSON.parse(
    await succeed('npm', ['pack', '--json', '--loglevel=error', '--pack-destination', dir], staging, SETUP_LIMIT_MS),
  ) as PackReport[];
  const packed = report[0];
  if (packed === undefined) throw new Error('npm pack --json reported no package');
  packedFiles = packed.files.map((file) => file.path);

  // A space in the path, as in many home directories: a module that finds its files from import.meta.url must decode it.
  app = join(dir, 'installed app');
  await mkdir(app);
  const tarball = join(dir, packed.filename);
  const manifest = JSON.parse(await readFile(join(staging, 'package.json'), 'utf8')) as PackedPackage['manifest'];
  const registry = (await promisify(execFile)('npm', ['config', 'get', 'registry'], { cwd: app })).stdout.trim();
  const project = await offlineProject(join(ROOT, 'package-lock.json'), { tarball, manifest }, registry);
  await writeFile(join(app, 'package.json'), JSON.stringify(project.packageJson, null, 2));
  await writeFile(join(app, 'package-lock.json'), JSON.stringify(project.packageLock, null, 2));
  await succeed('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--loglevel=error'], app, SETUP_LIMIT_MS);
}, SETUP_LIMIT_MS * 2);

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('ships the binary, the compiled JavaScript with declarations, every proto file and the docs; no sources or tests', async () => {
    const protos = (await readdir(join(ROOT, 'proto', 'raftlog', 'v1'))).map((name) => `proto/raftlog/v1/${name}`);
    expect(packedFiles).toEqual(
      expect.arrayContaining([
        'package.json',
        'README.md',
        'CHANGELOG.md',
        'bin/raftlog.js',
        'dist/cli/main.js',
        'dist/node/main.js',
        'dist/client/index.js',
        'dist/client/index.d.ts',
        ...protos,
      ]),
    );
    expect(packedFiles.filter((path) => /^(src|test|bench|scripts|examples|node_modules)\//.test(path))).toEqual([]);
    expect(packedFiles.filter((path) => path.endsWith('.ts') && !path.endsWith('.d.ts'))).toEqual([]);
  });

  it('installs without the development dependencies, and declares none of them (tsx included) as its own', async () => {
    const manifest = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as Manifest;
    const lock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    // Some development dependencies are also a runtime dependency's own (@types/node, of protobufjs): the lockfile knows which.
    const devOnly = Object.keys(manifest.devDependencies ?? {}).filter((name) => lock.packages[`node_modules/${name}`]?.dev === true);
    expect(devOnly).toContain('typescript');
    expect(devOnly.filter((name) => existsSync(join(app, 'node_modules', name)))).toEqual([]);
    const installed = JSON.parse(await readFile(join(app, 'node_modules', 'raftlog', 'package.json'), 'utf8')) as Manifest;
    expect(Object.keys(installed.dependencies ?? {})).not.toContain('tsx');
    expect(existsSync(join(app, 'node_modules', 'raftlog', 'src'))).toBe(false);
  });

  it('runs `raftlog --help` from the installed package: usage on stdout, exit code 0', async () => {
    const help = await raftlog(['--help']);
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toMatch(/^Usage: raftlog \[options\] \[command\]/);
    expect(help.stdout).toMatch(/^ {2}node \[flags\.\.\.\] /m);
  });

  it('exports the client library to `import ... from "raftlog"`', async () => {
    const check = "const { RaftLogClient } = await import('raftlog'); console.log(typeof RaftLogClient);";
    expect(await succeed(process.execPath, ['--input-type=module', '-e', check], app)).toBe('function\n');
  });

  it('starts a one-node cluster from the installed package that serves status, a put and a get, and stops on SIGTERM', async () => {
    const port = await freePort();
    const endpoint = `127.0.0.1:${port}`;
    const logFile = join(dir, 'n1.log');
    const log = openSync(logFile, 'a');
    const node = spawn(
      join(app, 'node_modules', '.bin', 'raftlog'),
      ['node', '--id', 'n1', '--listen', endpoint, '--peers', `n1=${endpoint}`, '--data', join(dir, 'n1-data')],
      { cwd: app, stdio: ['ignore', log, log] },
    );
    closeSync(log);
    children.push(node);
    const exited = new Promise<number | null>((resolve) => node.once('exit', (code) => resolve(code)));
    const nodeLog = () => readFile(logFile, 'utf8').catch(() => '(no log)');

    try {
      const outcome = await waitFor(
        'n1 to lead its one-node cluster (or exit)',
        async () => {
          if (node.exitCode !== null || node.signalCode !== null) return { exited: node.exitCode ?? node.signalCode };
          const run = await raftlog(['--endpoints', endpoint, '--timeout', '2000', '--json', 'status']);
          if (run.code !== 0) return undefined;
          const reply = JSON.parse(run.stdout) as { nodes: { leader?: string }[] };
          return reply.nodes[0]?.leader === 'n1' ? { status: reply } : undefined;
        },
        { timeoutMs: 90_000, intervalMs: 200 },
      );
      if ('exited' in outcome) throw new Error(`the node exited (${outcome.exited}) before it led`);
      expect(outcome.status).toMatchObject({ command: 'status', nodes: [{ node: 'n1', role: 'leader' }] });

      expect(await raftlog(['--endpoints', endpoint, 'put', 'greeting', 'from the package'])).toMatchObject({
        code: 0,
        stdout: expect.stringMatching(/^OK {2}index \d+ term \d+ \(leader n1\)\n$/),
      });
      expect(await raftlog(['--endpoints', endpoint, 'get', 'greeting'])).toMatchObject({
        code: 0,
        stdout: expect.stringMatching(/^get greeting → "from the package"/),
      });
    } catch (error) {
      throw new Error(`${(error as Error).message}\nnode log:\n${await nodeLog()}`, { cause: error });
    }

    node.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), 30_000))]);
    expect(code, `the node after SIGTERM; its log:\n${await nodeLog()}`).toBe(0);
  }, 180_000);
});
