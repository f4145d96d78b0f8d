/**
 * Failpoints: faults and planted bugs injected at named places of the node,
 * for tests and jepsen-lite (as etcd's gofail, TiKV's fail-rs and
 * FoundationDB's BUGGIFY do). Off unless the process starts with
 * RAFTLOG_FAILPOINTS or RAFTLOG_FAILPOINTS_LISTEN set; then the node holds a
 * Failpoints object and every place checks it (and its start line says
 * so), while a production node holds null and pays one null check per place.
 *
 *   RAFTLOG_FAILPOINTS="log-write=delay(3000)"        at start (NAME=ACTION;...)
 *   RAFTLOG_FAILPOINTS_LISTEN=127.0.0.1:PORT          control over HTTP, loopback only:
 *     PUT /failpoints/NAME  (body: the action)   DELETE /failpoints/NAME   GET /failpoints
 *   RAFTLOG_FAILPOINTS_BUGS=1                         also allows the planted bugs (bug-*)
 *   RAFTLOG_FAILPOINTS_LISTEN_OFF_LOOPBACK=1          the control on another address (a test's private network)
 *
 * Actions: `off`; `on` (a planted bug's switch); `delay(MS)`; `error(TEXT)`
 * (the operation fails as a disk or network error would); `crash` (the
 * process dies at once, like a power cut for its memory); `pause` (the
 * operation waits until the failpoint is set to something else). Places
 * that cannot wait (synchronous ones) treat delay and pause as off. An
 * action may start with a chance, `P%ACTION` (`10%error(lost)`): each hit
 * takes it with probability P and is otherwise left alone, as a lossy
 * link or a flaky disk would.
 */
import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import { isLoopback, parseHostPort } from '../api/host-port.js';

/** Every place a failpoint can be set, with what happens there. */
export const FAILPOINTS = {
  'log-write': "each fsync'd write of log entries and hard state (the write queue's saves), before it starts",
  'log-written': "each fsync'd log write, after it completed and before the core hears of it",
  'journal-append': "a follower's write made durable in the log's journal, before its append (synchronous: error, crash)",
  'snapshot-write': 'writing a snapshot of the state machine to its file, before it starts',
  'snapshot-install': "installing a leader's snapshot, before the state machine is replaced",
  'before-send': 'messages the core asked to send, after what they rely on was persisted (synchronous: error, crash)',
  'before-reply': 'a committed write was applied, before its client gets the reply (synchronous: error, crash)',
  'peer-send': 'messages to peers, before the transport queues them: delay and pause hold them (in order), error loses them as a broken link would',
  'peer-receive': 'each batch of messages from a peer, before the core gets it (synchronous: error loses it as a broken link would, crash)',
  'node-start': 'a starting node, once its port is bound and before it opens its log (delay and pause keep it starting)',
  'bug-read-local': 'PLANTED BUG: a linearizable read is answered from local state without confirming leadership',
  'bug-reply-before-commit': 'PLANTED BUG: the leader answers a write as soon as it is appended to its own log, before it commits',
  'bug-drop-forward-error': 'PLANTED BUG: a follower that forwarded a write to its leader answers success when the forward failed',
} as const;

export type FailpointName = keyof typeof FAILPOINTS;

type Act =
  | { readonly kind: 'off' }
  | { readonly kind: 'on' }
  | { readonly kind: 'delay'; readonly ms: number }
  | { readonly kind: 'error'; readonly message: string }
  | { readonly kind: 'crash' }
  | { readonly kind: 'pause' };

/** What a failpoint does when hit; `percent` (1-99), when present, is the chance that a hit does it at all. */
export type FailpointAction = Act & { readonly percent?: number };

export class FailpointError extends Error {
  override readonly name = 'FailpointError';
}

export const FAILPOINTS_VARIABLE = 'RAFTLOG_FAILPOINTS';
export const FAILPOINTS_LISTEN_VARIABLE = 'RAFTLOG_FAILPOINTS_LISTEN';
/** Planted bugs make a node wrong on purpose: a fault-injection setup alone must not be able to turn them on. */
export const FAILPOINT_BUGS_VARIABLE = 'RAFTLOG_FAILPOINTS_BUGS';
/** Lets the control listen off loopback: only on a network nobody else reaches (a test's network namespaces). */
export const FAILPOINTS_OFF_LOOPBACK_VARIABLE = 'RAFTLOG_FAILPOINTS_LISTEN_OFF_LOOPBACK';

/**
 * Parses `delay(300)`, `error(disk full)`, `crash`, `pause`, `on`, `off`,
 * each optionally after a chance (`25%error(lost)`); throws FailpointError
 * naming what is wrong.
 */
