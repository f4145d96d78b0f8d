/**
 * A node's TLS (--tls-cert, --tls-key, --tls-ca): its one gRPC port (client
 * API, Cluster service, peer service) serves TLS with the node's certificate,
 * and every channel the node opens (Raft messages, snapshots, calls forwarded
 * to the leader, --join discovery) checks the server against the CA and, with
 * a CA, presents the node's own certificate.
 *
 * - cert and key without a CA: the server side only. Clients and peers see
 *   an encrypted, authenticated server, but anyone may connect, send Raft
 *   messages included; the node checks servers against the system's roots.
 * - cert, key and CA: mutual TLS. Every client and peer must present a
 *   certificate the CA signed, and the peer service takes only node
 *   certificates that name the member a message claims to come from
 *   (tls-peer-identity.ts). The node's own certificate must name it.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { NodeId } from '../raft/types.js';
import { certificateIdentity, nodeIdentityUri } from './tls-identity.js';
import { peerIdentityInterceptor } from './tls-peer-identity.js';

/** The files named by --tls-cert, --tls-key and --tls-ca (PEM). */
export interface NodeTlsFiles {
  /** The node's certificate, optionally followed by its intermediate CAs. */
  readonly cert: string;
  readonly key: string;
  /** The CA that signs the cluster's certificates: with it, TLS is mutual. */
  readonly ca?: string;
}

export interface NodeTls {
  readonly files: NodeTlsFiles;
  readonly certChain: Buffer;
  readonly privateKey: Buffer;
  readonly ca: Buffer | null;
}

/** Reads and checks the node's TLS files; an error names the file and what is wrong with it. */
export async function loadNodeTls(files: NodeTlsFiles, self: NodeId): Promise<NodeTls> {
  const read = async (flag: string, path: string): Promise<Buffer> => {
    try {
      return await readFile(path);
    } catch (error) {
      throw new Error(`node ${self}: cannot read ${flag} ${path}: ${(error as Error).message}`, { cause: error });
    }
  };
  const certChain = await read('--tls-cert', files.cert);
  const privateKey = await read('--tls-key', files.key);
  const ca = files.ca === undefined ? null : await read('--tls-ca', files.ca);
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certChain);
  } catch (error) {
    throw new Error(`node ${self}: --tls-cert ${files.cert} is not a PEM certificate: ${(error as Error).message}`, { cause: error });
  }
  let matches: boolean;
  try {
    matches = certificate.checkPrivateKey(createPrivateKey(privateKey));
  } catch (error) {
    throw new Error(`node ${self}: --tls-key ${files.key} is not a PEM private key: ${(error as Error).message}`, { cause: error });
  }
  if (!matches) throw new Error(`node ${self}: --tls-key ${files.key} is not the key of the certificate in --tls-cert ${files.cert}`);
  if (Date.parse(certificate.validTo) < Date.now()) {
    throw new Error(`node ${self}: the certificate in --tls-cert ${files.cert} expired on ${certificate.validTo}`);
  }
  if (ca !== null) {
    try {
      new X509Certificate(ca);
    } catch (error) {
      throw new Error(`node ${self}: --tls-ca ${files.ca} is not a PEM certificate: ${(error as Error).message}`, { cause: error });
    }
    // With mutual TLS, peers know this node by the member its certificate names.
    const identity = certificateIdentity(certificate.subjectAltName);
    if (identity.kind !== 'node' || identity.id !== self) {
      const named = identity.kind === 'node' ? `names node ${identity.id}` : identity.kind === 'client' ? 'names no node' : 'names several nodes';
      throw new Error(
        `node ${self}: the certificate in --tls-cert ${files.cert} ${named}; ` +
          `with --tls-ca, a node's certificate must carry the URI ${nodeIdentityUri(self)} in its subject alternative names`,
      );
    }
  }
  return { files, certChain, privateKey, ca };
}

/** What the node's port serves: plaintext without TLS. */
export function nodeServerCredentials(tls: NodeTls | null): grpc.ServerCredentials {
  if (tls === null) return grpc.ServerCredentials.createInsecure();
  return grpc.ServerCredentials.createSsl(tls.ca, [{ cert_chain: tls.certChain, private_key: tls.privateKey }], tls.ca !== null);
}

/** Interceptors for the node's gRPC server: with mutual TLS, the peer service checks who its peers are. */
export function nodeServerInterceptors(tls: NodeTls | null, self: NodeId, logger: Logger): grpc.ServerInterceptor[] {
  return tls?.ca != null ? [peerIdentityInterceptor(self, logger)] : [];
}

/** How the node reaches other nodes (peers, its leader, --join endpoints). */
export function nodeChannelCredentials(tls: NodeTls | null): grpc.ChannelCredentials {
  if (tls === null) return grpc.credentials.createInsecure();
  if (tls.ca === null) return grpc.credentials.createSsl();
  return grpc.credentials.createSsl(tls.ca, tls.privateKey, tls.certChain);
}

/** For the node's startup log line: how it is protected, and what that leaves open. */
export function describeTls(tls: NodeTls | null, listen: string): { readonly tls: 'off' | 'server-only' | 'mutual'; readonly note: string } {
  if (tls === null) {
    return {
      tls: 'off',
      note: `TLS off: any process that reaches ${listen} can send this node Raft messages and call its client API, in plaintext (see --tls-cert, --tls-key, --tls-ca)`,
    };
  }
  if (tls.ca === null) {
    return {
      tls: 'server-only',
      note: `TLS without client certificates (no --tls-ca): any process that reaches ${listen} can send this node Raft messages and call its client API`,
    };
  }
  return { tls: 'mutual', note: `mutual TLS: clients and peers need a certificate signed by ${tls.files.ca}; peers one that names them` };
}
