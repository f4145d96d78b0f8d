import type { WriteResult } from '../../client/index.js';

/** The fields every write's --json result has. */
export function writeJson(result: WriteResult): { index: number; term: number; leader: string | null; endpoint: string } {
  return { index: result.index, term: result.term, leader: result.leader, endpoint: result.endpoint };
}
