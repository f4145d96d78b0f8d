import { describeSeedBatch } from './seed-batch.js';

// Half of the seed batch (seeds-a.test.ts has the other half; vitest may run the two files in parallel).
// Each seed chooses its persistence mode (about half asynchronous); async-persist.test.ts forces it on
// for seeds of its own.
describeSeedBatch(2500, 2500, 500);
