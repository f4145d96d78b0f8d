/**
 * Real network faults for jepsen-lite: every node in a network namespace of
 * its own, with an address of its own, joined by a veth pair to a bridge in
 * the root namespace (which has an address too, so the harness and the
 * clients reach every node). A partition moves veth ends to other bridges:
 * nodes on different bridges share no link, so their packets go nowhere, as
 * with a pulled cable. There is no iptables or tc here, so what it cannot do
 * is said where the partition nemesis picks its flavours (nemesis.ts).
 *
 * Every name starts with `rlj<pid>-<n>` (pid in base 36): parallel runs do not
 * collide, and a later run sweeps what a crashed one left (its pid is gone).
 *
 * The namespaces are made per slot (node-slots.ts): every method takes node
 * ids and uses their slots, so n3.2 runs in n3's namespace, at its address,
 * once n3 is gone.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { slotOf } from './node-slots.js';

const run = promisify(execFile);

/** Every namespace, bridge and veth of this mode starts with this. */
export const NETNS_PREFIX = 'rlj';
/** Linux's limit on an interface name (IFNAMSIZ − 1). */
const MAX_LINK_NAME = 15;
/** Bridges 1 and 2 are where the other sides of a partition go; bridge 0 is the one with the root namespace's address. */
const BRIDGES = 3;
const STALE_NAME = new RegExp(`^${NETNS_PREFIX}([0-9a-z]+)-[0-9a-z]+`);

let created = 0;
const open = new Set<NetnsNetwork>();

/** Runs `ip`; a failure says which command and what ip said. */
async function ip(...args: string[]): Promise<string> {
  try {
    return (await run('ip', args, { encoding: 'utf8' })).stdout;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`ip ${args.join(' ')} failed: ${stderr || (error as Error).message}`);
  }
}

/**
 * Throws an error a person understands unless this process can make network
 * namespaces: it must be root, and `ip netns` must work.
 */
export async function checkNetnsAvailable(): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new Error(
      '--network netns needs root (it creates network namespaces, veth pairs and bridges with `ip`); run as root or use --network proxy',
    );
  }
  try {
    await run('ip', ['netns', 'list']);
  } catch (error) {
    throw new Error(`--network netns needs iproute2's \`ip netns\`, which failed: ${(error as Error).message}`);
  }
}

/** Namespace and link names of this mode left by processes that are gone. */
async function staleNames(): Promise<{ namespaces: string[]; links: string[] }> {
  const namespaces = (await ip('netns', 'list'))
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter(isStale);
  const links = (await ip('-o', 'link', 'show'))
    .split('\n')
    .map((line) => (line.split(': ')[1] ?? '').split('@')[0] ?? '')
    .filter(isStale);
  return { namespaces, links };
}

