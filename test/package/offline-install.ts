/**
 * Installing a packed raftlog into a fresh project without the network.
 *
 * `npm install --offline <tarball>` resolves every dependency range against
 * the registry's package documents, which `npm ci` does not need (it installs
 * what the lockfile pins) and the npm cache does not hold for every package:
 * it fails with ENOTCACHED (commander's, on the machine this was written on).
 * What the cache does hold after `npm ci` is every tarball, by integrity. So the fresh project gets a lockfile: the packed raftlog from its
 * tarball, and the dependencies exactly as the repository's package-lock.json
 * pins them for production (its entries not marked dev), each with the
 * registry URL of its tarball and its integrity; `npm ci --offline` then reads
 * them all from the cache. It is the same dependency tree a user gets from
 * the lockfile that was tested.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';

interface LockEntry {
  readonly name?: string;
  readonly version?: string;
  readonly resolved?: string;
  readonly integrity?: string;
  readonly link?: boolean;
  readonly dev?: boolean;
  readonly [field: string]: unknown;
}

interface Lockfile {
  readonly lockfileVersion: number;
  readonly packages: Readonly<Record<string, LockEntry>>;
}

/** What `npm pack --json` reports of the tarball, and the manifest inside it. */
export interface PackedPackage {
  readonly tarball: string;
  readonly manifest: {
    readonly name: string;
    readonly version: string;
    readonly dependencies?: Readonly<Record<string, string>>;
    readonly bin?: Readonly<Record<string, string>>;
    readonly engines?: Readonly<Record<string, string>>;
    readonly license?: string;
  };
}

/** The package.json and package-lock.json of a project that depends on the packed package only. */
export async function offlineProject(
  repositoryLockPath: string,
  packed: PackedPackage,
  registry: string,
): Promise<{ packageJson: object; packageLock: object }> {
  const lock = JSON.parse(await readFile(repositoryLockPath, 'utf8')) as Lockfile;
  if (lock.lockfileVersion < 2) throw new Error(`${repositoryLockPath}: lockfileVersion ${lock.lockfileVersion}; need 2 or 3`);
  const { manifest } = packed;
  const spec = `file:${packed.tarball}`;
  const tarballIntegrity = `sha512-${createHash('sha512')
    .update(await readFile(packed.tarball))
    .digest('base64')}`;

  const packages: Record<string, object> = {
    '': { name: 'raftlog-installed', version: '0.0.0', dependencies: { [manifest.name]: spec } },
    [`node_modules/${manifest.name}`]: {
      version: manifest.version,
      resolved: spec,
      integrity: tarballIntegrity,
      ...(manifest.license === undefined ? {} : { license: manifest.license }),
      ...(manifest.dependencies === undefined ? {} : { dependencies: manifest.dependencies }),
      ...(manifest.bin === undefined ? {} : { bin: manifest.bin }),
      ...(manifest.engines === undefined ? {} : { engines: manifest.engines }),
    },
  };
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === '' || entry.dev === true) continue;
    if (!path.startsWith('node_modules/') || entry.link === true) {
      throw new Error(`${repositoryLockPath}: ${path} is not a registry package (a workspace or link); this install cannot take it`);
    }
    packages[path] = { ...entry, resolved: entry.resolved ?? registryTarballUrl(registry, entry.name ?? nameOf(path), entry) };
  }
  return {
    packageJson: { name: 'raftlog-installed', version: '0.0.0', private: true, dependencies: { [manifest.name]: spec } },
    packageLock: { name: 'raftlog-installed', version: '0.0.0', lockfileVersion: 3, requires: true, packages },
  };
}

/** `node_modules/a/node_modules/@s/b` → `@s/b`. */
function nameOf(path: string): string {
  return path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
}

/** Where the registry serves a version's tarball: `<registry><name>/-/<unscoped name>-<version>.tgz`. */
function registryTarballUrl(registry: string, name: string, entry: LockEntry): string {
  if (entry.version === undefined) throw new Error(`package-lock.json: ${name} has no version`);
  return `${registry.replace(/\/?$/, '/')}${name}/-/${basename(name)}-${entry.version}.tgz`;
}
