/**
 * What a subscriber spends decoding each entry it receives: a Subscribe
 * reply of 64 appended records (as the node sends at concurrency 64) read by
 * @grpc/proto-loader's reflection decoder and by the hand-written decoder
 * the client and the benchmark use (src/api/subscribe-reply-decoder.ts),
 * alternated in rounds, in both forms of 64-bit integers.
 *
 *   npm run bench:subscribe-decode -- [--record-bytes 100] [--entries 64] [--rounds 3]
 */
import { parseArgs } from 'node:util';
import { CLIENT_PROTO_PATH, loadRaftLogService, RAFTLOG_SERVICE_NAME } from '../src/api/client-api.js';
import { loadService, type Uint64Form } from '../src/api/load-service.js';

const { values: args } = parseArgs({
  options: {
    'record-bytes': { type: 'string', default: '100' },
    entries: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '3' },
  },
});
const recordBytes = Number(args['record-bytes']);
const entryCount = Number(args.entries);
const rounds = Number(args.rounds);

type Decode = (bytes: Buffer) => unknown;
function subscribeMethod(service: ReturnType<typeof loadService>): { encode: (reply: object) => Buffer; decode: Decode } {
  const method = service['Subscribe'];
  if (method === undefined) throw new Error('raftlog.v1.RaftLog has no Subscribe');
  return { encode: (reply) => method.responseSerialize(reply), decode: (bytes) => method.responseDeserialize(bytes) };
}

const now = Date.now();
const reply = {
  entries: Array.from({ length: entryCount }, (_, i) => ({
    index: 100_000 + i,
    term: 7,
    kind: 'LOG_ENTRY_KIND_APPEND',
    record: Buffer.alloc(recordBytes, i),
    proposedAtMs: now,
  })),
  firstIndex: 100_000,
  lastIndex: 100_000 + entryCount - 1,
  commitIndex: 100_000 + entryCount - 1,
  node: 'n2',
  leader: 'n1',
};

/** µs per entry over about half a second of decoding. */
function perEntry(decode: Decode, bytes: Buffer): number {
  let replies = 0;
  const start = performance.now();
  while (performance.now() - start < 500) {
    for (let i = 0; i < 100; i++) decode(bytes);
    replies += 100;
  }
  return ((performance.now() - start) * 1000) / replies / entryCount;
}

console.log(`a Subscribe reply of ${entryCount} records of ${recordBytes} bytes; µs of CPU per entry decoded`);
console.log('| 64-bit integers | round | proto-loader | by hand | ratio |');
console.log('| --- | --- | --- | --- | --- |');
for (const form of ['number', 'decimal-string'] as const satisfies readonly Uint64Form[]) {
  const reflection = subscribeMethod(loadService(CLIENT_PROTO_PATH, RAFTLOG_SERVICE_NAME, form));
  const byHand = subscribeMethod(loadRaftLogService(form));
  const bytes = reflection.encode(reply);
  for (let round = 1; round <= rounds; round++) {
    const a = perEntry(reflection.decode, bytes);
    const b = perEntry(byHand.decode, bytes);
    console.log(`| ${form} | ${round} | ${a.toFixed(2)} | ${b.toFixed(2)} | ${(a / b).toFixed(1)}× |`);
  }
}
