/**
 * How many messages per second one PeerClients -> peer service link carries
 * on loopback: AppendRequests of 100-byte entries (one per append unless
 * told). The sender keeps at most WINDOW messages unacknowledged, so nothing
 * is dropped. By default sender and receiver share this process (and one
 * event loop); with --separate the receiver runs in a child process.
 *
 *   npx tsx bench/peer-transport.ts [--seconds 5] [--entries 1] [--separate]
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { PeerClients } from '../src/node/peer-clients.js';
import { startPeerServer, stopPeerServer } from '../src/node/peer-service.js';
import type { Entry, Message } from '../src/raft/types.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    entries: { type: 'string', default: '1' },
    separate: { type: 'boolean', default: false },
    serve: { type: 'boolean', default: false },
  },
});
const WINDOW = 5_000;
const CHUNK = 100;
const logger = pino({ level: 'warn' });

/** The receiver: counts appends and checks that they arrive in order. */
async function serve(): Promise<{ port: number; stop: () => Promise<string> }> {
  let received = 0;
  let lastIndex = 0;
  let outOfOrder = 0;
  const { server, port } = await startPeerServer('127.0.0.1:0', {
    self: 'n2',
    cluster: 'bench',
    logger,
    onMessages: (_from, messages) => {
      for (const message of messages) {
        if (message.type !== 'AppendRequest') continue;
        if (message.prevLogIndex !== lastIndex) outOfOrder += 1;
        lastIndex = message.prevLogIndex + message.entries.length;
        received += 1;
      }
    },
  });
  return {
    port,
    stop: async () => {
      await stopPeerServer(server);
      return `receiver: ${received} appends, ${outOfOrder} out of order`;
    },
  };
}

if (args.serve) {
  // Child mode: print the port, report and exit when the parent closes stdin.
  const receiver = await serve();
  console.log(receiver.port);
  createInterface({ input: process.stdin }).on('close', () => {
    void receiver.stop().then((report) => {
      console.log(report);
      process.exit(0);
    });
  });
} else {
  await measure();
}

async function measure(): Promise<void> {
  const seconds = Number(args.seconds);
  const entriesPerAppend = Number(args.entries);
  let port: number;
  let stop: () => Promise<string>;
  if (args.separate) {
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1] as string, '--serve'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    port = Number((await lines.next()).value);
    stop = async () => {
      child.stdin.end();
      return String((await lines.next()).value);
    };
  } else {
    ({ port, stop } = await serve());
  }

  const clients = new PeerClients({ self: 'n1', cluster: 'bench', peers: new Map([['n2', `127.0.0.1:${port}`]]), logger });
  const link = () => clients.stats()[0] as NonNullable<ReturnType<PeerClients['stats']>[0]>;
  const data = new Uint8Array(100).fill(7);
  let nextIndex = 1;
  const append = (): Message => {
    const prevLogIndex = nextIndex - 1;
    const entries: Entry[] = [];
    for (let i = 0; i < entriesPerAppend; i += 1) entries.push({ index: nextIndex++, term: 1, kind: 'command', data });
    return { from: 'n1', to: 'n2', term: 1, type: 'AppendRequest', prevLogIndex, prevLogTerm: prevLogIndex === 0 ? 0 : 1, entries, leaderCommit: 0 };
  };
  let sent = 0;
  const run = async (ms: number) => {
    const end = performance.now() + ms;
    while (performance.now() < end) {
      if (sent - link().sentMessages < WINDOW) {
        const chunk: Message[] = [];
        for (let i = 0; i < CHUNK; i += 1) chunk.push(append());
        clients.send(chunk);
        sent += CHUNK;
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
  };

  await run(1_000); // warm-up: connection, JIT
  const before = { messages: link().sentMessages, batches: link().sentBatches, time: performance.now() };
  await run(seconds * 1_000);
  const elapsed = (performance.now() - before.time) / 1_000;
  const messages = link().sentMessages - before.messages;
  const batches = link().sentBatches - before.batches;
  const rate = (n: number) => Math.round(n / elapsed).toLocaleString('en');
  console.log(
    `${args.separate ? 'receiver in a child process' : 'one process'}: ${rate(messages)} messages/s ` +
      `(${rate(messages * entriesPerAppend)} entries/s of 100 bytes, ${entriesPerAppend} per append) over ${elapsed.toFixed(1)} s; ` +
      `${rate(batches)} calls/s, ${(messages / Math.max(1, batches)).toFixed(0)} messages per call; ` +
      `dropped: ${link().droppedOverflow + link().droppedFailed}`,
  );
  await clients.close();
  console.log(await stop());
}
