/**
 * Throwaway certificates for a TLS test cluster, made with the `openssl` command (Debian's `openssl`
 * package; present on nearly every machine that has etcd): a CA, one certificate every member serves
 * and uses toward its peers (SAN 127.0.0.1 and localhost; server and client use), and a client
 * certificate. EC P-256 keys, valid for two days. Chosen over an npm package because it adds no
 * dependency and is the tool etcd's own docs use to make certificates.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The files of a throwaway PKI, and their contents (PEM). */
export interface TestCertificates {
  /** The directory holding them. */
  dir: string;
  /** The path of the CA certificate (`ca.crt`), which signed the others. */
  caFile: string;
  /** The path of the member certificate (server and peer; SAN 127.0.0.1 and localhost). */
  serverCertFile: string;
  /** The path of the member certificate's private key. */
  serverKeyFile: string;
  /** The path of a client certificate signed by the CA (no CN, so it names no etcd user). */
  clientCertFile: string;
  /** The path of the client certificate's private key. */
  clientKeyFile: string;
  /** The CA certificate, PEM: the root to trust. */
  ca: Buffer;
  /** The client certificate, PEM. */
  clientCert: Buffer;
  /** The client certificate's private key, PEM. */
  clientKey: Buffer;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error('TLS test clusters need the `openssl` command: apt-get install -y openssl (or brew install openssl)', { cause: error });
    }
    throw new Error(`openssl ${args[0]} failed${stderr ? `: ${stderr}` : ''}`, { cause: error });
  }
}

const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** Makes a CA plus a certificate signed by it (`name.crt`, `name.key`), with the given extensions. */
function issue(dir: string, name: string, subject: string, extensions: string): void {
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(['req', ...ecKey, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject], dir);
  openssl(
    ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`],
    dir,
  );
}

/** Writes a fresh CA, member and client certificate into `dir`. */
export function makeCertificates(dir: string): TestCertificates {
  mkdirSync(dir, { recursive: true });
  openssl(['req', '-x509', ...ecKey, '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=leasehold-test-ca', '-days', '2'], dir);
  issue(dir, 'server', '/CN=etcd', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n');
  // No CN: with auth enabled, etcd would take a client certificate's CN as the user name (and its JSON
  // gateway refuses certificates that have one), so passwords stay the only identity.
  issue(dir, 'client', '/O=leasehold-test-client', 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n');
  return {
    dir,
    caFile: join(dir, 'ca.crt'),
    serverCertFile: join(dir, 'server.crt'),
    serverKeyFile: join(dir, 'server.key'),
    clientCertFile: join(dir, 'client.crt'),
    clientKeyFile: join(dir, 'client.key'),
    ca: readFileSync(join(dir, 'ca.crt')),
    clientCert: readFileSync(join(dir, 'client.crt')),
    clientKey: readFileSync(join(dir, 'client.key')),
  };
}
