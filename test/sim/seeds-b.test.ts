import { describeSeedBatch } from './seed-batch.js';

// Half of the seed batch (seeds-a.test.ts has the other half; the seeds of each chunk run in child processes, seed-processes.ts).
// Each seed chooses its persistence mode (about half asynchronous); async-persist.test.ts forces it on
// for seeds of its own.
describeSeedBatch(2500, 2500, 500);
