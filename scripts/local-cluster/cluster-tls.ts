/**
 * `npm start -- --tls`: the local cluster with mutual TLS. A throwaway CA in
 * `<dir>/tls/` signs a certificate per node (naming its member and
 * 127.0.0.1/localhost) and one client certificate that the scripts and the
 * CLI use. The CA's key stays there too, so that `add-node` can sign the next
 * node's certificate: anyone who can read the directory can join the cluster,
 * which is fine for a cluster on one's own machine and nothing else.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { TLS_ENV } from '../../src/cli/context.js';
import type { RaftLogClientOptions } from '../../src/client/index.js';
import { createAuthority, issueCertificate, opensslVersion } from './certificates.js';
import type { ClusterState, ClusterTls, NodeRecord } from './cluster-state.js';
import { LOOPBACK } from './cluster-state.js';
import type { ClusterLayout } from './paths.js';

export const TLS_DIR_NAME = 'tls';

export function tlsDir(layout: ClusterLayout): string {
  return join(layout.dir, TLS_DIR_NAME);
}

/** A new CA and client certificate in `<dir>/tls/` (whatever was there is replaced). */
export async function createClusterTls(layout: ClusterLayout): Promise<ClusterTls> {
  await opensslVersion();
  const dir = tlsDir(layout);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const ca = await createAuthority(dir, 'ca', 'raftlog local cluster CA (throwaway)');
  const client = await issueCertificate(ca, dir, 'client', { commonName: 'raftlog local client' });
  return { ca: ca.cert, caKey: ca.key, clientCert: client.cert, clientKey: client.key };
}

/** `node` with a certificate of its own, signed by the cluster's CA, and the flags that use it. */
export async function withNodeCertificate(layout: ClusterLayout, tls: ClusterTls, node: NodeRecord): Promise<NodeRecord> {
  const files = await issueCertificate({ cert: tls.ca, key: tls.caKey }, tlsDir(layout), node.id, {
    commonName: `raftlog node ${node.id}`,
    nodeId: node.id,
    hosts: ['localhost', LOOPBACK, '::1'],
  });
  return { ...node, args: [...node.args, '--tls-cert', files.cert, '--tls-key', files.key, '--tls-ca', tls.ca] };
}

/** What a RaftLogClient of the scripts needs to reach this cluster's nodes. */
export function clientTls(state: ClusterState): Pick<RaftLogClientOptions, 'tls'> {
  if (state.tls === undefined) return {};
  return { tls: { ca: state.tls.ca, cert: state.tls.clientCert, key: state.tls.clientKey } };
}

/** The lines that point the CLI at the cluster's client certificate. */
export function cliTlsExports(state: ClusterState): string[] {
  if (state.tls === undefined) return [];
  return [
    `  # the nodes take only clients with a certificate of the cluster's CA:`,
    `  export ${TLS_ENV.ca}=${state.tls.ca} ${TLS_ENV.cert}=${state.tls.clientCert} ${TLS_ENV.key}=${state.tls.clientKey}`,
  ];
}
