/**
 * A throwaway certificate authority and the certificates a TLS cluster needs,
 * made with the `openssl` command line (`npm start -- --tls`, and the TLS
 * tests). Keys are ECDSA P-256, unencrypted, readable by their owner only.
 * Node certificates name their member with the URI urn:raftlog:node:<id>
 * (src/node/tls-identity.ts) and the hosts peers and clients dial; client
 * certificates name no member, so they may call the client API and the
 * Cluster service but not the peer service.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, rm, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { nodeIdentityUri } from '../../src/node/tls-identity.js';

const run = promisify(execFile);

/** A certificate and its private key, as PEM files. */
export interface CertificateFiles {
  readonly cert: string;
  readonly key: string;
}

/** Long enough for a local cluster left running, short enough that a copied key soon stops mattering. */
const VALID_DAYS = 30;

/** The `openssl version` line; throws an Error saying what to install when there is no openssl. */
export async function opensslVersion(): Promise<string> {
  try {
    const { stdout } = await run('openssl', ['version']);
    return stdout.trim();
  } catch (error) {
    throw new Error(
      `the openssl command is needed to make TLS certificates, and running \`openssl version\` failed (${(error as Error).message}); ` +
        'install OpenSSL (Debian/Ubuntu: apt-get install openssl)',
      { cause: error },
    );
  }
}

/** A self-signed CA certificate and key in `dir` (`<name>.pem`, `<name>-key.pem`). */
export async function createAuthority(dir: string, name: string, commonName: string): Promise<CertificateFiles> {
  const files = filesOf(dir, name);
  await openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    files.key,
    '-out',
    files.cert,
    '-days',
    String(VALID_DAYS),
    '-subj',
    `/CN=${commonName}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await chmod(files.key, 0o600);
  return files;
}

export interface CertificateRequest {
  readonly commonName: string;
  /** Makes it a node certificate: the URI urn:raftlog:node:<id>. */
  readonly nodeId?: string;
  /** DNS names and IP addresses the holder serves on (nodes: where peers and clients dial them). */
  readonly hosts?: readonly string[];
}

/** A certificate signed by `authority`, for servers and clients alike, in `dir` (`<name>.pem`, `<name>-key.pem`). */
export async function issueCertificate(
  authority: CertificateFiles,
  dir: string,
  name: string,
  request: CertificateRequest,
): Promise<CertificateFiles> {
  const files = filesOf(dir, name);
  const csr = join(dir, `${name}.csr`);
  const extensions = join(dir, `${name}.ext`);
  const names = [
    ...(request.hosts ?? []).map((host) => (isIP(host) === 0 ? `DNS:${host}` : `IP:${host}`)),
    ...(request.nodeId === undefined ? [] : [`URI:${nodeIdentityUri(request.nodeId)}`]),
  ];
  await writeFile(
    extensions,
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=serverAuth,clientAuth',
      ...(names.length > 0 ? [`subjectAltName=${names.join(',')}`] : []),
      '',
    ].join('\n'),
  );
  try {
    await openssl([
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      files.key,
      '-out',
      csr,
      '-subj',
      `/CN=${request.commonName}`,
    ]);
    await chmod(files.key, 0o600);
    await openssl([
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      authority.cert,
      '-CAkey',
      authority.key,
      '-set_serial',
      `0x${randomBytes(16).toString('hex')}`,
      '-days',
      String(VALID_DAYS),
      '-extfile',
      extensions,
      '-out',
      files.cert,
    ]);
  } finally {
    await rm(csr, { force: true });
    await rm(extensions, { force: true });
  }
  return files;
}

function filesOf(dir: string, name: string): CertificateFiles {
  return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}-key.pem`) };
}

async function openssl(args: readonly string[]): Promise<void> {
  try {
    await run('openssl', [...args]);
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`openssl ${args[0]} failed: ${stderr !== undefined && stderr !== '' ? stderr : (error as Error).message}`, { cause: error });
  }
}
