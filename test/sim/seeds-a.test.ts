import { describeSeedBatch } from './seed-batch.js';

// Half of the seed batch (seeds-b.test.ts has the other half; vitest may run the two files in parallel).
describeSeedBatch(0, 3500, 500);
