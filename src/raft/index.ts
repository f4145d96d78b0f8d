export { DEFAULTS, type RaftOptions } from './config.js';
export { RaftCore } from './core.js';
export { MemoryStorage } from './memory-storage.js';
export { type OutputEffects, OutputRunner, type OutputRunnerOptions, type OutputSource } from './output-runner.js';
export { type RandomSource, SeededRandom } from './random.js';
export { type RaftStorage, StorageRangeError } from './storage.js';
export type * from './types.js';