export function parseAction(text: string): FailpointAction {
  const spec = text.trim();
  const chance = /^(\d{1,2})%(.*)$/s.exec(spec);
  const act = parseAct(chance === null ? spec : (chance[2] as string), spec);
  if (chance === null) return act;
  const percent = Number(chance[1]);
  if (percent < 1) throw new FailpointError(`"${spec}": a chance is 1% to 99% (leave the chance out for every hit)`);
  if (act.kind === 'off') return act;
  return { ...act, percent };
}

function parseAct(text: string, spec: string): Act {
  const match = /^([a-z]+)(?:\((.*)\))?$/s.exec(text);
  const [, kind, argument] = match ?? [];
  switch (kind) {
    case 'off':
    case 'on':
    case 'crash':
    case 'pause':
      if (argument !== undefined) break;
      return { kind };
    case 'delay': {
      const ms = Number(argument);
      if (argument === undefined || !/^\d+$/.test(argument) || !Number.isSafeInteger(ms)) break;
      return { kind, ms };
    }
    case 'error':
      return { kind, message: argument === undefined || argument === '' ? 'injected failure' : argument };
  }
  throw new FailpointError(
    `"${spec}" is not a failpoint action: use off, on, delay(MS), error(TEXT), crash or pause, optionally after a chance such as 10%`,
  );
}

export function isFailpointName(name: string): name is FailpointName {
  return Object.hasOwn(FAILPOINTS, name);
}

export class Failpoints {
  private readonly actions = new Map<FailpointName, FailpointAction>();
  private readonly released = new Map<FailpointName, (() => void)[]>();
  private server: Server | null = null;
  /** Closed (the node stops): every failpoint acts as off, so a stopping node never waits at one. */
  private closed = false;

  constructor(
    private readonly logger: Logger,
    /** How `crash` ends the process; tests of this module replace it. */
    private readonly crash: () => void = () => process.kill(process.pid, 'SIGKILL'),
    /** Whether the planted bugs (bug-*) may be set. */
    private readonly bugsAllowed = false,
    /** Whether the HTTP control may listen on an address other than loopback. */
    private readonly offLoopbackAllowed = false,
    /** Draws in [0, 1) for actions with a chance; tests of this module replace it. */
    private readonly draw: () => number = Math.random,
  ) {}

  /** The failpoints the environment asks for, or null (the production case) when it names none. */
  static fromEnvironment(environment: NodeJS.ProcessEnv, logger: Logger): Failpoints | null {
    const initial = environment[FAILPOINTS_VARIABLE];
    const listen = environment[FAILPOINTS_LISTEN_VARIABLE];
    if (initial === undefined && listen === undefined) return null;
    const failpoints = new Failpoints(
      logger.child({ component: 'failpoints' }),
      undefined,
      environment[FAILPOINT_BUGS_VARIABLE] === '1',
      environment[FAILPOINTS_OFF_LOOPBACK_VARIABLE] === '1',
    );
    for (const part of (initial ?? '')
      .split(';')
      .map((p) => p.trim())
      .filter(Boolean)) {
      const at = part.indexOf('=');
      if (at < 0) throw new FailpointError(`${FAILPOINTS_VARIABLE}: "${part}" is not NAME=ACTION`);
      failpoints.set(part.slice(0, at).trim(), part.slice(at + 1));
    }
    return failpoints;
  }

  /** Sets a failpoint by name and action text; throws FailpointError for an unknown name or action. */
  set(name: string, actionText: string): void {
    if (!isFailpointName(name)) throw new FailpointError(`no failpoint "${name}"; there are: ${Object.keys(FAILPOINTS).join(', ')}`);
    const action = parseAction(actionText);
    if (name.startsWith('bug-') && action.kind !== 'off' && !this.bugsAllowed) {
      throw new FailpointError(`${name} plants a bug: it is refused unless the node was started with ${FAILPOINT_BUGS_VARIABLE}=1`);
    }
    if (action.kind === 'off') this.actions.delete(name);
    else this.actions.set(name, action);
    this.logger.warn({ event: 'failpoint-set', failpoint: name, action: actionText.trim() }, `failpoint ${name} set to ${actionText.trim()}`);
    // Whatever waits at a paused failpoint goes on once it is set to anything else.
    if (action.kind !== 'pause') for (const release of this.released.get(name)?.splice(0) ?? []) release();
  }

  /** Whether a planted bug's switch (or any action) is set at `name` (for an action with a chance: whether this hit takes it). */
  isOn(name: FailpointName): boolean {
    return this.taken(name) !== undefined;
  }

  /** Whether any action is set at `name`, chance or not (a place that must take a slower path to honour it asks this). */
  isSet(name: FailpointName): boolean {
    return !this.closed && this.actions.has(name);
  }

