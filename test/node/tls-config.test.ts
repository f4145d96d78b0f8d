/**
 * How a node reads its TLS flags and certificates, and which member a
 * certificate names: before any process starts, a wrong file, a key of
 * another certificate or a certificate of another node stops the node with a
 * message that names the file.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseNodeArgs, UsageError } from '../../src/node/node-command.js';
import { describeTls, loadNodeTls } from '../../src/node/tls-config.js';
import { certificateIdentity } from '../../src/node/tls-identity.js';
import { rejection } from '../support/rejection.js';
import { TestCertificates } from '../support/test-certificates.js';

/** The message of the error `loading` fails with. */
const failure = async (loading: Promise<unknown>): Promise<string> => ((await rejection(loading)) as Error).message;

const BASE = ['--id', 'n1', '--listen', '127.0.0.1:7001', '--peers', 'n1=127.0.0.1:7001', '--data', '/tmp/unused'];

describe('which member a certificate names', () => {
  it('a node certificate names one member with its URI; the host names around it do not matter', () => {
    expect(certificateIdentity('DNS:localhost, IP Address:127.0.0.1, URI:urn:raftlog:node:n2')).toEqual({ kind: 'node', id: 'n2' });
  });

  it('a certificate without that URI is a client certificate, other URIs included', () => {
    expect(certificateIdentity('DNS:client.example, URI:spiffe://example/raftlog')).toEqual({ kind: 'client' });
    expect(certificateIdentity(undefined)).toEqual({ kind: 'client' });
  });

  it('two member URIs, or a malformed one, name no one member', () => {
    expect(certificateIdentity('URI:urn:raftlog:node:n1, URI:urn:raftlog:node:n2').kind).toBe('ambiguous');
    expect(certificateIdentity('URI:urn:raftlog:node:../n1').kind).toBe('ambiguous');
    expect(certificateIdentity('URI:URN:RAFTLOG:NODE:n1').kind).toBe('ambiguous');
  });

  it('a quoted entry that hides a comma is one entry, not a member URI', () => {
    expect(certificateIdentity('DNS:"a, URI:urn:raftlog:node:n1"')).toEqual({ kind: 'client' });
  });
});

describe('raftlog node TLS flags', () => {
  it('without TLS flags there is no TLS', () => {
    expect(parseNodeArgs(BASE).tls).toBeUndefined();
  });

  it('takes a certificate and key, and a CA for mutual TLS', () => {
    expect(parseNodeArgs([...BASE, '--tls-cert', 'n1.pem', '--tls-key', 'n1-key.pem']).tls).toEqual({ cert: 'n1.pem', key: 'n1-key.pem' });
    expect(parseNodeArgs([...BASE, '--tls-cert', 'n1.pem', '--tls-key', 'n1-key.pem', '--tls-ca', 'ca.pem']).tls).toEqual({
      cert: 'n1.pem',
      key: 'n1-key.pem',
      ca: 'ca.pem',
    });
  });

  it('refuses a certificate without its key, a key without its certificate, and a CA alone', () => {
    expect(() => parseNodeArgs([...BASE, '--tls-cert', 'n1.pem'])).toThrow(UsageError);
    expect(() => parseNodeArgs([...BASE, '--tls-key', 'n1-key.pem'])).toThrow(/both --tls-cert and --tls-key/);
    expect(() => parseNodeArgs([...BASE, '--tls-ca', 'ca.pem'])).toThrow(/both --tls-cert and --tls-key/);
  });
});

describe("a node's own certificate", () => {
  let certificates: TestCertificates;
  beforeAll(async () => {
    certificates = await TestCertificates.create();
  });
  afterAll(async () => {
    await certificates?.destroy();
  });

  it('loads a certificate that names the node, its key and the CA', async () => {
    const n1 = await certificates.node('n1');
    const tls = await loadNodeTls({ ...n1, ca: certificates.ca.cert }, 'n1');
    expect(tls.ca).not.toBeNull();
    expect(describeTls(tls, '127.0.0.1:7001')).toMatchObject({ tls: 'mutual' });
  });

  it('with a CA, refuses a certificate that names another node, or none', async () => {
    const n2 = await certificates.node('n2');
    const client = await certificates.client('operator');
    expect(await failure(loadNodeTls({ ...n2, ca: certificates.ca.cert }, 'n1'))).toBe(
      `node n1: the certificate in --tls-cert ${n2.cert} names node n2; with --tls-ca, a node's certificate must carry the URI urn:raftlog:node:n1 in its subject alternative names`,
    );
    expect(await failure(loadNodeTls({ ...client, ca: certificates.ca.cert }, 'n1'))).toMatch(/names no node/);
  });

  it('refuses a key that belongs to another certificate, and names the files', async () => {
    const n1 = await certificates.node('n1');
    const n3 = await certificates.node('n3');
    expect(await failure(loadNodeTls({ cert: n1.cert, key: n3.key }, 'n1'))).toBe(
      `node n1: --tls-key ${n3.key} is not the key of the certificate in --tls-cert ${n1.cert}`,
    );
  });

  it('says which file is missing or is not PEM', async () => {
    const n1 = await certificates.node('n1');
    const missing = join(certificates.dir, 'missing.pem');
    expect(await failure(loadNodeTls({ ...n1, ca: missing }, 'n1'))).toMatch(new RegExp(`^node n1: cannot read --tls-ca ${missing}: ENOENT`));
    const garbage = join(certificates.dir, 'garbage.pem');
    await writeFile(garbage, 'not a certificate\n');
    expect(await failure(loadNodeTls({ cert: garbage, key: n1.key }, 'n1'))).toMatch(
      new RegExp(`^node n1: --tls-cert ${garbage} is not a PEM certificate`),
    );
  });

  it('without TLS the startup line says that anyone who reaches the port can send Raft messages', () => {
    expect(describeTls(null, '10.0.0.5:7001')).toEqual({
      tls: 'off',
      note: 'TLS off: any process that reaches 10.0.0.5:7001 can send this node Raft messages and call its client API, in plaintext (see --tls-cert, --tls-key, --tls-ca)',
    });
  });
});
