import { describeSeedBatch } from './seed-batch.js';

// Half of the seed batch (seeds-a.test.ts has the other half; vitest may run the two files in parallel).
describeSeedBatch(3500, 3500, 500);