  /** The action this hit at `name` takes: none when off or closed, or when its chance says not this time. */
  private taken(name: FailpointName): FailpointAction | undefined {
    const action = this.closed ? undefined : this.actions.get(name);
    if (action?.percent === undefined) return action;
    return this.draw() * 100 < action.percent ? action : undefined;
  }

  /** The failpoints set now, as NAME=ACTION (for the node's start line). */
  describe(): string {
    return [...this.actions].map(([name, action]) => `${name}=${describeAction(action)}`).join(';') || 'none set';
  }

  /** An asynchronous place: waits, fails or crashes as the action says. */
  async hit(name: FailpointName): Promise<void> {
    const action = this.taken(name);
    if (action === undefined) return;
    switch (action.kind) {
      case 'delay':
        await new Promise((resolve) => setTimeout(resolve, action.ms));
        return;
      case 'pause':
        this.logger.warn({ event: 'failpoint-paused', failpoint: name }, `paused at failpoint ${name}`);
        await new Promise<void>((resolve) => {
          const waiting = this.released.get(name) ?? [];
          waiting.push(resolve);
          this.released.set(name, waiting);
        });
        return;
      default:
        this.act(name, action);
    }
  }

  /** A synchronous place: error and crash take effect; delay and pause cannot, and are ignored. */
  hitNow(name: FailpointName): void {
    const action = this.taken(name);
    if (action !== undefined) this.act(name, action);
  }

  private act(name: FailpointName, action: FailpointAction): void {
    if (action.kind === 'error') throw new FailpointError(`failpoint ${name}: ${action.message}`);
    if (action.kind === 'crash') {
      this.logger.warn({ event: 'failpoint-crash', failpoint: name }, `crashing at failpoint ${name}`);
      this.crash();
    }
  }

  /** Serves the HTTP control (see the module comment) on host:port; resolves with the port bound. */
  listen(address: string): Promise<number> {
    const parsed = parseHostPort(address);
    if (parsed === null) return Promise.reject(new FailpointError(`${FAILPOINTS_LISTEN_VARIABLE} "${address}" is not HOST:PORT`));
    // The control has no authentication: whoever reaches it can stall or crash the node.
    if (!isLoopback(parsed.host) && !this.offLoopbackAllowed) {
      return Promise.reject(
        new FailpointError(
          `${FAILPOINTS_LISTEN_VARIABLE} "${address}" is not a loopback address: the failpoint control has no authentication (${FAILPOINTS_OFF_LOOPBACK_VARIABLE}=1 allows it on a network nobody else reaches)`,
        ),
      );
    }
    const { host, port } = parsed;
    const server = createServer((request, response) => {
      const name = decodeURIComponent((request.url ?? '').replace(/^\/failpoints\/?/, ''));
      let body = '';
      request.setEncoding('utf8');
      request.on('data', (chunk: string) => (body += chunk));
      request.on('end', () => {
        try {
          if (request.method === 'GET' && name === '') {
            const set = Object.fromEntries([...this.actions].map(([key, action]) => [key, describeAction(action)]));
            response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(set));
          } else if (request.method === 'PUT') {
            this.set(name, body);
            response.writeHead(204).end();
          } else if (request.method === 'DELETE') {
            this.set(name, 'off');
            response.writeHead(204).end();
          } else {
            response.writeHead(405).end('use GET /failpoints, PUT /failpoints/NAME (body: action) or DELETE /failpoints/NAME\n');
          }
        } catch (error) {
          response.writeHead(400, { 'content-type': 'text/plain' }).end(`${(error as Error).message}\n`);
        }
      });
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        const bound = server.address();
        const boundPort = typeof bound === 'object' && bound !== null ? bound.port : port;
        const at = `${host.includes(':') ? `[${host}]` : host}:${boundPort}`;
        this.logger.warn({ event: 'failpoints-listening', address: at }, `failpoint control on http://${at}/failpoints`);
        resolve(boundPort);
      });
    });
  }

  /** Stops the HTTP control and lets anything paused go on. */
  async close(): Promise<void> {
    this.closed = true;
    for (const name of this.released.keys()) for (const release of this.released.get(name)?.splice(0) ?? []) release();
    const server = this.server;
    this.server = null;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function describeAction(action: FailpointAction): string {
  return `${action.percent === undefined ? '' : `${action.percent}%`}${describeAct(action)}`;
}

function describeAct(action: Act): string {
  switch (action.kind) {
    case 'delay':
      return `delay(${action.ms})`;
    case 'error':
      return `error(${action.message})`;
    default:
      return action.kind;
  }
}
