import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { SeededRandom } from '../../src/raft/random.js';
import { slotOf } from './node-slots.js';

/** How a link misbehaves while it is slow. */
export interface SlowLink {
  /** Added one-way latency per chunk of bytes. */
  readonly delayMs: number;
  /** Up to this much more, at random. */
  readonly jitterMs: number;
  /**
   * Share of chunks "lost". TCP turns a lost packet into a retransmission, so
   * a lost chunk arrives late (after `retransmitMs`), never out of order and
   * never missing: the byte stream stays intact, as it would on a real network.
   */
  readonly lossRate: number;
  readonly retransmitMs: number;
}

const NOT_SLOW: SlowLink = { delayMs: 0, jitterMs: 0, lossRate: 0, retransmitMs: 0 };

/**
 * One direction of a peer link: node `from` reaches node `to` through it, and
 * only `from` opens connections here. Cutting it stops every byte both ways
 * on those connections, like a firewall dropping the packets: TCP would keep
 * the connection and retransmit, so the bytes are held, not thrown away, and
 * flow again (late) on heal unless an end gave up and closed meanwhile.
 * Node `to` reaches `from` over its own link, so cutting one direction is a
 * one-way partition.
 */
export class LinkProxy {
  private readonly pipes = new Set<Pipe>();
  private cut = false;
  private slowness: SlowLink = NOT_SLOW;

  private constructor(
    readonly from: string,
    readonly to: string,
    private readonly server: Server,
    readonly port: number,
    private readonly targetPort: () => number,
    private readonly random: SeededRandom,
  ) {}

  static async start(from: string, to: string, targetPort: () => number, seed: number): Promise<LinkProxy> {
    const server = createServer();
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        if (typeof address === 'object' && address !== null) resolve(address.port);
        else reject(new Error(`proxy ${from}->${to}: no port`));
      });
    });
    const link = new LinkProxy(from, to, server, port, targetPort, new SeededRandom(seed));
    server.on('connection', (socket) => link.accept(socket));
    return link;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get isCut(): boolean {
    return this.cut;
  }

  setCut(cut: boolean): void {
    this.cut = cut;
    for (const pipe of this.pipes) pipe.update();
  }

  setSlow(slow: SlowLink | null): void {
    this.slowness = slow ?? NOT_SLOW;
    for (const pipe of this.pipes) pipe.update();
  }

  async close(): Promise<void> {
    for (const pipe of this.pipes) pipe.destroy();
    this.pipes.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    let port: number;
    try {
      port = this.targetPort();
    } catch {
      // The node's address is not known yet: refuse, and the caller retries as after any failed connect.
      client.destroy();
      return;
    }
    const upstream = createConnection({ host: '127.0.0.1', port });
    const pipe = new Pipe(client, upstream, this);
    this.pipes.add(pipe);
    pipe.onClosed = () => this.pipes.delete(pipe);
  }

  /** When a chunk read now may be delivered, given the link's state. */
  deliveryDelay(): number {
    const slow = this.slowness;
    if (slow === NOT_SLOW) return 0;
    let delay = slow.delayMs + (slow.jitterMs > 0 ? this.random.next() * slow.jitterMs : 0);
    if (slow.lossRate > 0 && this.random.chance(slow.lossRate)) delay += slow.retransmitMs;
    return delay;
  }
}

/** The two byte streams of one proxied connection. */
class Pipe {
  onClosed: () => void = () => {};
  private readonly directions: Direction[];
  private closed = false;

  constructor(
    a: Socket,
    b: Socket,
    private readonly link: LinkProxy,
  ) {
    this.directions = [new Direction(a, b, link), new Direction(b, a, link)];
    for (const socket of [a, b]) {
      socket.setNoDelay(true);
      socket.on('error', () => this.destroy());
      socket.on('close', () => this.destroy());
    }
    this.update();
  }

  update(): void {
    for (const direction of this.directions) direction.update(this.link.isCut);
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    for (const direction of this.directions) direction.destroy();
    this.onClosed();
  }
}

