import { RaftCore } from '../../src/raft/core.js';
import type { CoreFactory } from './sim-core.js';

/** The real core, unmodified. */
export const realCore: CoreFactory = (options, storage) => new RaftCore(options, storage);
