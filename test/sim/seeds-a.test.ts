import { describeSeedBatch } from './seed-batch.js';

// Half of the seed batch (seeds-b.test.ts has the other half; vitest may run the two files in parallel).
// Each seed chooses its persistence mode (about half asynchronous); async-persist.test.ts forces it on
// for seeds of its own. 3000 + 3000 seeds here keep the whole suite's time where 7000 synchronous seeds had it.
describeSeedBatch(0, 3000, 500);