/** Bytes from `source` to `sink`, in order, held while cut and delayed while slow. */
class Direction {
  private readonly queue: { chunk: Buffer; at: number }[] = [];
  private lastAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private cut = false;
  private ended = false;
  private blocked = false;

  constructor(
    private readonly source: Socket,
    private readonly sink: Socket,
    private readonly link: LinkProxy,
  ) {
    source.on('data', (chunk: Buffer) => {
      // Order is kept: a chunk never overtakes an earlier, slower one.
      this.lastAt = Math.max(this.lastAt, Date.now() + link.deliveryDelay());
      this.queue.push({ chunk, at: this.lastAt });
      this.flush();
    });
    source.on('end', () => {
      this.ended = true;
      this.flush();
    });
    sink.on('drain', () => {
      this.blocked = false;
      this.flush();
    });
  }

  update(cut: boolean): void {
    this.cut = cut;
    if (cut) this.source.pause();
    this.flush();
  }

  destroy(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.queue.length = 0;
    this.source.destroy();
    this.sink.destroy();
  }

  private flush(): void {
    if (this.cut || this.sink.destroyed) return;
    const now = Date.now();
    while (this.queue.length > 0 && !this.blocked) {
      const head = this.queue[0] as { chunk: Buffer; at: number };
      if (head.at > now) {
        if (this.timer === null) {
          this.timer = setTimeout(() => {
            this.timer = null;
            this.flush();
          }, head.at - now);
        }
        return;
      }
      this.queue.shift();
      if (!this.sink.write(head.chunk)) this.blocked = true;
    }
    if (this.queue.length === 0 && this.ended) {
      this.sink.end();
      return;
    }
    // Backpressure: stop reading while the far side is not keeping up.
    if (this.blocked || this.queue.length > 256) this.source.pause();
    else this.source.resume();
  }
}

/**
 * Every directed peer link of a cluster, each through its own proxy. Node
 * `from` is told to reach `to` at `address(from, to)`. The proxies are made
 * per slot (node-slots.ts): every method takes node ids and uses their slots,
 * so n3.2 is reached, cut and slowed where n3 was.
 */
export class FaultNetwork {
  private constructor(private readonly links: Map<string, LinkProxy>) {}

  /** `nodes`: the slots; `nodePort(slot)`: the port of the node the slot hosts now (read at each connection). */
  static async start(nodes: readonly string[], nodePort: (slot: string) => number, seed: number): Promise<FaultNetwork> {
    const links = new Map<string, LinkProxy>();
    let n = 0;
    try {
      for (const from of nodes) {
        for (const to of nodes) {
          if (from === to) continue;
          links.set(`${from}->${to}`, await LinkProxy.start(from, to, () => nodePort(to), seed * 1000 + n++));
        }
      }
    } catch (error) {
      await Promise.all([...links.values()].map((link) => link.close()));
      throw error;
    }
    return new FaultNetwork(links);
  }

  link(from: string, to: string): LinkProxy {
    const link = this.links.get(`${slotOf(from)}->${slotOf(to)}`);
    if (link === undefined) throw new Error(`no link ${from}->${to}`);
    return link;
  }

  address(from: string, to: string): string {
    return this.link(from, to).address;
  }

  /** Cuts every link between two groups, both directions (a symmetric partition). */
  cutBetween(a: readonly string[], b: readonly string[]): void {
    for (const x of a) {
      for (const y of b) {
        // Two ids of one slot (an old member not removed yet beside its successor) share no link.
        if (slotOf(x) === slotOf(y)) continue;
        this.link(x, y).setCut(true);
        this.link(y, x).setCut(true);
      }
    }
  }

  /** The directed links that are cut, as "from->to". */
  cutLinks(): string[] {
    return [...this.links].filter(([, link]) => link.isCut).map(([name]) => name);
  }

  healCuts(): void {
    for (const link of this.links.values()) link.setCut(false);
  }

  healSlowness(): void {
    for (const link of this.links.values()) link.setSlow(null);
  }

  allLinks(): LinkProxy[] {
    return [...this.links.values()];
  }

  async close(): Promise<void> {
    await Promise.all([...this.links.values()].map((link) => link.close()));
  }
}
