/**
 * What one round trip between two nodes costs, one message at a time, as a
 * Put at concurrency 1 makes them: the leader sends an append of one 100-byte
 * entry, the follower answers, and only then does the next append leave.
 * Two transports, alternated in rounds in one run:
 *
 * - grpc: raftlog's peer transport (PeerClients streams and the peer
 *   service, each node sending on its own stream to the other's server);
 * - socket: the same MessageBatch bytes, each prefixed with its length, on
 *   one plain TCP connection (what etcd's rafthttp pipelines amount to),
 *   encoded and decoded with the same codec.
 *
 * Prints round trips per second, the mean round trip, and CPU per round
 * trip in each process (process.cpuUsage). Nothing is checked for speed: it
 * measures what a leaner transport would save before anyone builds one.
 *
 *   npm run bench:roundtrip -- [--seconds 5] [--rounds 3]
 */
import { spawn } from 'node:child_process';
import { createServer, type Socket, connect as tcpConnect } from 'node:net';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { PeerClients } from '../src/node/peer-clients.js';
import { startPeerServer, stopPeerServer } from '../src/node/peer-service.js';
import { streamMethod } from '../src/node/raft-proto.js';
import { fromWire, toWire, type WireMessageBatch } from '../src/node/wire-codec.js';
import type { Message } from '../src/raft/types.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    serve: { type: 'string' },
  },
});
const logger = pino({ level: 'warn' });
const data = new Uint8Array(100).fill(7);

type Transport = 'grpc' | 'socket';

/** One side's way of sending a message to the other, and of hearing the other's. */
interface Link {
  send(message: Message): void;
  close(): Promise<void>;
}

const appendTo = (index: number): Message => ({
  from: 'n1',
  to: 'n2',
  term: 1,
  type: 'AppendRequest',
  prevLogIndex: index - 1,
  prevLogTerm: index === 1 ? 0 : 1,
  entries: [{ index, term: 1, kind: 'command', data }],
  leaderCommit: index - 1,
});

const answerTo = (append: Message): Message => ({
  from: 'n2',
  to: 'n1',
  term: 1,
  type: 'AppendResponse',
  success: true,
  matchIndex: append.type === 'AppendRequest' ? append.prevLogIndex + append.entries.length : 0,
  rejectedIndex: 0,
  hintIndex: 0,
  hintTerm: 0,
});

// --- the socket transport: [u32 length][MessageBatch] frames ---

function encodeFrame(message: Message): Buffer {
  const batch: WireMessageBatch = { from: message.from, to: message.to, cluster: 'bench', messages: [toWire(message)] };
  const body = streamMethod.requestSerialize(batch);
  const frame = Buffer.allocUnsafe(4 + body.byteLength);
  frame.writeUInt32BE(body.byteLength, 0);
  body.copy(frame, 4);
  return frame;
}

function onFrames(socket: Socket, receive: (message: Message) => void): void {
  let pending: Buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    pending = pending.byteLength === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.byteLength >= 4) {
      const length = pending.readUInt32BE(0);
      if (pending.byteLength < 4 + length) break;
      const batch = streamMethod.requestDeserialize(pending.subarray(4, 4 + length)) as WireMessageBatch;
      pending = pending.subarray(4 + length);
      for (const wire of batch.messages) receive(fromWire(batch.from, batch.to, wire));
    }
  });
}

// --- the follower (child process) ---

