import { describeSeedBatch } from './seed-batch.js';

// Half of the seed batch (seeds-b.test.ts has the other half; the seeds of each chunk run in child processes, seed-processes.ts).
// Each seed chooses its persistence mode (about half asynchronous); async-persist.test.ts forces it on
// for seeds of its own. 3000 + 3000 seeds here kept the whole suite's time where 7000 synchronous seeds had
// it; 2500 + 2500 keep it there since removed members come back with fresh disks (a seed that changes
// membership now keeps more members busy, and takes about half as long again).
describeSeedBatch(0, 2500, 500);
