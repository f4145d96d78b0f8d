// Writes to a raft log as a follower does, until it is killed: journaled
// appends (some replacing the tail with a newer term), flushes to LevelDB in
// the background, now and then a write on the disk queue's path, journaled
// (as a leader's) or straight to LevelDB. Before each
// write it appends `begin <digest>` to RECORD_FILE, after it `ack <digest>`,
// each with a synchronous write, so whatever survives SIGKILL says which log
// the directory may hold: the last acknowledged, or the one begun after it.
import { openSync, writeSync } from 'node:fs';
import { LevelLogStorage } from '../../src/log/level-storage.js';
import { SeededRandom } from '../../src/raft/random.js';
import type { Entry, HardState } from '../../src/raft/types.js';
import { logDigest } from './log-digest.js';

const [dir, recordFile, seedText] = process.argv.slice(2);
if (dir === undefined || recordFile === undefined || seedText === undefined) throw new Error('usage: journal-crash-child.ts DIR RECORD_FILE SEED');
const random = new SeededRandom(Number(seedText));
const record = openSync(recordFile, 'a');
const note = (line: string) => writeSync(record, `${line}\n`);

const storage = await LevelLogStorage.open(dir, { voters: ['n1', 'n2', 'n3'] });
let hardState: HardState = storage.initialState().hardState;
let log: Entry[] = storage.entries(storage.firstIndex(), storage.lastIndex() + 1, Number.POSITIVE_INFINITY);
note(`opened ${logDigest(hardState, log)}`);

let flushing: Promise<void> | null = null;
for (let n = 0; ; n++) {
  const last = log.length;
  // Mostly appends at the end; one write in eight replaces the last few entries (not the committed ones) with a newer term.
  const replace = random.nextInt(8) === 0 && last > hardState.commit ? 1 + random.nextInt(Math.min(4, last - hardState.commit)) : 0;
  const from = last + 1 - replace;
  const term = replace > 0 ? hardState.term + 1 : Math.max(1, hardState.term);
  const count = 1 + random.nextInt(6);
  // Up to 12 KiB per entry: the journal starts a new file every few hundred writes.
  const fresh: Entry[] = Array.from({ length: count }, (_, i) => ({
    index: from + i,
    term,
    kind: 'command' as const,
    data: new TextEncoder().encode(`${n}-${i}-${'x'.repeat(random.nextInt(12 * 1024))}`),
  }));
  const newLog = [...log.slice(0, from - 1), ...fresh];
  const newHardState: HardState = { term, votedFor: hardState.votedFor, commit: Math.min(newLog.length, hardState.commit + random.nextInt(4)) };
  note(`begin ${logDigest(newHardState, newLog)}`);
  const path = random.nextInt(10);
  if (path === 0) {
    // The disk queue's path: the node never journals while such a write is on its way.
    await flushing;
    await storage.save(newHardState, fresh);
  } else if (path <= 3) {
    // A leader's path: journaled from the disk queue, its fdatasync on a libuv thread.
    await flushing;
    await storage.saveJournaled(newHardState, fresh);
  } else {
    storage.appendJournaled(newHardState, fresh);
  }
  hardState = newHardState;
  log = newLog;
  note(`ack ${logDigest(hardState, log)}`);
  if (flushing === null && random.nextInt(4) === 0) {
    flushing = storage.flushJournaled().finally(() => {
      flushing = null;
    });
  }
  // Let the flush's completion and the parent's kill in.
  if (random.nextInt(3) === 0) await new Promise((resolve) => setImmediate(resolve));
}