async function serve(transport: Transport): Promise<void> {
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  const cpu = () => console.log(JSON.stringify(process.cpuUsage()));
  if (transport === 'socket') {
    const server = createServer((socket) => {
      socket.setNoDelay(true);
      onFrames(socket, (message) => socket.write(encodeFrame(answerTo(message))));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    console.log((server.address() as { port: number }).port);
    for (let line = await lines.next(); !line.done; line = await lines.next()) cpu();
    server.close();
    process.exit(0);
  }
  let clients: PeerClients | null = null;
  const { server, port } = await startPeerServer('127.0.0.1:0', {
    self: 'n2',
    cluster: 'bench',
    logger,
    onMessages: (_from, messages) => {
      for (const message of messages) clients?.send([answerTo(message)]);
    },
  });
  console.log(port);
  const leaderPort = (await lines.next()).value as string;
  clients = new PeerClients({ self: 'n2', cluster: 'bench', peers: new Map([['n1', `127.0.0.1:${leaderPort}`]]), logger });
  for (let line = await lines.next(); !line.done; line = await lines.next()) cpu();
  await clients.close();
  await stopPeerServer(server);
  process.exit(0);
}

// --- the leader (this process) ---

async function leaderLink(
  transport: Transport,
  followerPort: number,
  receive: (message: Message) => void,
  tell: (line: string) => void,
): Promise<Link> {
  if (transport === 'socket') {
    const socket = tcpConnect(followerPort, '127.0.0.1');
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    onFrames(socket, receive);
    return {
      send: (message) => socket.write(encodeFrame(message)),
      close: async () => {
        socket.destroy();
      },
    };
  }
  const { server, port } = await startPeerServer('127.0.0.1:0', {
    self: 'n1',
    cluster: 'bench',
    logger,
    onMessages: (_from, messages) => {
      for (const message of messages) receive(message);
    },
  });
  tell(String(port));
  const clients = new PeerClients({ self: 'n1', cluster: 'bench', peers: new Map([['n2', `127.0.0.1:${followerPort}`]]), logger });
  return {
    send: (message) => clients.send([message]),
    close: async () => {
      await clients.close();
      await stopPeerServer(server);
    },
  };
}

interface RoundResult {
  readonly roundTrips: number;
  readonly seconds: number;
  readonly leaderCpuUs: number;
  readonly followerCpuUs: number;
}

async function round(transport: Transport, seconds: number): Promise<RoundResult> {
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1] as string, '--serve', transport], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const nextLine = async () => String((await lines.next()).value);
  const followerPort = Number(await nextLine());
  const followerCpu = async (): Promise<number> => {
    child.stdin.write('cpu\n');
    const usage = JSON.parse(await nextLine()) as NodeJS.CpuUsage;
    return usage.user + usage.system;
  };
  let index = 0;
  let answered = 0;
  let stopAt = Number.POSITIVE_INFINITY;
  let finished: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    finished = resolve;
  });
  const link = await leaderLink(
    transport,
    followerPort,
    (message) => {
      if (message.type !== 'AppendResponse') return;
      answered++;
      if (performance.now() >= stopAt) finished();
      else link.send(appendTo(++index));
    },
    (line) => child.stdin.write(`${line}\n`),
  );
  // Warm-up: connections and the JIT.
  stopAt = performance.now() + 1_000;
  link.send(appendTo(++index));
  await done;
  const start = { answered, time: performance.now(), leader: process.cpuUsage(), follower: await followerCpu() };
  const measured = new Promise<void>((resolve) => {
    finished = resolve;
  });
  stopAt = performance.now() + seconds * 1_000;
  link.send(appendTo(++index));
  await measured;
  const elapsed = (performance.now() - start.time) / 1_000;
  const leaderUsage = process.cpuUsage(start.leader);
  const result: RoundResult = {
    roundTrips: answered - start.answered,
    seconds: elapsed,
    leaderCpuUs: leaderUsage.user + leaderUsage.system,
    followerCpuUs: (await followerCpu()) - start.follower,
  };
  await link.close();
  child.stdin.end();
  await new Promise((resolve) => child.once('exit', resolve));
  return result;
}

async function measure(): Promise<void> {
  const seconds = Number(args.seconds);
  const rounds = Number(args.rounds);
  const results: Record<Transport, RoundResult[]> = { grpc: [], socket: [] };
  for (let i = 1; i <= rounds; i++) {
    for (const transport of ['grpc', 'socket'] as const) {
      const result = await round(transport, seconds);
      results[transport].push(result);
      const perTrip = (us: number) => (us / result.roundTrips).toFixed(0);
      console.log(
        `round ${i} ${transport}: ${Math.round(result.roundTrips / result.seconds)} round trips/s, ` +
          `mean ${((result.seconds * 1e6) / result.roundTrips).toFixed(0)} µs; CPU per round trip: ` +
          `leader ${perTrip(result.leaderCpuUs)} µs, follower ${perTrip(result.followerCpuUs)} µs`,
      );
    }
  }
  for (const transport of ['grpc', 'socket'] as const) {
    const all = results[transport];
    const trips = all.reduce((sum, r) => sum + r.roundTrips, 0);
    const time = all.reduce((sum, r) => sum + r.seconds, 0);
    const leader = all.reduce((sum, r) => sum + r.leaderCpuUs, 0);
    const follower = all.reduce((sum, r) => sum + r.followerCpuUs, 0);
    console.log(
      `${transport} over ${rounds} rounds: ${Math.round(trips / time)} round trips/s, CPU per round trip leader ${(leader / trips).toFixed(0)} µs, follower ${(follower / trips).toFixed(0)} µs`,
    );
  }
}

if (args.serve !== undefined) await serve(args.serve as Transport);
else await measure();
