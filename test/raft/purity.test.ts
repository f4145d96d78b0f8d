import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const coreDir = join(import.meta.dirname, '../../src/raft');
const sources = readdirSync(coreDir)
  .filter((name) => name.endsWith('.ts'))
  .map((name) => ({ name, text: readFileSync(join(coreDir, name), 'utf8') }));

/** Import specifiers of a module: static imports and re-exports. */
function specifiers(text: string): string[] {
  return [...text.matchAll(/(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]/g)].map((m) => m[1] as string);
}

describe('the consensus core stays pure', () => {
  it('has sources to check', () => {
    expect(sources.map((s) => s.name)).toContain('core.ts');
  });

  it.each(sources)('$name imports only sibling modules of src/raft', ({ text }) => {
    for (const specifier of specifiers(text)) expect(specifier).toMatch(/^\.\/[\w-]+\.js$/);
  });

  it.each(sources)('$name reads no clock, no ambient randomness, no timers and no process state', ({ text }) => {
    const code = text.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
    const banned = [
      /\bDate\b/,
      /Math\.random/,
      /\bsetTimeout\b/,
      /\bsetInterval\b/,
      /\bsetImmediate\b/,
      /\bprocess\./,
      /\bperformance\./,
      /\brequire\(/,
      /\bimport\(/,
      /\bconsole\./,
    ];
    for (const pattern of banned) expect(code).not.toMatch(pattern);
  });

  it('the check itself catches a forbidden import and a clock read', () => {
    expect(specifiers(`import { readFile } from 'node:fs';`)).toEqual(['node:fs']);
    expect('node:fs').not.toMatch(/^\.\/[\w-]+\.js$/);
    expect(specifiers(`export { x } from '../node/server.js';`)[0]).not.toMatch(/^\.\/[\w-]+\.js$/);
    expect('const t = Date.now();').toMatch(/\bDate\b/);
  });
});
