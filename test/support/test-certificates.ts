/**
 * Certificates for TLS tests, made with openssl in a temp dir: the cluster's
 * CA, node certificates naming their member, client certificates, and a
 * second CA that the cluster does not trust. A machine without openssl fails
 * the test that asks for them, saying so.
 */

import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { type CertificateFiles, createAuthority, issueCertificate, opensslVersion } from '../../scripts/local-cluster/certificates.js';

/** Where test nodes listen and clients dial them. */
const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '::1'];

export class TestCertificates {
  private constructor(
    readonly dir: string,
    /** The CA the cluster trusts (--tls-ca). */
    readonly ca: CertificateFiles,
    /** A CA the cluster knows nothing of. */
    readonly otherCa: CertificateFiles,
  ) {}

  static async create(): Promise<TestCertificates> {
    await opensslVersion();
    const dir = await mkdtemp(join(tmpdir(), 'raftlog-tls-'));
    try {
      const ca = await createAuthority(dir, 'ca', 'raftlog test CA');
      const otherCa = await createAuthority(dir, 'other-ca', 'some other CA');
      return new TestCertificates(dir, ca, otherCa);
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  }

  /** A node certificate for `id`, signed by the cluster's CA (or `by` another). */
  node(id: string, by: CertificateFiles = this.ca): Promise<CertificateFiles> {
    const name = `node-${id}${by === this.ca ? '' : '-other-ca'}`;
    return issueCertificate(by, this.dir, name, { commonName: `raftlog node ${id}`, nodeId: id, hosts: LOOPBACK_HOSTS });
  }

  /** A client certificate (it names no member), signed by the cluster's CA (or `by` another). */
  client(name: string, by: CertificateFiles = this.ca): Promise<CertificateFiles> {
    return issueCertificate(by, this.dir, `client-${name}${by === this.ca ? '' : '-other-ca'}`, { commonName: name });
  }

  /** The node flags for mutual TLS with `files`. */
  nodeArgs(files: CertificateFiles): string[] {
    return ['--tls-cert', files.cert, '--tls-key', files.key, '--tls-ca', this.ca.cert];
  }

  /** gRPC credentials that trust the cluster's CA and present `files` (none: present no certificate). */
  credentials(files?: CertificateFiles): grpc.ChannelCredentials {
    return grpc.credentials.createSsl(
      readFileSync(this.ca.cert),
      files === undefined ? null : readFileSync(files.key),
      files === undefined ? null : readFileSync(files.cert),
    );
  }

  async destroy(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
