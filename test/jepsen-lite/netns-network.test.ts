import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createConnection } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait-for.js';
import { NetnsNetwork } from './netns-network.js';

/** Root with a working `ip netns`: the only place this mode can run. */
function netnsUsable(): string | null {
  if (process.getuid?.() !== 0) return 'not running as root';
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
    return null;
  } catch (error) {
    return `\`ip netns list\` failed: ${(error as Error).message}`;
  }
}

const unusable = netnsUsable();
if (unusable !== null) {
  if (process.env.RAFTLOG_REQUIRE_NETNS === '1') throw new Error(`RAFTLOG_REQUIRE_NETNS=1 but network namespaces are unusable: ${unusable}`);
  console.warn(
    `\n*** SKIPPED: the network-namespace tests (test/jepsen-lite/netns-network.test.ts) need root and iproute2: ${unusable}. ` +
      'Set RAFTLOG_REQUIRE_NETNS=1 to make this a failure. ***\n',
  );
}

const PORT = 7000;

/** The command line that runs a node script inside the node's namespace. */
function inNamespace(network: NetnsNetwork, id: string, script: string): [string, ...string[]] {
  const [command, ...prefix] = network.spawnPrefix(id);
  return [command as string, ...prefix, process.execPath, '-e', script];
}

/** A TCP server inside the node's namespace that greets every connection, and says when it listens. */
async function greeter(network: NetnsNetwork, id: string): Promise<ChildProcess> {
  const script = `require('net').createServer((s) => { s.on('error', () => {}); s.end('hello from ${id}'); }).listen(${PORT}, '${network.ipOf(id)}', () => console.log('listening'))`;
  const [command, ...args] = inNamespace(network, id, script);
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => chunk.toString().includes('listening') && resolve());
    child.once('exit', (code) => reject(new Error(`greeter in ${id} exited with ${code}`)));
  });
  return child;
}

/** From the root namespace: the greeting, or the error; an unanswered connection gives up after `ms`. */
function dialFromRoot(address: string, ms = 700): Promise<string> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: address, port: PORT });
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('no answer');
    }, ms);
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
    socket.on('end', () => {
      clearTimeout(timer);
      resolve(text);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(error.code ?? error.message);
    });
  });
}

/** From inside node `from`'s namespace, the same dial. */
function dialFrom(network: NetnsNetwork, from: string, address: string, ms = 700): string {
  const script = `const s = require('net').createConnection({ host: '${address}', port: ${PORT} }); let t = '';
    const timer = setTimeout(() => { process.stdout.write('no answer'); process.exit(0); }, ${ms});
    s.on('data', (c) => (t += c)); s.on('end', () => { clearTimeout(timer); process.stdout.write(t); });
    s.on('error', (e) => { clearTimeout(timer); process.stdout.write(e.code); });`;
  const [command, ...args] = inNamespace(network, from, script);
  return execFileSync(command, args, { encoding: 'utf8', timeout: 15_000 });
}

function leftovers(network: NetnsNetwork): string[] {
  const namespaces = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
  return [...namespaces.split('\n'), ...links.split('\n')].filter((line) => line.includes(network.prefix));
}

describe.skipIf(unusable !== null)('network namespaces for jepsen-lite (root only)', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('gives each node its own address; a partition cuts links both ways and from the clients, a heal restores them, close leaves nothing', async () => {
    const network = await NetnsNetwork.create(['n1', 'n2', 'n3']);
    cleanups.push(() => network.close());
    expect(new Set(['n1', 'n2', 'n3'].map((id) => network.ipOf(id))).size).toBe(3);
    const server = await greeter(network, 'n3');
    cleanups.push(() => void server.kill('SIGKILL'));
    const n3 = network.ipOf('n3');

    // Healthy: n3 answers the root namespace (where clients run) and another node.
    expect(await dialFromRoot(n3)).toBe('hello from n3');
    expect(dialFrom(network, 'n1', n3)).toBe('hello from n3');

    // n3 alone on another bridge: nobody reaches it, and it reaches nobody.
    await network.partition([['n1', 'n2'], ['n3']]);
    expect(dialFrom(network, 'n1', n3)).toBe('no answer');
    expect(await dialFromRoot(n3)).toBe('no answer');
    expect(dialFrom(network, 'n3', network.ipOf('n1'))).toBe('no answer');

    // Healed: reachable again (the bridge may take a moment to learn the port anew).
    await network.heal();
    await waitFor('n3 reachable from n1 after the heal', () => dialFrom(network, 'n1', n3) === 'hello from n3', 10_000);
    expect(await dialFromRoot(n3)).toBe('hello from n3');

    await network.close();
    expect(leftovers(network)).toEqual([]);
  });

  it('a bridge partition: the bridge node reaches both halves, which cannot reach each other', async () => {
    const network = await NetnsNetwork.create(['n1', 'n2', 'n3']);
    cleanups.push(() => network.close());
    const servers = await Promise.all(['n1', 'n3'].map((id) => greeter(network, id)));
    cleanups.push(() => {
      for (const server of servers) server.kill('SIGKILL');
    });

    await network.bridgePartition(['n1'], 'n2', ['n3']);
    expect(dialFrom(network, 'n2', network.ipOf('n1'))).toBe('hello from n1');
    expect(dialFrom(network, 'n2', network.ipOf('n3'))).toBe('hello from n3');
    expect(dialFrom(network, 'n1', network.ipOf('n3'))).toBe('no answer');
    expect(await dialFromRoot(network.ipOf('n3'))).toBe('no answer');

    await network.heal();
    await waitFor('n3 reachable from n1 after the heal', () => dialFrom(network, 'n1', network.ipOf('n3')) === 'hello from n3', 10_000);
    await network.close();
    expect(leftovers(network)).toEqual([]);
  });

  it('close() kills what still runs in the namespaces, and a killed node process is the node itself (ip netns exec execs)', async () => {
    const network = await NetnsNetwork.create(['n1']);
    cleanups.push(() => network.close());
    const server = await greeter(network, 'n1');
    // The pid spawn() returned is the one running in the namespace: signals reach the node, not a wrapper.
    expect(
      execFileSync('ip', ['netns', 'pids', network.namespaceOf('n1')], { encoding: 'utf8' })
        .trim()
        .split('\n'),
    ).toEqual([String(server.pid)]);
    const exited = new Promise((resolve) => server.once('exit', (_code, signal) => resolve(signal)));
    await network.close();
    expect(await exited).toBe('SIGKILL');
    expect(leftovers(network)).toEqual([]);
  });
});
