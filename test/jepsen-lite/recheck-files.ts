/**
 * What a run leaves for a third party to check its verdict again without
 * raftlog's code: the history (history.jsonl, written by the run), the
 * nemesis schedule on its own, each node's final committed log as JSONL and
 * the final digests, described by a README in the folder.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { NodeFinal } from './checkers/log-checks.js';
import { type HistoryEvent, isNemesisEvent } from './history.js';

export const RECHECK_README = `What this folder holds, for checking the verdict again with your own tools:

history.jsonl         every client operation (invoke, then ok / fail / info) and
                      every fault, one JSON object per line, in real-time order;
                      "time" is in ms since the run started.
nemesis.jsonl         the faults alone: the schedule (start/stop pairs share "fault").
finals/<node>.jsonl   each node's committed log as it held it at the end, one entry
                      per line: index, term, kind, key, record (an append) or value
                      (a put; a compare-and-swap's new value). A node that compacted
                      holds a window: its first line is its first index kept.
finals/digests.json   each node's commit and applied index, digest of its state
                      machine, first index kept and snapshot index: nodes at the
                      same applied index must show the same digest.
subscribers/*.jsonl   (subscribe workload) what each reader was handed, in order.
results.json          the verdict of each checker, with the run's settings.
nodes/<node>.log      each node's own log (JSON lines), for diagnosis.
`;

export async function writeRecheckFiles(out: string, events: readonly HistoryEvent[], finals: readonly NodeFinal[]): Promise<void> {
  await mkdir(join(out, 'finals'), { recursive: true });
  await writeFile(join(out, 'nemesis.jsonl'), jsonLines(events.filter(isNemesisEvent)));
  for (const final of finals) await writeFile(join(out, 'finals', `${final.node}.jsonl`), jsonLines(final.entries));
  const digests = finals.map(({ node, commitIndex, appliedIndex, digest, firstIndex, snapshotIndex }) => ({
    node,
    commitIndex,
    appliedIndex,
    digest,
    firstIndex,
    snapshotIndex,
  }));
  await writeFile(join(out, 'finals', 'digests.json'), `${JSON.stringify(digests, null, 2)}\n`);
  await writeFile(join(out, 'README.txt'), RECHECK_README);
}

function jsonLines(items: readonly object[]): string {
  return items.map((item) => JSON.stringify(item)).join('\n') + (items.length > 0 ? '\n' : '');
}
