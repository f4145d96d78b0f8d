export { RaftCore } from './core.js';
export { DEFAULTS, type RaftOptions } from './config.js';
export { MemoryStorage } from './memory-storage.js';
export { OutputRunner, type OutputEffects, type OutputRunnerOptions, type OutputSource } from './output-runner.js';
export { SeededRandom, type RandomSource } from './random.js';
export { StorageRangeError, type RaftStorage } from './storage.js';
export type * from './types.js';
