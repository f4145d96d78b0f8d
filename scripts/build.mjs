#!/usr/bin/env node
// `npm run build` (and `npm pack`, through prepack): src/ compiled to dist/ as
// ESM JavaScript with declarations (tsconfig.build.json), then every file of
// src/ that tsc does not emit (the dashboard's page and script) copied to the
// same place under dist/, because modules find them beside themselves.
// dist/ is emptied first: a module removed from src/ must not ship on.
// Everything it prints goes to stderr: `npm pack --json` keeps stdout for its report.
import { spawnSync } from 'node:child_process';
import { cpSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const src = join(root, 'src');
const dist = join(root, 'dist');

rmSync(dist, { recursive: true, force: true });

// typescript's package does not export bin/tsc: find it beside its package.json.
const tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');
const compiled = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { cwd: root, stdio: ['ignore', 2, 2] });
if (compiled.status !== 0) {
  console.error(`build: tsc -p tsconfig.build.json failed (${compiled.error?.message ?? `exit code ${compiled.status}`}); dist/ is incomplete`);
  process.exit(1);
}

const assets = readdirSync(src, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile() && !entry.name.endsWith('.ts'));
for (const asset of assets) {
  const from = join(asset.parentPath, asset.name);
  cpSync(from, join(dist, relative(src, from)));
}
console.error(
  `build: dist/ from src/ (${assets.length === 0 ? 'no assets' : `assets: ${assets.map((a) => relative(src, join(a.parentPath, a.name))).join(', ')}`})`,
);
