import { describeSeedBatch } from './seed-batch.js';

// The seed batch of `npm test`: seeds 0..2499, each choosing its persistence mode (about half asynchronous) and
// its commit-notice delay; async-persist.test.ts forces asynchronous persistence on for seeds of its own. A
// second file ran seeds 2500..4999 until 2026-12-03, when the suite outgrew CI's 30 minutes on a slow day;
// `npm run sim:sweep` runs those and more (seeds 2500..12499).
describeSeedBatch(0, 2500, 500);