function isStale(name: string): boolean {
  const match = STALE_NAME.exec(name);
  if (match === null) return false;
  const pid = Number.parseInt(match[1] as string, 36);
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    // EPERM: alive, someone else's.
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** Deletes the namespaces and links of earlier runs of this mode that crashed; returns their names. */
export async function sweepStaleNetns(): Promise<string[]> {
  const { namespaces, links } = await staleNames();
  for (const ns of namespaces) await killAndDelete(ns);
  // Deleting a namespace deletes the veth ends inside it and so their peers; what is left are bridges and orphans.
  const remaining = new Set((await staleNames()).links);
  for (const link of links) if (remaining.has(link)) await ip('link', 'del', link).catch(() => undefined);
  return [...namespaces, ...links];
}

async function killAndDelete(ns: string): Promise<void> {
  const pids = await ip('netns', 'pids', ns).catch(() => '');
  for (const pid of pids.split('\n').filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await ip('netns', 'del', ns).catch(() => undefined);
}

/** A /24 in 10.0.0.0/8 that no route of the root namespace overlaps, picked from this run's pid and count. */
async function freeSubnet(seed: number): Promise<string> {
  const routes = (await ip('-4', 'route', 'show', 'table', 'all'))
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((dst) => /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(dst));
  for (let attempt = 0; attempt < 4096; attempt++) {
    const slot = (seed + attempt * 7919) % 16384;
    const subnet = `10.${128 + (slot >> 8)}.${slot & 255}`;
    if (!routes.some((route) => overlaps(route, subnet))) return subnet;
  }
  throw new Error('no free /24 in 10.128.0.0/10 for the node namespaces');
}

function overlaps(route: string, subnet: string): boolean {
  const [address, bits = '32'] = route.split('/') as [string, string?];
  const prefix = Math.min(Number(bits), 24);
  const toInt = (dotted: string) => dotted.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return (toInt(address) & mask) >>> 0 === (toInt(`${subnet}.0`) & mask) >>> 0;
}

interface NodeLinks {
  readonly ns: string;
  /** The veth end on a bridge (the node's end is eth0 in its namespace). */
  readonly hostVeth: string;
  /** A second veth end for a node that bridges two sides; it exists only during such a partition. */
  readonly sideVeth: string;
  readonly ip: string;
  /** eth0's MAC, shared by the side veth so that neighbours' ARP entries stay right. */
  mac: string;
}

/**
 * The namespaces, veth pairs and bridges of one run. create() makes them,
 * close() deletes every one; a process that exits or is interrupted first
 * deletes them on the way out, and a crash (SIGKILL) leaves them to the next
 * run's sweep.
 */
export class NetnsNetwork {
  /** Which bridge each node's veth is on now (0: the main bridge, with the clients). */
  private readonly side = new Map<string, number>();
  private readonly bridging = new Set<string>();
  private closed = false;

  private constructor(
    readonly prefix: string,
    /** 10.X.Y: node i (1-based, in the order of ids) is 10.X.Y.i, the root namespace 10.X.Y.254. */
    readonly subnet: string,
    private readonly nodes: ReadonlyMap<string, NodeLinks>,
  ) {}

  /** Sweeps leftovers of crashed runs, then builds a namespace per slot (at most 253), bridges and veth pairs. */
  static async create(ids: readonly string[]): Promise<NetnsNetwork> {
    await checkNetnsAvailable();
    if (ids.length === 0 || ids.length > 253) throw new Error(`netns network: ${ids.length} nodes; 1 to 253 fit in a /24`);
    await sweepStaleNetns();
    const prefix = `${NETNS_PREFIX}${process.pid.toString(36)}-${(created++).toString(36)}`;
    const subnet = await freeSubnet(process.pid * 64 + created);
    const nodes = new Map<string, NodeLinks>();
    for (const [i, id] of ids.entries()) {
      nodes.set(id, { ns: `${prefix}n${i + 1}`, hostVeth: `${prefix}h${i + 1}`, sideVeth: `${prefix}s${i + 1}`, ip: `${subnet}.${i + 1}`, mac: '' });
    }
    for (const name of [`${prefix}b${BRIDGES - 1}`, `${prefix}s${ids.length}`]) {
      if (name.length > MAX_LINK_NAME) throw new Error(`netns network: link name ${name} is over ${MAX_LINK_NAME} characters`);
    }
    const network = new NetnsNetwork(prefix, subnet, nodes);
    open.add(network);
    installExitHooks();
    try {
      await network.build();
    } catch (error) {
      await network.close();
      throw error;
    }
    return network;
  }

  private async build(): Promise<void> {
    for (let b = 0; b < BRIDGES; b++) {
      await ip('link', 'add', this.bridge(b), 'type', 'bridge');
      await ip('link', 'set', this.bridge(b), 'up');
    }
    await ip('addr', 'add', `${this.subnet}.254/24`, 'dev', this.bridge(0));
    for (const [id, node] of this.nodes) {
      await ip('netns', 'add', node.ns);
      await ip('link', 'add', node.hostVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', node.ns);
      await ip('link', 'set', node.hostVeth, 'master', this.bridge(0), 'up');
      await ip('-n', node.ns, 'addr', 'add', `${node.ip}/24`, 'dev', 'eth0');
      await ip('-n', node.ns, 'link', 'set', 'eth0', 'up');
      await ip('-n', node.ns, 'link', 'set', 'lo', 'up');
      node.mac = /link\/ether ([0-9a-f:]+)/.exec(await ip('-n', node.ns, 'link', 'show', 'eth0'))?.[1] ?? '';
      this.side.set(id, 0);
    }
  }

  get ids(): string[] {
    return [...this.nodes.keys()];
  }

  /** The node's address (no port): reachable from the root namespace and, unless partitioned, from every node. */
  ipOf(id: string): string {
    return this.node(id).ip;
  }

  namespaceOf(id: string): string {
    return this.node(id).ns;
  }

  /** What runs a command in the node's namespace: `ip netns exec` execs it, so the process's pid is the command's own. */
  spawnPrefix(id: string): string[] {
    return ['ip', 'netns', 'exec', this.node(id).ns];
  }

  /** Every link name of this network (bridges, veth ends in the root namespace), for checks that none is left. */
  get linkNames(): string[] {
    const names = Array.from({ length: BRIDGES }, (_, b) => this.bridge(b));
    for (const node of this.nodes.values()) names.push(node.hostVeth, node.sideVeth);
    return names;
  }

  get namespaceNames(): string[] {
    return [...this.nodes.values()].map((node) => node.ns);
  }

  /**
   * Splits the nodes: the first group stays on the main bridge (with the
   * clients), every further group gets a bridge of its own; a node in no
   * group stays on the main bridge. Two-way only. Heals any earlier partition first.
   */
  async partition(groups: readonly (readonly string[])[]): Promise<void> {
    if (groups.length > BRIDGES) throw new Error(`netns network: ${groups.length} sides; at most ${BRIDGES}`);
    await this.heal();
    for (const [b, group] of groups.entries()) for (const id of group) await this.moveTo(id, b);
  }

  /**
   * `left` stays with the clients, `right` is cut from them and from `left`,
   * and `bridge` talks to both: it gets a second veth on the right's bridge
   * with the same address and MAC (so nobody's ARP entry goes stale), and
   * routes to the right's nodes through it.
   */
  async bridgePartition(left: readonly string[], bridge: string, right: readonly string[]): Promise<void> {
    await this.partition([[bridge, ...left], right]);
    const node = this.node(bridge);
    await ip('link', 'add', node.sideVeth, 'type', 'veth', 'peer', 'name', 'eth1', 'netns', node.ns);
    this.bridging.add(slotOf(bridge));
    await ip('-n', node.ns, 'link', 'set', 'eth1', 'address', node.mac);
    await ip('link', 'set', node.sideVeth, 'master', this.bridge(1), 'up');
    await ip('-n', node.ns, 'addr', 'add', `${node.ip}/32`, 'dev', 'eth1');
    await ip('-n', node.ns, 'link', 'set', 'eth1', 'up');
    for (const id of right) await ip('-n', node.ns, 'route', 'add', `${this.ipOf(id)}/32`, 'dev', 'eth1');
  }

  /** Which bridge each node is on (0: with the clients). */
  sides(): ReadonlyMap<string, number> {
    return new Map(this.side);
  }

  /** Every node back on the main bridge, no second veths. */
  async heal(): Promise<void> {
    for (const id of this.bridging) await ip('link', 'del', this.node(id).sideVeth).catch(() => undefined);
    this.bridging.clear();
    for (const id of this.nodes.keys()) if (this.side.get(id) !== 0) await this.moveTo(id, 0);
  }

  /** Kills whatever still runs in the namespaces, deletes them and every link; safe to call twice, and after a failed create. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const node of this.nodes.values()) await killAndDelete(node.ns);
    const present = new Set(
      (await ip('-o', 'link', 'show').catch(() => '')).split('\n').map((line) => (line.split(': ')[1] ?? '').split('@')[0] ?? ''),
    );
    for (const name of this.linkNames) if (present.has(name)) await ip('link', 'del', name).catch(() => undefined);
    open.delete(this);
  }

  /** For the process's exit: the same as close(), synchronously, errors ignored. */
  closeSync(): void {
    if (this.closed) return;
    this.closed = true;
    const quiet = (...args: string[]) => {
      try {
        return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      } catch {
        return '';
      }
    };
    for (const node of this.nodes.values()) {
      for (const pid of quiet('netns', 'pids', node.ns).split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
      quiet('netns', 'del', node.ns);
    }
    for (const name of this.linkNames) quiet('link', 'del', name);
    open.delete(this);
  }

  private async moveTo(id: string, b: number): Promise<void> {
    await ip('link', 'set', this.node(id).hostVeth, 'master', this.bridge(b));
    this.side.set(slotOf(id), b);
  }

  private bridge(b: number): string {
    return `${this.prefix}b${b}`;
  }

  private node(id: string): NodeLinks {
    const node = this.nodes.get(slotOf(id));
    if (node === undefined) throw new Error(`netns network ${this.prefix}: no node ${id}`);
    return node;
  }
}

let hooked = false;

/** On exit, and on SIGINT/SIGTERM (whose default would skip 'exit'), whatever is still open is deleted. */
function installExitHooks(): void {
  if (hooked) return;
  hooked = true;
  const closeAll = () => {
    for (const network of [...open]) network.closeSync();
  };
  process.on('exit', closeAll);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      closeAll();
      process.kill(process.pid, signal);
    });
  }
}
